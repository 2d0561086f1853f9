import EdgeSystem

/// The value of `operation` if it finishes within `limit`, else nil — without waiting for it: an operation
/// stuck on a hung disk goes on in its own task, and its result is dropped. For replies that must come
/// back in bounded time whatever the disk does (`edgectl buffer`).
public func valueWithin<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async -> T) async -> T? {
    await withCheckedContinuation { (c: CheckedContinuation<T?, Never>) in
        // Resumed once, by whichever comes first; the timer goes when the operation wins.
        let once = Locked<CheckedContinuation<T?, Never>?>(c)
        let timer = Task {
            try? await Task.sleep(for: limit)
            once.withLock { $0.take() }?.resume(returning: nil)
        }
        Task {
            let value = await operation()
            once.withLock { $0.take() }?.resume(returning: value)
            timer.cancel()
        }
    }
}
