/// Which Modbus unit ids a bus can address.
///
/// On a serial line (RTU, and RTU framed over TCP) a unit id is a device address: 1–247 (0 is broadcast,
/// which no device answers; 248–255 are reserved). On Modbus TCP the unit id selects a device behind a
/// gateway, and libmodbus 3.1.6 — the one Debian 12 ships — takes 0–247 and 255 there (`modbus_set_slave`
/// refuses 248–254 with EINVAL and keeps the previous unit, so the request would go to another device).
public enum UnitID {
    /// The unit ids a bus of `kind` takes, as the error message says them.
    public static func accepted(on kind: BusConfig.Kind) -> String {
        kind == .tcp ? "0–247 or 255" : "1–247"
    }

    /// Whether `unit` can be addressed on a bus of `kind`.
    public static func isAddressable(_ unit: Int, on kind: BusConfig.Kind) -> Bool {
        switch kind {
        case .tcp: (0...247).contains(unit) || unit == 255
        case .rtu, .rtuOverTCP: (1...247).contains(unit)
        }
    }

    /// Why `unit` cannot be used on a bus of `kind`, or nil when it can.
    public static func refusal(_ unit: Int, on kind: BusConfig.Kind) -> String? {
        guard !isAddressable(unit, on: kind) else { return nil }
        switch kind {
        case .tcp:
            return "unit \(unit) cannot be addressed on a Modbus TCP bus: libmodbus takes unit ids 0–247 and 255 there"
        case .rtu, .rtuOverTCP:
            return "\(unit) is out of range 1...247 (unit ids on a serial line)"
        }
    }
}
