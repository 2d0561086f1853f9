import Foundation

/// A wake-up that can be waited for with a timeout: the uplink sleeps until the batch age runs out or an
/// alarm event arrives, whichever is first.
public final class WakeSignal: @unchecked Sendable {
    public init() {}
    private let lock = NSLock()
    private var pending = false
    private var waiter: CheckedContinuation<Void, Never>?

    public func signal() {
        let w: CheckedContinuation<Void, Never>? = lock.withLock {
            if let w = waiter { waiter = nil; return w }
            pending = true
            return nil
        }
        w?.resume()
    }

    /// Returns when signalled (or already signalled since the last wait), after `timeout`, or on cancellation.
    public func wait(timeout: Duration) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready: Bool = lock.withLock {
                    if pending { pending = false; return true }
                    waiter = c
                    return false
                }
                if ready { c.resume(); return }
                Task {
                    try? await Task.sleep(for: timeout)
                    self.signal()
                }
            }
            lock.withLock { pending = false }
        } onCancel: {
            signal()
        }
    }
}
