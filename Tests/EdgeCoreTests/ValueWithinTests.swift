import EdgeRuntime
import Synchronization
import Testing

/// `valueWithin`: a reply in bounded time whatever the operation does.
@Suite struct ValueWithinTests {
    @Test func aQuickOperationGivesItsValue() async {
        #expect(await valueWithin(.seconds(30)) { 42 } == 42)
    }

    /// An operation that never finishes (a read stuck on a hung disk, here a continuation never resumed
    /// until the test lets it go) gives nil once the limit has passed, and the caller is not held.
    @Test func aStuckOperationGivesNilAtTheLimitWithoutWaitingForIt() async {
        let gate = Gate()
        let start = ContinuousClock.now
        let value = await valueWithin(.milliseconds(200)) {
            await gate.wait(); return 1
        }
        #expect(value == nil)
        #expect(ContinuousClock.now - start >= .milliseconds(200))
        gate.open()  // the stuck operation ends now; its late value goes nowhere
    }

    final class Gate: Sendable {
        private let waiter = Mutex<(open: Bool, c: CheckedContinuation<Void, Never>?)>((false, nil))
        func wait() async {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let run = waiter.withLock { w -> Bool in
                    if w.open { return true }
                    w.c = c
                    return false
                }
                if run { c.resume() }
            }
        }
        func open() {
            waiter.withLock { w in
                w.open = true; return w.c.take()
            }?.resume()
        }
    }
}
