/// The Enron Modbus frames edged sends with libmodbus's `modbus_send_raw_request` and checks after
/// `modbus_receive_confirmation` (reference §1.4–1.7, §4.1).
///
/// libmodbus cannot check these replies itself: its byte-count check assumes 2 bytes per requested register,
/// while an archive read's "quantity" is a record index and the reply is one whole record. So
/// `modbus_receive_confirmation` returns the frame unchecked (only the RTU CRC is verified), and every check
/// it would have made — unit id, function code, exception, byte count — is made here, against the device
/// profile's record size rather than against the request.
public enum EnronFrame {
    /// The register of the event/alarm log: read with FC 03, acknowledged with FC 05.
    public static let eventRegister = 32

    /// How a confirmation is framed, as `modbus_receive_confirmation` hands it over.
    public enum Transport: String, Sendable, Equatable, Codable {
        /// Unit id, then the PDU, then a 2-byte CRC libmodbus has already verified.
        case rtu
        /// The 7-byte MBAP header (transaction id, protocol id, length, unit id at offset 6), then the PDU.
        case tcp

        /// Bytes before the function code; the unit id is the last of them.
        public var headerLength: Int { self == .rtu ? 1 : 7 }
        /// Bytes after the PDU.
        public var trailerLength: Int { self == .rtu ? 2 : 0 }
    }

    // MARK: Requests (unit id + function code + data, no CRC or MBAP: libmodbus adds those)

    /// Reads record `index` of the archive at `archive` (e.g. 700, 704): FC 03 with the record index in the
    /// quantity field. Example from simplymodbus: unit 1, archive 701, index 10 → `01 03 02 BD 00 0A`.
    public static func archiveRead(unit: UInt8, archive: Int, index: Int) -> [UInt8] {
        [unit, 0x03] + be16(archive) + be16(index)
    }

    /// Reads the event/alarm log: FC 03 at register 32. Devices ignore the quantity and send all they hold
    /// up to their reply limit; 1 is sent, as simplymodbus's example does.
    public static func eventRead(unit: UInt8) -> [UInt8] {
        [unit, 0x03] + be16(eventRegister) + be16(1)
    }

    /// Acknowledges the events just read so the device stops returning them: FC 05, register 32, `FF00`.
    public static func eventAcknowledge(unit: UInt8) -> [UInt8] {
        [unit, 0x05] + be16(eventRegister) + [0xFF, 0x00]
    }

    /// Reads `count` consecutive registers of one table from `start` (FC 01 for booleans, FC 03 otherwise):
    /// the archive pointers, for instance.
    public static func registerRead(unit: UInt8, start: Int, count: Int) -> [UInt8] {
        let function: UInt8 = EnronRegister.width(of: start) == .boolean ? 0x01 : 0x03
        return [unit, function] + be16(start) + be16(count)
    }

    static func be16(_ v: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }

    // MARK: Confirmations

    /// The data bytes of a read confirmation (after the byte count), exactly as received, after checking the
    /// unit id, exception, function code and that the byte count matches the frame's length.
    /// A byte count of 0 is returned as an empty payload: whether that is acceptable depends on what was read.
    public static func readPayload(
        _ confirmation: [UInt8], transport: Transport, unit: UInt8, function: UInt8 = 0x03
    ) throws(EnronFrameError) -> [UInt8] {
        let h = transport.headerLength
        guard confirmation.count >= h + 2 + transport.trailerLength else {
            throw .truncated(length: confirmation.count)
        }
        guard confirmation[h - 1] == unit else { throw .wrongUnit(expected: unit, got: confirmation[h - 1]) }
        let fc = confirmation[h]
        if fc == function | 0x80 { throw .exception(function: function, code: confirmation[h + 1]) }
        guard fc == function else { throw .unexpectedFunction(expected: function, got: fc) }
        let byteCount = Int(confirmation[h + 1])
        let carried = confirmation.count - h - 2 - transport.trailerLength
        guard byteCount == carried else { throw .byteCountMismatch(byteCount: byteCount, carried: carried) }
        return Array(confirmation[(h + 2)..<(h + 2 + byteCount)])
    }

    /// One archive record, exactly as received: the reply to `archiveRead`, whose byte count must be the
    /// profile's record size (a shorter or longer record is never decoded by guesswork).
    public static func archiveRecord(
        _ confirmation: [UInt8], transport: Transport, unit: UInt8, recordSize: Int
    ) throws(EnronFrameError) -> [UInt8] {
        let payload = try readPayload(confirmation, transport: transport, unit: unit)
        guard !payload.isEmpty else { throw .empty }
        guard payload.count == recordSize else { throw .recordSizeMismatch(expected: recordSize, got: payload.count) }
        return payload
    }

    /// The event records of a reply to `eventRead`, exactly as received; empty when the device has none.
    /// The byte count must be a whole number of records.
    public static func eventRecords(
        _ confirmation: [UInt8], transport: Transport, unit: UInt8, recordSize: Int
    ) throws(EnronFrameError) -> [UInt8] {
        let payload = try readPayload(confirmation, transport: transport, unit: unit)
        guard recordSize > 0, payload.count % recordSize == 0 else {
            throw .notWholeEventRecords(recordSize: recordSize, got: payload.count)
        }
        return payload
    }

    /// Checks the reply to `eventAcknowledge`: the device echoes the request once the log is cleared.
    public static func acknowledgement(
        _ confirmation: [UInt8], transport: Transport, unit: UInt8
    ) throws(EnronFrameError) {
        let h = transport.headerLength
        guard confirmation.count >= h + 2 + transport.trailerLength else {
            throw .truncated(length: confirmation.count)
        }
        guard confirmation[h - 1] == unit else { throw .wrongUnit(expected: unit, got: confirmation[h - 1]) }
        let fc = confirmation[h]
        if fc == 0x85 { throw .exception(function: 0x05, code: confirmation[h + 1]) }
        guard fc == 0x05 else { throw .unexpectedFunction(expected: 0x05, got: fc) }
        let echo = Array(confirmation.dropFirst(h + 1).dropLast(transport.trailerLength))
        guard echo == be16(eventRegister) + [0xFF, 0x00] else { throw .notAnEcho(echo) }
    }
}

/// Why a confirmation was refused. Each case says what the operator needs to tell a wiring or profile fault
/// from a device fault: the unit ids, the exception's name, the sizes.
public enum EnronFrameError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Shorter than a header, a function code and one more byte.
    case truncated(length: Int)
    /// Another device answered (or a late reply to an earlier request arrived).
    case wrongUnit(expected: UInt8, got: UInt8)
    /// The device refused the request with a Modbus exception.
    case exception(function: UInt8, code: UInt8)
    /// A function code that is neither the request's nor its exception.
    case unexpectedFunction(expected: UInt8, got: UInt8)
    /// The byte count disagrees with the bytes the frame carries.
    case byteCountMismatch(byteCount: Int, carried: Int)
    /// An archive reply without data.
    case empty
    /// An archive record of another size than the profile's layout.
    case recordSizeMismatch(expected: Int, got: Int)
    /// An event reply that is not a whole number of records.
    case notWholeEventRecords(recordSize: Int, got: Int)
    /// An acknowledge reply that does not echo register 32 and `FF00`.
    case notAnEcho([UInt8])

    /// The name the Modbus specification gives an exception code.
    public static func exceptionName(_ code: UInt8) -> String {
        switch code {
        case 0x01: "illegal function"
        case 0x02: "illegal data address"
        case 0x03: "illegal data value"
        case 0x04: "server device failure"
        case 0x05: "acknowledge (busy with a long operation)"
        case 0x06: "server device busy"
        case 0x08: "memory parity error"
        case 0x0A: "gateway path unavailable"
        case 0x0B: "gateway target device failed to respond"
        default: "unknown exception"
        }
    }

    public var description: String {
        switch self {
        case .truncated(let n):
            return "reply of \(n) bytes is too short to hold a function code and data"
        case .wrongUnit(let e, let g):
            return "reply from unit \(g), expected unit \(e)"
        case .exception(let f, let c):
            return "exception \(hex(c)) (\(Self.exceptionName(c))) to function \(hex(f))"
        case .unexpectedFunction(let e, let g):
            return "reply with function \(hex(g)), expected \(hex(e))"
        case .byteCountMismatch(let b, let c):
            return "byte count says \(b) bytes, the frame carries \(c)"
        case .empty:
            return "reply carries no data"
        case .recordSizeMismatch(let e, let g):
            return "archive record of \(g) bytes, the profile's layout takes \(e)"
        case .notWholeEventRecords(let s, let g):
            return "event reply of \(g) bytes is not a whole number of \(s)-byte records"
        case .notAnEcho(let bytes):
            return "acknowledge reply \(bytes.map(hex).joined(separator: " ")) does not echo register 32 FF00"
        }
    }

    private func hex(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "0x" + String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
    }
}
