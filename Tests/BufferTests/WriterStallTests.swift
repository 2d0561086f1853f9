import EdgeCore
@testable import EdgeBuffer
import EdgeTestSupport
import Foundation
import Testing

/// The writer thread's stall measure, which the daemon's watchdog reads: a commit that never returns (a
/// hung fsync, a dead disk) must show as a growing stall; a writer that keeps up shows none.
@Suite struct WriterStallTests {
    /// A performer whose commits block until released.
    final class HangingPerformer: GroupCommitPerformer, @unchecked Sendable {
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let lock = NSLock()
        var hang = true
        var commits = 0
        func commit(_ items: [PendingItem]) {
            if lock.withLock({ hang }) { entered.signal(); release.wait() }
            lock.withLock { commits += 1 }
            for item in items { if case .readings(_, let c) = item { c.resume(returning: .success(1...1)) } }
        }
        func upkeep() {}
    }

    func reading() -> PendingReading {
        PendingReading(Reading(device: "d", tag: "t", value: .number(1), quality: .good, wallMillis: 0, monotonicNanos: 0), units: nil)
    }

    @Test func aCommitThatNeverReturnsShowsAsAGrowingStallAndClearsWhenItReturns() async throws {
        let writer = GroupCommitThread(policy: GroupCommitPolicy(maxRecords: 10, maxDelay: TimeSpan(milliseconds: 5)),
                                       maxTransactionBytes: 1 << 20, idleDelay: TimeSpan(milliseconds: 60_000))
        let performer = HangingPerformer()
        writer.start(performer)
        #expect(writer.stalledMillis() == 0, "idle: no stall")

        let first = Task { await withCheckedContinuation { c in _ = writer.submit(.readings([reading()], c)) } }
        #expect(await eventually(timeout: 10) { performer.entered.wait(timeout: .now()) == .success })
        // The commit hangs: the stall grows with it (more appends queue behind it).
        let second = Task { await withCheckedContinuation { c in _ = writer.submit(.readings([reading()], c)) } }
        #expect(await eventually(timeout: 10) { writer.stalledMillis() >= 300 }, "stall \(writer.stalledMillis()) ms")

        performer.lock.withLock { performer.hang = false }
        performer.release.signal()
        _ = await first.value
        _ = await second.value
        #expect(await eventually(timeout: 10) { writer.stalledMillis() == 0 }, "still \(writer.stalledMillis()) ms")
        #expect(performer.lock.withLock { performer.commits } == 2)
        writer.close()
    }

    @Test func aBusyStoreThatKeepsUpShowsNoStall() async throws {
        let dir = TempDir("edged-stall")
        let (store, _) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget)
        defer { store.close() }
        var worst: Int64 = 0
        for i in 0..<50 {
            _ = try await store.append(readings: Fixtures.readings(200, start: i * 200), units: Fixtures.units)
            worst = max(worst, store.writerStalledMillis)
        }
        #expect(worst < 10_000, "a keeping-up writer measured \(worst) ms")
        #expect(await eventually(timeout: 10) { store.writerStalledMillis == 0 })
    }
}
