import EdgeBuffer
import EdgeCore
import EdgeTestSupport
import Foundation
import Testing

/// The size budget: ten times the budget written, files never above it, every evicted reading accounted
/// for by gap records.
@Suite("Size budget")
struct OverfillTests {
    /// Allowed overshoot of db + WAL + shm over `storage.maxBytes`. The budget's split keeps the files
    /// inside the budget itself (`BufferBudget`); this test allows no slack at all.
    static let slack: Int64 = 0

    @Test func tenTimesTheBudgetStaysWithinItAndGapsAccountForEveryEvictedReading() async throws {
        let dir = TempDir("edged-overfill")
        let path = dir.file("buffer.db")
        let budget: Int64 = 2 << 20
        let (store, _) = try BufferStore.open(
            path: path, maxBytes: ByteCount(bytes: budget), logger: quietLogger, options: fastCommit)
        // Alarms are evicted last: these must survive the overfill.
        let alarmSeqs = [
            try await store.append(alarm: Fixtures.alarm(1)), try await store.append(alarm: Fixtures.alarm(2))
        ]

        var written: [Int64: Reading] = [:]
        var bytesWritten: Int64 = 0
        var peak: Int64 = 0
        var start = 0
        while bytesWritten < 10 * budget {
            let readings = Fixtures.readings(500, start: start)
            start += 500
            let seqs = try #require(try await store.append(readings: readings, units: Fixtures.units))
            for (seq, r) in zip(seqs, readings) { written[seq] = r }
            bytesWritten += 500 * 30  // ~30 bytes of database per stored reading (see the benchmark)
            peak = max(peak, bytesOnDisk(path))
            #expect(bytesOnDisk(path) <= budget + Self.slack)
        }
        let stats = try await store.stats()
        #expect(stats.peakBytesOnDisk <= budget + Self.slack, "peak \(stats.peakBytesOnDisk) over \(budget)")
        #expect(stats.evictions > 0 && stats.evictedRecords > 0)

        let all = try queued(store)
        #expect(Array(all.prefix(2).map(\.seq)) == alarmSeqs)
        let present = Dictionary(uniqueKeysWithValues: all.compactMap { r in r.reading.map { (r.seq, $0) } })
        let gaps = all.compactMap(\.gap)
        // Every reading written is either present (unchanged) or inside a gap record's range.
        for (seq, reading) in written {
            if let stored = present[seq] {
                #expect(stored == Fixtures.stored(reading))
            } else {
                #expect(gaps.contains { $0.covers(seq) }, "seq \(seq) evicted without a gap record")
            }
        }
        // And the counts add up exactly: present + evicted (as the gap records count them) = written.
        let evicted = gaps.reduce(0) { $0 + $1.count }
        #expect(Int64(present.count) + evicted == Int64(written.count))
        #expect(evicted == stats.evictedRecords)
        // Eviction took the oldest: what is left is the newest run.
        #expect(present.keys.min()! > written.keys.min()!)
        #expect(present.keys.max()! == written.keys.max()!)
        // Gap records are absorbed as eviction reaches them: at most one per eviction chunk of the queue.
        let chunks = store.budget.maxPageCount / store.budget.evictionChunkPages
        #expect(Int64(gaps.count) <= chunks + 2, "\(gaps.count) gap records")
        store.close()
        #expect(bytesOnDisk(path) <= budget)
        print(
            "overfill: wrote \(written.count) readings (\(bytesWritten / budget)× the budget), peak \(peak) of \(budget) bytes, \(stats.evictions) evictions, \(gaps.count) gap records"
        )
    }

    @Test func aLoweredBudgetShrinksTheFileAtOpen() async throws {
        let dir = TempDir("edged-overfill")
        let path = dir.file("buffer.db")
        let (big, _) = try BufferStore.open(path: path, maxBytes: ByteCount(bytes: 16 << 20), options: fastCommit)
        for k in 0..<40 {
            _ = try await big.append(readings: Fixtures.readings(5000, start: k * 5000), units: Fixtures.units)
        }
        big.close()
        #expect(bytesOnDisk(path) > 4 << 20)
        let (small, _) = try BufferStore.open(path: path, maxBytes: ByteCount(bytes: 2 << 20), logger: quietLogger)
        defer { small.close() }
        #expect(bytesOnDisk(path) <= 2 << 20)
        let stats = try await small.stats()
        #expect(stats.evictedRecords > 0 && stats.readingRecords > 0)
        let gaps = try queued(small).compactMap(\.gap)
        #expect(gaps.reduce(0) { $0 + $1.count } == stats.evictedRecords)
    }

    @Test func drainedQueueGivesTheSpaceBackWhenIdle() async throws {
        let dir = TempDir("edged-overfill")
        let path = dir.file("buffer.db")
        let options = BufferOptions(
            groupCommit: GroupCommitPolicy(maxRecords: 1000, maxDelay: TimeSpan(milliseconds: 2)),
            idleUpkeepDelay: TimeSpan(milliseconds: 100))
        let (store, _) = try BufferStore.open(path: path, maxBytes: ByteCount(bytes: 32 << 20), options: options)
        defer { store.close() }
        for k in 0..<20 {
            _ = try await store.append(readings: Fixtures.readings(5000, start: k * 5000), units: Fixtures.units)
        }
        let full = bytesOnDisk(path)
        while let b = try await store.nextBatch(maxRecords: 5000, maxBytes: 1 << 30) { try await store.acknowledge(b) }
        // incremental_vacuum to completion and a TRUNCATE checkpoint once the writer is idle.
        #expect(await eventually(timeout: 10) { bytesOnDisk(path) < full / 4 }, "still \(bytesOnDisk(path)) of \(full)")
    }
}
