import EdgeSystem

/// The value of `operation` if it finishes within `limit`, else nil — without waiting for it: an operation
/// stuck on a hung disk goes on in its own task, and its result is dropped. For replies that must come
/// back in bounded time whatever the disk does (`edgectl buffer`).
public func valueWithin<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async -> T) async -> T? {
    await withCheckedContinuation { (c: CheckedContinuation<T?, Never>) in
        let once = ResumeOnce(c)
        Task { once.resume(await operation()) }
        Task {
            try? await Task.sleep(for: limit)
            once.resume(nil)
        }
    }
}

/// A continuation resumed by whichever caller comes first; later calls do nothing.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Locked<CheckedContinuation<T?, Never>?>
    init(_ c: CheckedContinuation<T?, Never>) { continuation = Locked(c) }
    func resume(_ value: T?) { continuation.withLock { $0.take() }?.resume(returning: value) }
}
