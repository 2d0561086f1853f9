#if canImport(Glibc)
    import Glibc
#endif

/// A value behind a pthread mutex: state shared between threads (bus threads, the cooperative pool, the
/// control socket's threads).
///
/// Used instead of the standard library's `Mutex` for state that crosses threads: on Linux that one is a
/// futex the ThreadSanitizer cannot see, so `make tsan` reported every access under it as a race (a false
/// one, but it hides real ones); pthread mutexes it understands.
public final class Locked<Value>: @unchecked Sendable {
    // Guard: `value` is read and written only with `mutex` held.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(SystemError.reason(errno: rc))")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the lock held and the value to read or change.
    public func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        let rc = pthread_mutex_lock(mutex)
        precondition(rc == 0, "pthread_mutex_lock failed: \(SystemError.reason(errno: rc))")
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
