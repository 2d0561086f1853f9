/// The service watchdog's decision (`WATCHDOG=1` to systemd): ping only while every bus thread makes
/// progress and the buffer's writer is not stuck in one commit. Pure: the daemon feeds it measures kept in
/// memory, so the decision never waits on a device or a disk itself.
public enum WatchdogVerdict: Sendable, Equatable {
    case ping
    /// The buffer's writer has been inside one commit (or its oldest append waiting) for `millis`.
    case writerStuck(millis: Int64)
    /// A bus thread has not moved for `millis`: it is inside a call that did not return.
    case busStuck(bus: String, millis: Int64)

    /// One bus thread's progress.
    public struct Bus: Sendable, Equatable {
        public var name: String
        /// Monotonic ms when the thread last moved (a loop step, or between two transactions of a poll).
        public var lastProgress: Int64
        /// The longest it may legitimately go between two marks: one exchange on this bus (connect, response
        /// timeout, the largest read on the wire, inter-frame delay).
        public var allowance: Int64
        public init(name: String, lastProgress: Int64, allowance: Int64) {
            self.name = name; self.lastProgress = lastProgress; self.allowance = allowance
        }
    }

    /// Added to every bus's allowance: its loop wakes at least once a second, and threads get descheduled.
    public static let busMarginMillis: Int64 = 5_000

    /// The verdict at monotonic `now`. A stuck writer comes first (it is the buffer, everything depends on
    /// it); among stuck buses, the one stuck longest is named.
    public static func decide(now: Int64, buses: [Bus], writerStallMillis: Int64, writerLimitMillis: Int64)
        -> WatchdogVerdict
    {
        if writerStallMillis >= writerLimitMillis { return .writerStuck(millis: writerStallMillis) }
        let stuck = buses.map { (bus: $0, idle: now - $0.lastProgress) }
            .filter { $0.idle >= busMarginMillis + $0.bus.allowance }
            .max { ($0.idle, $1.bus.name) < ($1.idle, $0.bus.name) }
        if let s = stuck { return .busStuck(bus: s.bus.name, millis: s.idle) }
        return .ping
    }
}
