import CEdgeSystem

/// Whether the system clock is synchronized (NTP / chrony / systemd-timesyncd), from the kernel's view.
public enum ClockStatus {
    /// Synchronized only when the kernel says so. When it cannot be asked (adjtimex denied, e.g. by a
    /// seccomp filter), readings are flagged as not synchronized rather than vouched for, and
    /// `lastFailure` says why.
    public static func isSynchronized() -> Bool {
        let r = edge_clock_synchronized()
        if r < 0 {
            failure.withLock { $0 = SystemError("adjtimex", errno: -r).description }
            return false
        }
        return r == 1
    }

    /// Why the last look at the clock failed, if it did.
    public static var lastFailure: String? { failure.withLock { $0 } }
    private static let failure = Locked<String?>(nil)
}
