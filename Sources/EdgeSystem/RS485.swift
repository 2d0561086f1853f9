import CEdgeSystem

/// RS-485 direction control through the kernel's serial driver (`TIOCSRS485`).
public enum RS485 {
    /// Puts the port into RS-485 mode: RTS raised while sending or after, with delays around the frame.
    /// Throws the ioctl's errno: ENOTTY or EINVAL when the driver (a pty, many USB adapters) has no RS-485
    /// support. EINTR is retried.
    public static func enable(
        fd: Int32, rtsOnSend: Bool, rtsAfterSend: Bool, delayBeforeMillis: UInt32, delayAfterMillis: UInt32
    ) throws(SystemError) {
        let rc = edge_serial_set_rs485(
            fd, 1, rtsOnSend ? 1 : 0, rtsAfterSend ? 1 : 0, delayBeforeMillis, delayAfterMillis)
        if rc != 0 { throw SystemError("ioctl(TIOCSRS485)", errno: rc) }
    }
}
