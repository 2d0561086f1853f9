/// Modbus RTU framing: CRC-16 (polynomial 0xA001, initial 0xFFFF, sent low byte first) and the frames of
/// the read function codes. Used for RTU over TCP, which libmodbus has no backend for, and by the simulator.
public enum RTUFraming {
    public static func crc16<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        var crc: UInt16 = 0xFFFF
        for b in bytes {
            crc ^= UInt16(b)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xA001 : crc >> 1 }
        }
        return crc
    }

    /// Appends the CRC, low byte first.
    public static func sealed(_ body: [UInt8]) -> [UInt8] {
        let crc = crc16(body)
        return body + [UInt8(crc & 0xFF), UInt8(crc >> 8)]
    }

    /// Whether the last two bytes are the CRC of the rest.
    public static func checks(_ frame: [UInt8]) -> Bool {
        guard frame.count >= 4 else { return false }
        let crc = crc16(frame.dropLast(2))
        return frame[frame.count - 2] == UInt8(crc & 0xFF) && frame[frame.count - 1] == UInt8(crc >> 8)
    }

    /// A read request (FC01–04): unit, function, start, count, CRC — 8 bytes.
    public static func readRequest(unit: UInt8, function: UInt8, start: Int, count: Int) -> [UInt8] {
        sealed([unit, function, UInt8(start >> 8), UInt8(start & 0xFF), UInt8(count >> 8), UInt8(count & 0xFF)])
    }

    /// What a complete response holds.
    public enum Response: Equatable, Sendable {
        case data([UInt8])
        case exception(UInt8)
    }

    /// Problems with a response frame.
    public enum FrameError: Error, Equatable, Sendable {
        case badCRC
        case wrongUnit(UInt8)
        case wrongFunction(UInt8)
        case badLength
    }

    /// Bytes a response needs in total, given the bytes seen so far; nil until that is known.
    public static func expectedLength(_ head: [UInt8]) -> Int? {
        guard head.count >= 2 else { return nil }
        if head[1] & 0x80 != 0 { return 5 }
        guard head.count >= 3 else { return nil }
        return 3 + Int(head[2]) + 2
    }

    /// Parses a complete response to a read request.
    public static func parseResponse(_ frame: [UInt8], unit: UInt8, function: UInt8) throws(FrameError) -> Response {
        guard let n = expectedLength(frame), frame.count == n else { throw .badLength }
        guard checks(frame) else { throw .badCRC }
        guard frame[0] == unit else { throw .wrongUnit(frame[0]) }
        if frame[1] == function | 0x80 { return .exception(frame[2]) }
        guard frame[1] == function else { throw .wrongFunction(frame[1]) }
        return .data(Array(frame[3..<(3 + Int(frame[2]))]))
    }

    /// Registers from response data bytes (big-endian words).
    public static func registers(_ data: [UInt8]) -> [UInt16] {
        stride(from: 0, to: data.count - 1, by: 2).map { UInt16(data[$0]) << 8 | UInt16(data[$0 + 1]) }
    }

    /// Bits from response data bytes (least significant bit first).
    public static func bits(_ data: [UInt8], count: Int) -> [Bool] {
        (0..<count).map { i in i / 8 < data.count && (data[i / 8] >> UInt8(i % 8)) & 1 == 1 }
    }
}
