import Foundation
@testable import EdgeCore
import Testing

@Suite struct DataBudgetTests {
    /// Milliseconds since 1970 of a UTC date, through Foundation (an independent calendar).
    func millis(_ y: Int, _ m: Int, _ d: Int, _ h: Int = 0, _ min: Int = 0, _ s: Int = 0) -> Int64 {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        let date = c.date(from: DateComponents(year: y, month: m, day: d, hour: h, minute: min, second: s))!
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    @Test func monthsFollowTheUTCCalendarAgainstFoundation() {
        #expect(DataUsage.month(ofWallMillis: 0) == "1970-01")
        #expect(DataUsage.month(ofWallMillis: millis(2024, 2, 29, 23, 59, 59) + 999) == "2024-02")
        #expect(DataUsage.month(ofWallMillis: millis(2024, 3, 1)) == "2024-03")
        #expect(DataUsage.month(ofWallMillis: millis(2026, 12, 31, 23, 59, 59)) == "2026-12")
        #expect(DataUsage.month(ofWallMillis: millis(2027, 1, 1)) == "2027-01")
        // Every day for 60 years, against Foundation's calendar.
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        var day = millis(2000, 1, 1, 12)
        while day < millis(2060, 1, 1) {
            let parts = c.dateComponents([.year, .month], from: Date(timeIntervalSince1970: Double(day) / 1000))
            let expected = String(format: "%04d-%02d", parts.year!, parts.month!)
            if DataUsage.month(ofWallMillis: day) != expected {
                Issue.record("\(day): \(DataUsage.month(ofWallMillis: day)) != \(expected)"); break
            }
            day += 86_400_000
        }
    }

    @Test func usageCountsWithinAMonthAndStartsOverInTheNext() {
        var u = DataUsage(month: "2026-11")
        u.add(1000, atWallMillis: millis(2026, 11, 27))
        u.add(500, atWallMillis: millis(2026, 11, 30, 23, 59, 59))
        #expect(u == DataUsage(month: "2026-11", bytes: 1500))
        #expect(u.asOf(wallMillis: millis(2026, 12, 1)) == DataUsage(month: "2026-12", bytes: 0))
        #expect(u.asOf(wallMillis: millis(2026, 11, 28)) == u)
        u.add(42, atWallMillis: millis(2026, 12, 1))
        #expect(u == DataUsage(month: "2026-12", bytes: 42))
    }

    @Test func savingStartsAtNinetyPercentOfTheBudget() {
        let budget: Int64 = 1_000_000
        #expect(DataBudgetMode.of(DataUsage(month: "m", bytes: 10_000_000), budget: nil) == .normal)
        #expect(DataBudgetMode.of(DataUsage(month: "m", bytes: 899_999), budget: budget) == .normal)
        #expect(DataBudgetMode.of(DataUsage(month: "m", bytes: 900_000), budget: budget) == .saving)
        #expect(DataBudgetMode.of(DataUsage(month: "m", bytes: 2_000_000), budget: budget) == .saving)
    }

    func reading(_ seq: Int64, _ tag: String, _ wall: Int64) -> BufferedRecord {
        BufferedRecord(
            seq: seq, lane: .reading,
            payload: .reading(
                StoredReading(
                    device: "rpc-1", tag: tag, units: nil, wallMillis: wall,
                    value: .number(Double(seq)), quality: .good)))
    }

    @Test func hourlySnapshotsKeepTheFirstReadingOfEachSeriesInEachHour() {
        let h10 = millis(2026, 11, 27, 10), h11 = millis(2026, 11, 27, 11)
        let gap = BufferedRecord(
            seq: 5, lane: .reading,
            payload: .gap(GapRecord(firstSeq: 1, lastSeq: 2, count: 2, fromMillis: 0, toMillis: 1, reason: .evicted)))
        let records = [
            reading(10, "a", h10 + 5_000), reading(11, "b", h10 + 5_000), reading(12, "a", h10 + 15_000),
            gap, reading(13, "b", h10 + 3_599_999), reading(14, "a", h11), reading(15, "a", h11 + 10)
        ]
        .sorted { $0.seq < $1.seq }
        var s = HourlySnapshots()
        let (keep, drop) = s.split(records)
        #expect(keep.map(\.seq) == [5, 10, 11, 14])
        #expect(drop.map(\.seq) == [12, 13, 15])
        // Offered again (the head of the lane re-read after the drop), the kept ones stay kept.
        let (again, none) = s.split(keep)
        #expect(again.map(\.seq) == [5, 10, 11, 14] && none.isEmpty)
        // Later readings of hours already covered are dropped; a new hour gets its snapshot.
        let (later, dropped) = s.split(
            keep + [reading(20, "a", h11 + 60_000), reading(21, "b", h11 + 60_000), reading(22, "b", h11 + 61_000)])
        #expect(later.map(\.seq) == [5, 10, 11, 14, 21])
        #expect(dropped.map(\.seq) == [20, 22])
        // Once sent (the head moved past them), old kept seqs are forgotten.
        let (tail, _) = s.split([reading(30, "a", h11 + 3_600_000)])
        #expect(tail.map(\.seq) == [30])
    }
}
