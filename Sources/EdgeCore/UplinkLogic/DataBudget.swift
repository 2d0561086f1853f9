/// The monthly data budget (`uplink.monthlyBudget`): bytes on the wire counted per calendar month (UTC),
/// and what the uplink may send as the month's usage nears the cap.
///
/// - Below `savingFraction` of the budget everything is sent.
/// - From there on (and past the cap) only alarm events, gap records and one reading per series per UTC
///   hour (the hourly snapshot) are sent; the other readings are dropped from the buffer with a
///   `data-budget` gap record, so the server knows what will never arrive and why.
/// - A new month starts from zero.
public struct DataUsage: Sendable, Codable, Equatable {
    /// `YYYY-MM` (UTC) the count belongs to.
    public var month: String
    /// Request and response bytes (headers and bodies) of every attempt this month.
    public var bytes: Int64

    public init(month: String, bytes: Int64 = 0) { self.month = month; self.bytes = bytes }

    /// `YYYY-MM` (UTC) of a wall-clock time in milliseconds since 1970.
    public static func month(ofWallMillis ms: Int64) -> String {
        let days = Int64((Double(ms) / 86_400_000).rounded(.down))
        let (y, m, _) = civilDate(daysSince1970: days)
        return "\(y)-\(m < 10 ? "0" : "")\(m)"
    }

    /// Adds bytes spent at `wallMillis`; a new month starts from zero.
    public mutating func add(_ n: Int64, atWallMillis ms: Int64) {
        let now = Self.month(ofWallMillis: ms)
        if now != month { self = DataUsage(month: now) }
        bytes += n
    }

    /// This usage as seen at `wallMillis` (zero when the month has turned).
    public func asOf(wallMillis ms: Int64) -> DataUsage {
        let now = Self.month(ofWallMillis: ms)
        return now == month ? self : DataUsage(month: now)
    }

    /// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) — Howard Hinnant's algorithm.
    static func civilDate(daysSince1970 z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

/// Whether the uplink is saving data, from the month's usage and the budget.
public enum DataBudgetMode: String, Sendable, Codable {
    /// No budget, or usage below the saving threshold: send everything.
    case normal
    /// Near or past the cap: alarms, gaps and hourly snapshots only.
    case saving

    /// Saving starts at this share of the budget.
    public static let savingFraction = 0.9

    public static func of(_ usage: DataUsage, budget: Int64?) -> DataBudgetMode {
        guard let budget, budget > 0 else { return .normal }
        return Double(usage.bytes) >= Double(budget) * savingFraction ? .saving : .normal
    }
}

/// Picks the hourly snapshots out of the reading lane while the data budget is saving: the first reading of
/// each series (device, tag) in each UTC hour is kept, every other reading is to be dropped. Gap records are
/// always kept. Stable when the same records are offered again (a kept reading stays kept), so the uplink
/// can thin the head of the lane, then re-read it.
public struct HourlySnapshots: Sendable {
    /// The latest hour a snapshot was kept for, per series.
    private var lastHour: [String: Int64] = [:]
    /// Seqs kept and not yet sent (pruned to what is still at or past the head of the lane).
    private var kept: Set<Int64> = []

    public init() {}

    public static func hour(ofWallMillis ms: Int64) -> Int64 { Int64((Double(ms) / 3_600_000).rounded(.down)) }

    /// Splits reading-lane records (in seq order) into those to send and the seqs of readings to drop.
    public mutating func split(_ records: [BufferedRecord]) -> (keep: [BufferedRecord], drop: [BufferedRecord]) {
        if let head = records.first?.seq { kept = kept.filter { $0 >= head } }
        var keep: [BufferedRecord] = [], drop: [BufferedRecord] = []
        for r in records {
            guard let reading = r.reading else { keep.append(r); continue }
            if kept.contains(r.seq) { keep.append(r); continue }
            let series = reading.device + "\u{1F}" + reading.tag
            let hour = Self.hour(ofWallMillis: reading.wallMillis)
            if let last = lastHour[series], hour <= last {
                drop.append(r)
            } else {
                lastHour[series] = hour
                kept.insert(r.seq)
                keep.append(r)
            }
        }
        return (keep, drop)
    }
}
