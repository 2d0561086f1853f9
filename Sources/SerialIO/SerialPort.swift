import CEdgeShim
import EdgeCore
import Foundation

/// Serial port concerns libmodbus leaves to us: RS-485 direction control with delays, and whether a
/// (USB) serial device is present.
public enum SerialPort {
    /// Puts the port into RS-485 mode through the kernel driver (`TIOCSRS485`). Returns nil on success, or
    /// a note for the log when the driver has no RS-485 support (ptys, many USB adapters) and the port
    /// stays as it is: RS-485 adapters with automatic direction control work that way too.
    public static func enableRS485(fd: Int32, _ s: RS485Settings) -> String? {
        let rc = edge_serial_set_rs485(
            fd, 1, s.rtsOnSend ? 1 : 0, s.rtsAfterSend ? 1 : 0,
            UInt32(s.delayBeforeSend.milliseconds), UInt32(s.delayAfterSend.milliseconds))
        guard rc != 0 else { return nil }
        return "RS-485 mode not available from this driver (\(String(cString: strerror(rc)))); "
            + "relying on the adapter's automatic direction control"
    }

    /// Whether the device node exists (a USB adapter that was unplugged has none).
    public static func isPresent(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }
}
