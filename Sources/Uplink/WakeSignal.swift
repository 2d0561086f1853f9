import Foundation

/// A wake-up that can be waited for with a timeout: the uplink sleeps until the batch age runs out or an
/// alarm event arrives, whichever is first.
///
/// One waiter at a time (the upload loop). A signal that arrives while nobody waits is kept for the next
/// wait; a wait that ends by timeout or cancellation does not leave a signal behind.
// Guard: `lock` protects `pending`, `waiter`, `waits` and `expiredThrough`.
public final class WakeSignal: @unchecked Sendable {
    public init() {}
    private let lock = NSLock()
    private var pending = false
    /// The current waiter and the number of its wait, so a late timer cannot end a later wait.
    private var waiter: (id: UInt64, continuation: CheckedContinuation<Void, Never>)?
    private var waits: UInt64 = 0
    /// Waits up to this number have timed out or been cancelled (possibly before they started waiting).
    private var expiredThrough: UInt64 = 0

    /// Wakes the current wait, or the next one if nobody is waiting.
    public func signal() {
        let w: CheckedContinuation<Void, Never>? = lock.withLock {
            if let w = waiter { waiter = nil; return w.continuation }
            pending = true
            return nil
        }
        w?.resume()
    }

    /// Whether a signal arrived since the last wait (and consumes it): the loop checks this between batches.
    public func takePending() -> Bool {
        lock.withLock {
            defer { pending = false }
            return pending
        }
    }

    /// Returns when signalled (or already signalled since the last wait), after `timeout`, or on cancellation.
    public func wait(timeout: Duration) async {
        let id: UInt64 = lock.withLock {
            waits += 1; return waits
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self?.expire(id) }
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready: Bool = lock.withLock {
                    if pending { pending = false; return true }
                    if expiredThrough >= id { return true }
                    waiter = (id, c)
                    return false
                }
                if ready { c.resume() }
            }
        } onCancel: {
            expire(id)
        }
    }

    /// Ends wait number `id` if it is still waiting; does nothing to any other wait.
    private func expire(_ id: UInt64) {
        let w: CheckedContinuation<Void, Never>? = lock.withLock {
            expiredThrough = max(expiredThrough, id)
            guard let w = waiter, w.id == id else { return nil }
            waiter = nil
            return w.continuation
        }
        w?.resume()
    }
}
