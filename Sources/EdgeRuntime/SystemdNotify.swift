import CSystemd
import Foundation

/// The service manager's side channel (`sd_notify`): READY, STATUS, WATCHDOG, STOPPING, RELOADING.
/// Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.
public enum SystemdNotify {
    public static var isSupervised: Bool { ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] != nil }

    @discardableResult
    public static func send(_ state: String) -> Bool { sd_notify(0, state) > 0 }

    public static func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    public static func status(_ s: String) { send("STATUS=\(s)") }
    public static func stopping() { send("STOPPING=1") }
    public static func reloading() { send("RELOADING=1") }
    public static func watchdog() { send("WATCHDOG=1") }

    /// The watchdog interval systemd expects pings within, or nil when the watchdog is off.
    public static var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec))
    }
}
