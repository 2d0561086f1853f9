import EdgeCore
import EdgeSystem

/// Serial port concerns libmodbus leaves to us: RS-485 direction control with delays.
public enum SerialPort {
    /// Puts the port into RS-485 mode through the kernel driver. Returns nil on success, or a note for the
    /// log when the driver has no RS-485 support (ptys, many USB adapters) and the port stays as it is:
    /// RS-485 adapters with automatic direction control work that way too.
    public static func enableRS485(fd: Int32, _ s: RS485Settings) -> String? {
        do {
            try RS485.enable(
                fd: fd, rtsOnSend: s.rtsOnSend, rtsAfterSend: s.rtsAfterSend,
                delayBeforeMillis: UInt32(clamping: s.delayBeforeSend.milliseconds),
                delayAfterMillis: UInt32(clamping: s.delayAfterSend.milliseconds))
            return nil
        } catch {
            return "RS-485 mode not available from this driver (\(error.reason)); "
                + "relying on the adapter's automatic direction control"
        }
    }
}
