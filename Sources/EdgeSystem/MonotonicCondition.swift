#if canImport(Glibc)
    import Glibc
#endif

/// A mutex and condition variable whose timed waits run on CLOCK_MONOTONIC.
///
/// `NSCondition.wait(until:)` takes a wall-clock `Date`: on a box without an RTC battery, the clock steps
/// (often by years) at the first NTP sync, and a wait whose deadline was set before the step lasts as much
/// longer as the clock went back — a bus thread or the buffer's writer asleep for hours. Deadlines here are
/// monotonic nanoseconds (`MonotonicCondition.now()`), which no clock step moves.
// Guard: immutable after init (two `let` pointers); the pthread mutex and condition they point to are made
// for use from any thread, and are destroyed only in `deinit`.
public final class MonotonicCondition: @unchecked Sendable {
    // Guard: the pthread objects are used only through their own locking calls.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        var attr = pthread_condattr_t()
        Self.check(pthread_condattr_init(&attr), "pthread_condattr_init")
        Self.check(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC), "pthread_condattr_setclock(CLOCK_MONOTONIC)")
        Self.check(pthread_cond_init(cond, &attr), "pthread_cond_init")
        Self.check(pthread_condattr_destroy(&attr), "pthread_condattr_destroy")
        Self.check(pthread_mutex_init(mutex, nil), "pthread_mutex_init")
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Monotonic nanoseconds (CLOCK_MONOTONIC), the base of every deadline here.
    public static func now() -> UInt64 { SystemClock.monotonicNanos() }

    public func lock() { Self.check(pthread_mutex_lock(mutex), "pthread_mutex_lock") }
    public func unlock() { Self.check(pthread_mutex_unlock(mutex), "pthread_mutex_unlock") }
    public func signal() { Self.check(pthread_cond_signal(cond), "pthread_cond_signal") }
    public func broadcast() { Self.check(pthread_cond_broadcast(cond), "pthread_cond_broadcast") }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits (with the lock held) until signalled.
    public func wait() { Self.check(pthread_cond_wait(cond, mutex), "pthread_cond_wait") }

    /// Waits (with the lock held) until signalled or the monotonic deadline; false when the deadline passed.
    /// A wake-up may be spurious: callers re-check their condition, as with any condition variable.
    @discardableResult
    public func wait(untilMonotonicNanos deadline: UInt64) -> Bool {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        let rc = pthread_cond_timedwait(cond, mutex, &ts)
        if rc == ETIMEDOUT { return false }
        Self.check(rc, "pthread_cond_timedwait")
        return true
    }

    /// Waits (with the lock held) at most `nanos`.
    @discardableResult
    public func wait(forNanos nanos: UInt64) -> Bool { wait(untilMonotonicNanos: Self.now() &+ nanos) }

    /// A pthread call on objects this class owns can fail only through a bug (EINVAL, EDEADLK) or when the
    /// system is out of resources at init: neither can be carried on from.
    private static func check(_ rc: Int32, _ call: StaticString) {
        precondition(rc == 0, "\(call) failed: \(SystemError.reason(errno: rc))")
    }
}
