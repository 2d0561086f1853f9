import CModbus
import EdgeCore
import Foundation

/// The client side of an Enron exchange as edged does it: libmodbus's `modbus_send_raw_request` and
/// `modbus_receive_confirmation` (which adds the MBAP header or CRC and checks nothing else), then `EnronFrame`.
final class EnronTestClient {
    /// A libmodbus call that failed, with its errno.
    struct Failure: Error, CustomStringConvertible {
        var call: String
        var errno: Int32
        var description: String { "\(call): \(String(cString: modbus_strerror(errno)))" }
    }

    let ctx: OpaquePointer
    let transport: EnronFrame.Transport

    init(tcpPort: Int) throws {
        guard let c = modbus_new_tcp("127.0.0.1", Int32(tcpPort)) else {
            throw Failure(call: "modbus_new_tcp", errno: errno)
        }
        ctx = c
        transport = .tcp
        try setUp()
    }

    init(rtuPath: String, unit: Int) throws {
        guard let c = modbus_new_rtu(rtuPath, 19200, 78, 8, 1) else {
            throw Failure(call: "modbus_new_rtu", errno: errno)
        }
        ctx = c
        transport = .rtu
        // libmodbus drops RTU replies from any unit but the context's before checking their CRC.
        guard modbus_set_slave(c, Int32(unit)) == 0 else {
            modbus_free(c)
            throw Failure(call: "modbus_set_slave", errno: errno)
        }
        try setUp()
    }

    private func setUp() throws {
        guard modbus_set_response_timeout(ctx, 0, 400_000) == 0 else {
            modbus_free(ctx)
            throw Failure(call: "modbus_set_response_timeout", errno: errno)
        }
        guard modbus_connect(ctx) == 0 else {
            let e = errno
            modbus_free(ctx)
            throw Failure(call: "modbus_connect", errno: e)
        }
    }

    deinit {
        modbus_close(ctx)
        modbus_free(ctx)
    }

    /// Sends `request` (unit, function, data) and returns the confirmation as libmodbus hands it over.
    func exchange(_ request: [UInt8]) throws -> [UInt8] {
        let sent = request.withUnsafeBufferPointer { modbus_send_raw_request(ctx, $0.baseAddress, Int32($0.count)) }
        guard sent > 0 else { throw Failure(call: "modbus_send_raw_request", errno: errno) }
        var reply = [UInt8](repeating: 0, count: Int(MODBUS_MAX_ADU_LENGTH))
        let n = reply.withUnsafeMutableBufferPointer { modbus_receive_confirmation(ctx, $0.baseAddress) }
        guard n > 0 else {
            let e = errno
            // What edged does after a failed exchange: drop whatever arrives late.
            guard modbus_flush(ctx) >= 0 else { throw Failure(call: "modbus_flush", errno: errno) }
            throw Failure(call: "modbus_receive_confirmation", errno: n == 0 ? ENODATA : e)
        }
        return Array(reply[..<Int(n)])
    }

    /// The float values of `count` registers from `start`, read with FC 03.
    func floats(unit: UInt8, start: Int, count: Int, order: WordOrder) throws -> [Float] {
        let reply = try exchange(EnronFrame.registerRead(unit: unit, start: start, count: count))
        let payload = try EnronFrame.readPayload(reply, transport: transport, unit: unit)
        return try EnronRegister.decode(payload, start: start, count: count, order: order).map { Float($0.number) }
    }

    /// Record `index` of an archive, decoded.
    func record(unit: UInt8, _ archive: ArchiveProfile, index: Int, order: WordOrder) throws -> ArchiveRecord {
        let reply = try exchange(EnronFrame.archiveRead(unit: unit, archive: archive.register.value, index: index))
        let raw = try EnronFrame.archiveRecord(
            reply, transport: transport, unit: unit, recordSize: archive.layout.recordSize)
        return try ArchiveRecord(raw: raw, archive: archive, index: index, order: order)
    }

    /// One read of the event log, decoded.
    func events(unit: UInt8, order: WordOrder) throws -> [EventRecord] {
        let reply = try exchange(EnronFrame.eventRead(unit: unit))
        let bytes = try EnronFrame.eventRecords(reply, transport: transport, unit: unit, recordSize: 20)
        return try EventRecord.decodeAll(bytes, order: order)
    }

    func acknowledge(unit: UInt8) throws {
        try EnronFrame.acknowledgement(
            exchange(EnronFrame.eventAcknowledge(unit: unit)), transport: transport, unit: unit)
    }
}
