@testable import EdgeBuffer
import EdgeCore
import EdgeTestSupport
import Foundation
import Testing

@Suite("Hung disk")
struct HungDiskBufferTests {
    /// A commit hangs on a frozen filesystem; appends queue behind it up to the bound, then readings are
    /// refused at once instead of piling up in memory. When the disk is back, everything that was queued
    /// commits, and what was refused is named by one `io-error` gap record.
    ///
    /// Upkeep (a checkpoint after the writer idles) is put out of reach: were it the operation the freeze
    /// caught, the 500 readings would wait behind it instead of hanging in their commit, and how many wait
    /// would depend on how quickly the machine got to the freeze (seen on a loaded 2-core machine).
    @Test func readingsRefusedBehindAHungCommitAreCountedInAGapRecord() async throws {
        let fs = try await FreezableFilesystem.make()
        var options = fastCommit
        options.maxQueuedReadings = 2000
        options.idleUpkeepDelay = .hours(1)
        options.upkeepPeriod = .hours(1)
        let (store, _) = try BufferStore.open(
            path: fs.file("buffer.db"), maxBytes: testBudget, logger: quietLogger, options: options)
        defer { store.close() }
        defer { fs.thaw() }  // runs first: closing commits, which a frozen disk would hold forever
        let before = try #require(try await store.append(readings: Fixtures.readings(100), units: Fixtures.units))

        try await fs.freeze()
        let hung = Task { try await store.append(readings: Fixtures.readings(500, start: 100), units: Fixtures.units) }
        #expect(await eventually(timeout: 20) { store.writerStalledMillis >= 500 }, "the commit did not hang")
        // Nothing but that commit can be under way: the 500 readings are in it, none waits.
        #expect(store.writer.waitingReadings() == 0)
        let queuedA = Task {
            try await store.append(readings: Fixtures.readings(1200, start: 600), units: Fixtures.units)
        }
        let queuedB = Task {
            try await store.append(readings: Fixtures.readings(800, start: 1800), units: Fixtures.units)
        }
        // Both wait behind the hung commit: 2000 readings, the bound. The next ones are refused at once.
        #expect(await eventually(timeout: 20) { store.writer.waitingReadings() == 2000 })
        // (Each in a task of its own with a deadline: one that was queued instead would wait for the thaw.)
        var refused = 0, queuedProbes: [Task<Void, Never>] = []
        for i in 0..<6 {
            let answer = Answer()
            let probe = Task {
                do {
                    answer.set(
                        .success(
                            try await store.append(
                                readings: Fixtures.readings(50, start: 2600 + i * 50), units: Fixtures.units)))
                } catch {
                    answer.set(.failure(error))
                }
            }
            guard await eventually(timeout: 5, { answer.get() != nil }),
                case .failure(let error as BufferError)? = answer.get()
            else {
                Issue.record(
                    "an append beyond the bound was \(answer.get() == nil ? "queued" : "stored") while the disk was frozen"
                )
                queuedProbes.append(probe)
                continue
            }
            #expect(error.code == .ioError && error.countsAsNotStored, "\(error)")
            refused += 50
        }
        #expect(refused == 300)

        fs.thaw()
        for p in queuedProbes { await p.value }
        let seqs = [
            try #require(try await hung.value), try #require(try await queuedA.value),
            try #require(try await queuedB.value)
        ]
        #expect(seqs.map(\.count) == [500, 1200, 800])
        let after = try #require(
            try await store.append(readings: Fixtures.readings(10, start: 5000), units: Fixtures.units))

        let all = try queued(store)
        let gaps = all.compactMap(\.gap)
        #expect(gaps.count == 1)
        let gap = try #require(gaps.first)
        #expect(gap.reason == .ioError && gap.count == Int64(refused), "\(gap), refused \(refused)")
        #expect(try await store.stats().notStoredRecords == Int64(refused))
        // Every reading that was taken is there, each once.
        let stored = Set(all.filter { $0.gap == nil }.map(\.seq))
        let taken = [before] + seqs + [after]
        #expect(taken.allSatisfy { $0.allSatisfy(stored.contains) })
        #expect(stored.count == taken.reduce(0) { $0 + $1.count })
    }
}

/// What an append task answered, for a test that must not wait on it.
final class Answer: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<ClosedRange<Int64>?, any Error>?
    func set(_ r: Result<ClosedRange<Int64>?, any Error>) { lock.withLock { result = r } }
    func get() -> Result<ClosedRange<Int64>?, any Error>? { lock.withLock { result } }
}
