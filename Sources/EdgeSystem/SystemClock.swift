#if canImport(Glibc)
    import Glibc
#endif

/// The two clocks, read one way everywhere: the monotonic clock for every wait, deadline, duration and
/// ordering (it never steps, not even when NTP sets the time of a box without an RTC battery), and the wall
/// clock only for timestamps (readings, records, the month of the data budget).
public enum SystemClock {
    /// CLOCK_MONOTONIC in nanoseconds. clock_gettime cannot fail for these clocks with a valid pointer.
    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
    public static func monotonicMillis() -> Int64 { Int64(monotonicNanos() / 1_000_000) }
    /// CLOCK_REALTIME in milliseconds since 1970 (UTC): for timestamps only.
    public static func wallMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
