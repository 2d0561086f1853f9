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
            for item in items {
                switch item {
                case .readings(_, let done): done(.success(1...1))
                case .alarms(let list, _, let done): done(.success(list.map { _ in 1 }))
                case .efm(_, _, let done): done(.success(EFMStoreResult()))
                }
            }
        }
        func upkeep() {}
    }

    func reading() -> PendingReading {
        PendingReading(
            Reading(device: "d", tag: "t", value: .number(1), quality: .good, wallMillis: 0, monotonicNanos: 0),
            units: nil)
    }

    @Test func aCommitThatNeverReturnsShowsAsAGrowingStallAndClearsWhenItReturns() async throws {
        let writer = GroupCommitThread(
            policy: GroupCommitPolicy(maxRecords: 10, maxDelay: TimeSpan(milliseconds: 5)),
            maxTransactionBytes: 1 << 20, idleDelay: TimeSpan(milliseconds: 60_000))
        let performer = HangingPerformer()
        writer.start(performer)
        #expect(writer.stalledMillis() == 0, "idle: no stall")

        let first = Task {
            await withCheckedContinuation { c in _ = writer.submit(.readings([reading()], { c.resume(returning: $0) }))
            }
        }
        #expect(await eventually(timeout: 10) { performer.entered.wait(timeout: .now()) == .success })
        // The commit hangs: the stall grows with it (more appends queue behind it).
        let second = Task {
            await withCheckedContinuation { c in _ = writer.submit(.readings([reading()], { c.resume(returning: $0) }))
            }
        }
        #expect(await eventually(timeout: 10) { writer.stalledMillis() >= 300 }, "stall \(writer.stalledMillis()) ms")

        performer.lock.withLock { performer.hang = false }
        performer.release.signal()
        _ = await first.value
        _ = await second.value
        #expect(await eventually(timeout: 10) { writer.stalledMillis() == 0 }, "still \(writer.stalledMillis()) ms")
        #expect(performer.lock.withLock { performer.commits } == 2)
        writer.close()
    }

    /// Submits `n` readings; returns what `submit` said, and a task that ends when the writer has answered.
    func submit(_ writer: GroupCommitThread, readings n: Int) async -> (GroupCommitThread.Submitted, Task<Void, Never>)
    {
        let (said, tell) = AsyncStream<GroupCommitThread.Submitted>.makeStream()
        let task = Task {
            _ = await withCheckedContinuation {
                (c: CheckedContinuation<Result<ClosedRange<Int64>?, BufferError>, Never>) in
                let s = writer.submit(.readings((0..<n).map { _ in reading() }, { c.resume(returning: $0) }))
                tell.yield(s)
                tell.finish()
                if s != .queued { c.resume(returning: .success(nil)) }
            }
        }
        var it = said.makeAsyncIterator()
        return (await it.next() ?? .closed, task)
    }

    @Test func behindAHungCommitReadingsBeyondTheBoundAreRefusedAlarmEventsStillQueue() async throws {
        let writer = GroupCommitThread(
            policy: GroupCommitPolicy(maxRecords: 10_000, maxDelay: TimeSpan(milliseconds: 5)),
            maxTransactionBytes: 1 << 24, idleDelay: TimeSpan(milliseconds: 60_000), maxQueuedReadings: 1000)
        let performer = HangingPerformer()
        writer.start(performer)
        let (first, firstDone) = await submit(writer, readings: 1)
        #expect(first == .queued)
        #expect(await eventually(timeout: 10) { performer.entered.wait(timeout: .now()) == .success })

        // The commit under way hangs; 1000 readings may wait behind it, not one more.
        let (a, aDone) = await submit(writer, readings: 600)
        let (b, bDone) = await submit(writer, readings: 400)
        let (c, _) = await submit(writer, readings: 1)
        #expect(a == .queued && b == .queued)
        #expect(c == .full(queued: 1000))
        let alarm = Task {
            await withCheckedContinuation { (k: CheckedContinuation<Result<[Int64], BufferError>, Never>) in
                #expect(writer.submit(.alarms([Fixtures.alarm(1)], state: nil, { k.resume(returning: $0) })) == .queued)
            }
        }

        // The disk comes back: everything queued commits, and readings are taken again.
        performer.lock.withLock { performer.hang = false }
        performer.release.signal()
        for t in [firstDone, aDone, bDone] { await t.value }
        #expect(try await alarm.value.get() == [1])
        let (d, dDone) = await submit(writer, readings: 900)
        #expect(d == .queued)
        await dDone.value
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
