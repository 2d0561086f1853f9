import EdgeSystem
import EdgeTestSupport
import Foundation
import Testing

/// Timed waits on CLOCK_MONOTONIC. (That a step of the wall clock does not stretch them cannot be shown
/// here without stepping the machine's clock; the wait never reads it.)
@Suite struct MonotonicConditionTests {
    @Test func aWaitEndsAtItsMonotonicDeadline() {
        let c = MonotonicCondition()
        let start = MonotonicCondition.now()
        c.lock()
        var signalled = true
        while MonotonicCondition.now() < start + 200_000_000 {
            signalled = c.wait(untilMonotonicNanos: start + 200_000_000)
        }
        c.unlock()
        #expect(!signalled)
        #expect(MonotonicCondition.now() - start >= 200_000_000)
    }

    @Test func aPassedDeadlineReturnsAtOnce() {
        let c = MonotonicCondition()
        c.lock()
        let start = MonotonicCondition.now()
        #expect(!c.wait(untilMonotonicNanos: start > 1 ? start - 1 : 0))
        c.unlock()
        #expect(MonotonicCondition.now() - start < 1_000_000_000)
    }

    @Test func aSignalWakesAWaiterLongBeforeItsDeadline() async {
        let c = MonotonicCondition()
        let flag = Flag()
        let waiter = Thread {
            c.lock()
            let deadline = MonotonicCondition.now() + 60_000_000_000
            while !flag.set { c.wait(untilMonotonicNanos: deadline) }
            flag.woke = MonotonicCondition.now()
            c.unlock()
        }
        waiter.start()
        let start = MonotonicCondition.now()
        c.withLock {
            flag.set = true; c.signal()
        }
        #expect(await eventually(timeout: 10) { c.withLock { flag.woke } != 0 })
        #expect(c.withLock { flag.woke } - start < 10_000_000_000, "the waiter slept toward its 60 s deadline")
    }

    // Guard: `set` and `woke` are read and written under the condition's lock.
    final class Flag: @unchecked Sendable {
        var set = false
        var woke: UInt64 = 0
    }
}
