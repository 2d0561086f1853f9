import CEdgeShim

/// Whether the system clock is synchronized (NTP / chrony / systemd-timesyncd), from the kernel's view.
public enum ClockStatus {
    public static func isSynchronized() -> Bool { edge_clock_synchronized() != 0 }
}
