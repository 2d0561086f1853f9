/// Records that could not be stored (disk full, I/O error), counted until a write succeeds and the
/// store can put the count into gap records.
public struct LossLedger: Sendable, Equatable {
    /// Lost records of one reason.
    public struct Loss: Sendable, Equatable {
        public var reason: GapReason
        public var count: Int64
        public var fromMillis: Int64
        public var toMillis: Int64

        /// The gap record for this loss, its records given the seqs from `firstSeq` on.
        public func gapRecord(firstSeq: Int64) -> GapRecord {
            GapRecord(
                firstSeq: firstSeq, lastSeq: firstSeq + count - 1, count: count,
                fromMillis: fromMillis, toMillis: toMillis, reason: reason)
        }
    }

    private var byReason: [GapReason: Loss] = [:]
    public init() {}

    /// `count` records with times `fromMillis...toMillis` were not stored.
    public mutating func lost(count: Int64, fromMillis: Int64, toMillis: Int64, reason: GapReason) {
        guard count > 0 else { return }
        if var l = byReason[reason] {
            l.count += count; l.fromMillis = min(l.fromMillis, fromMillis); l.toMillis = max(l.toMillis, toMillis)
            byReason[reason] = l
        } else {
            byReason[reason] = Loss(reason: reason, count: count, fromMillis: fromMillis, toMillis: toMillis)
        }
    }

    /// What to write with the next commit, one per reason.
    public var losses: [Loss] { byReason.values.sorted { $0.reason.rawValue < $1.reason.rawValue } }
    public var isEmpty: Bool { byReason.isEmpty }
    public var count: Int64 { byReason.values.reduce(0) { $0 + $1.count } }

    /// The gap records were committed.
    public mutating func clear() { byReason = [:] }

    /// What was counted in this ledger since it was `earlier` (a copy taken before): losses are only ever
    /// added between clears, so the difference is what others counted meanwhile (its time span is this
    /// ledger's, which covers it).
    public func added(since earlier: LossLedger) -> LossLedger {
        var out = LossLedger()
        for (reason, now) in byReason {
            let diff = now.count - (earlier.byReason[reason]?.count ?? 0)
            if diff > 0 {
                out.byReason[reason] = Loss(
                    reason: reason, count: diff, fromMillis: now.fromMillis, toMillis: now.toMillis)
            }
        }
        return out
    }

    /// Adds every loss of `other`.
    public mutating func merge(_ other: LossLedger) {
        for l in other.byReason.values {
            lost(count: l.count, fromMillis: l.fromMillis, toMillis: l.toMillis, reason: l.reason)
        }
    }
}

/// Totals the buffer keeps in its file, updated in the same transaction as the records they count.
public struct BufferCounters: Sendable, Equatable {
    public var alarmRecords: Int64 = 0
    public var readingRecords: Int64 = 0
    public var gapRecords: Int64 = 0
    public var deadLetterRecords: Int64 = 0
    public var evictions: Int64 = 0
    public var evictedRecords: Int64 = 0
    public var notStoredRecords: Int64 = 0
    public var gapRecordsWritten: Int64 = 0
    public var deadLetterBatches: Int64 = 0
    public init() {}

    /// Records in the file, all lanes.
    public var totalRecords: Int64 { alarmRecords + readingRecords + deadLetterRecords }

    /// Names and values, for persistence.
    public static var fields: [(String, WritableKeyPath<BufferCounters, Int64>)] {
        [
            ("alarm_records", \.alarmRecords), ("reading_records", \.readingRecords), ("gap_records", \.gapRecords),
            ("dead_letter_records", \.deadLetterRecords), ("evictions", \.evictions),
            ("evicted_records", \.evictedRecords),
            ("not_stored_records", \.notStoredRecords), ("gap_records_written", \.gapRecordsWritten),
            ("dead_letter_batches", \.deadLetterBatches)
        ]
    }
}
