/// Enron Modbus register conventions (reference §1.2): the register number is the wire address, with no
/// 40001-style offset, and the number's range alone decides how wide one value is. One register is one whole
/// value, so a reply to a read of N 32-bit registers carries 4·N bytes — which is why libmodbus's normal read
/// calls reject it and edged decodes the bytes itself.
public enum EnronRegister {
    /// How wide one register's value is, decided by its number.
    public enum Width: String, Sendable, Equatable, Codable {
        /// 1001–1999, read with FC 01: one bit per register, packed least significant bit first.
        case boolean
        /// 3001–3999: one 16-bit value, high byte first.
        case int16
        /// 5001–5999: one 32-bit integer in 4 bytes.
        case int32
        /// 7000–9999: one IEEE-754 float in 4 bytes. The table is nominally 7001–7999, but devices put floats
        /// beside it: the Scanner 2000's archive pointers are 7000 and 7001 (manual p.176), the Scanner 3100's
        /// floats go up to ~9976 — so 7000–9999 are floats.
        case float32
    }

    /// One decoded register value.
    public enum Value: Sendable, Equatable {
        case boolean(Bool)
        case int16(Int16)
        case int32(Int32)
        case float32(Float)

        /// The value as a number (booleans as 0 or 1); exact for every case, floats included.
        public var number: Double {
            switch self {
            case .boolean(let b): b ? 1 : 0
            case .int16(let v): Double(v)
            case .int32(let v): Double(v)
            case .float32(let v): Double(v)
            }
        }
    }

    /// Why a reply's bytes cannot be read as the registers that were asked for.
    public enum DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The register number is in none of the Enron tables.
        case notAnEnronRegister(Int)
        /// The registers asked for span two tables, which one read cannot return.
        case mixedWidths(start: Int, count: Int)
        /// The reply holds a different number of bytes than `count` registers take.
        case wrongByteCount(start: Int, count: Int, expected: Int, got: Int)

        public var description: String {
            switch self {
            case .notAnEnronRegister(let r):
                return "register \(r) is in no Enron table (1001–1999, 3001–3999, 5001–5999, 7000–9999)"
            case .mixedWidths(let start, let count):
                return "registers \(start)...\(start + count - 1) span two Enron tables; one read returns one table"
            case .wrongByteCount(let start, let count, let expected, let got):
                return "registers \(start)...\(start + count - 1) take \(expected) bytes, the reply holds \(got)"
            }
        }
    }

    /// The width of `register`'s value, or nil when the number is in no Enron table.
    public static func width(of register: Int) -> Width? {
        switch register {
        case 1001...1999: .boolean
        case 3001...3999: .int16
        case 5001...5999: .int32
        case 7000...9999: .float32
        default: nil
        }
    }

    /// Bytes a reply to a read of `count` registers of `width` carries.
    public static func byteCount(_ width: Width, count: Int) -> Int {
        switch width {
        case .boolean: (count + 7) / 8
        case .int16: 2 * count
        case .int32, .float32: 4 * count
        }
    }

    /// Decodes the values of `count` registers from `start` out of a reply's data bytes (after the byte count).
    ///
    /// `order` applies to 32-bit values only: shorts are high byte first on every device documented. The bytes
    /// must be exactly what the registers take; a longer or shorter reply is an error, not a partial result.
    public static func decode(
        _ bytes: [UInt8], start: Int, count: Int, order: WordOrder = .abcd
    ) throws(DecodeError) -> [Value] {
        guard let width = width(of: start) else { throw .notAnEnronRegister(start) }
        guard count >= 1, self.width(of: start + count - 1) == width else {
            throw .mixedWidths(start: start, count: count)
        }
        let expected = byteCount(width, count: count)
        guard bytes.count == expected else {
            throw .wrongByteCount(start: start, count: count, expected: expected, got: bytes.count)
        }
        switch width {
        case .boolean:
            return (0..<count).map { .boolean((bytes[$0 / 8] >> UInt8($0 % 8)) & 1 == 1) }
        case .int16:
            return (0..<count).map { .int16(Int16(bitPattern: UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]))) }
        case .int32:
            return (0..<count).map { .int32(Int32(bitPattern: word32(bytes, at: 4 * $0, order: order))) }
        case .float32:
            return (0..<count).map { .float32(Float(bitPattern: word32(bytes, at: 4 * $0, order: order))) }
        }
    }

    /// The 32-bit pattern of the 4 bytes at `offset`, put back into ABCD order from the device's `order`.
    /// ABCD: as sent (high word first, high byte first). CDAB: words swapped. BADC: bytes swapped in each word.
    /// DCBA: all four reversed.
    public static func word32(_ bytes: [UInt8], at offset: Int, order: WordOrder = .abcd) -> UInt32 {
        let b = (0..<4).map { UInt32(bytes[offset + $0]) }
        switch order {
        case .abcd: return b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]
        case .cdab: return b[2] << 24 | b[3] << 16 | b[0] << 8 | b[1]
        case .badc: return b[1] << 24 | b[0] << 16 | b[3] << 8 | b[2]
        case .dcba: return b[3] << 24 | b[2] << 16 | b[1] << 8 | b[0]
        }
    }

    /// The float at `offset` (4 bytes) in the device's word order.
    public static func float(_ bytes: [UInt8], at offset: Int, order: WordOrder = .abcd) -> Float {
        Float(bitPattern: word32(bytes, at: offset, order: order))
    }

    /// The 4 bytes a device in `order` sends for `pattern`: the inverse of `word32`, for fakes and simulators.
    public static func bytes(of pattern: UInt32, order: WordOrder = .abcd) -> [UInt8] {
        let abcd = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: pattern >> UInt32($0)) }
        switch order {
        case .abcd: return abcd
        case .cdab: return [abcd[2], abcd[3], abcd[0], abcd[1]]
        case .badc: return [abcd[1], abcd[0], abcd[3], abcd[2]]
        case .dcba: return abcd.reversed()
        }
    }

    /// The 4 bytes a device in `order` sends for `value`.
    public static func bytes(of value: Float, order: WordOrder = .abcd) -> [UInt8] {
        bytes(of: value.bitPattern, order: order)
    }
}
