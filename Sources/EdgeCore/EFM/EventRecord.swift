/// One record of the event/alarm log (register 32), decoded from the standard 20-byte layout with the bytes
/// it came from (reference §1.6). Operator events and alarms share the layout; bit 9 tells them apart.
public struct EventRecord: Sendable, Equatable, Codable {
    /// The alarm limit an alarm record's bits 10–14 name.
    public enum Limit: String, Sendable, Equatable, Codable, CaseIterable {
        case loLo, lo, hi, hiHi, rateOfChange
    }

    public var bitmap: UInt16
    /// The Modbus register that changed or alarmed.
    public var register: UInt16
    public var timestamp: DeviceTimestamp
    /// The value before an operator's change, or the alarmed value.
    public var asFound: Float
    /// The value after an operator's change; zero-filled in alarms.
    public var asLeft: Float
    /// The 20 bytes exactly as the device sent them.
    public var raw: [UInt8]

    /// Decodes one 20-byte record. Time comes before date here, the reverse of history records.
    public init(raw: [UInt8], order: WordOrder) throws(EFMDecodeError) {
        guard raw.count == EventLayout.standard20.recordSize else {
            throw .size(expected: EventLayout.standard20.recordSize, got: raw.count)
        }
        let time = EnronRegister.float(raw, at: 4, order: order)
        let date = EnronRegister.float(raw, at: 8, order: order)
        guard let ts = DeviceTimestamp(date: date, time: time, format: .hhmmss) else {
            throw .timestamp(date: date, time: time)
        }
        bitmap = UInt16(raw[0]) << 8 | UInt16(raw[1])
        register = UInt16(raw[2]) << 8 | UInt16(raw[3])
        timestamp = ts
        asFound = EnronRegister.float(raw, at: 12, order: order)
        asLeft = EnronRegister.float(raw, at: 16, order: order)
        self.raw = raw
    }

    /// Splits a reply's event bytes into records, oldest first as the device sends them.
    public static func decodeAll(_ bytes: [UInt8], order: WordOrder) throws(EFMDecodeError) -> [EventRecord] {
        let size = EventLayout.standard20.recordSize
        guard bytes.count % size == 0 else { throw .size(expected: size, got: bytes.count % size) }
        var out: [EventRecord] = []
        for start in stride(from: 0, to: bytes.count, by: size) {
            out.append(try EventRecord(raw: Array(bytes[start..<(start + size)]), order: order))
        }
        return out
    }

    /// Bit 9: an operator's change (1) rather than an alarm (0).
    public var isOperatorEvent: Bool { bitmap & (1 << 9) != 0 }

    /// Bit 15 of an alarm: set (true) or cleared (false); nil for operator events.
    public var alarmSet: Bool? { isOperatorEvent ? nil : bitmap & (1 << 15) != 0 }

    /// The limits bits 10–14 name. In an alarm, the limit crossed; in an operator event, the limit changed.
    public var limits: [Limit] {
        Limit.allCases.enumerated().filter { bitmap & (1 << UInt16(10 + $0.offset)) != 0 }.map(\.element)
    }

    /// Device timestamp, register and bitmap, plus the raw bytes' hash: two events at the same second on the
    /// same register with the same bits but other values are different bytes, so a conflict, not a duplicate.
    public var identity: RecordIdentity {
        RecordIdentity(key: "event@\(timestamp)/r\(register)/b\(bitmap)", raw: raw)
    }
}
