import CModbus
import EdgeCore
import Foundation
import SerialIO

/// Modbus RTU and TCP through libmodbus. One instance per bus thread (libmodbus contexts are not thread-safe).
public final class LibmodbusLink: ModbusLink {
    public let bus: BusConfig
    private let ctx: OpaquePointer
    public private(set) var isConnected = false
    /// Why the port's RS-485 mode could not be set on the last connect, until `takeRS485Note()` takes it
    /// (the bus thread logs it once per connection).
    private var rs485Note: String?

    /// The RS-485 note of the last connect, once.
    public func takeRS485Note() -> String? {
        defer { rs485Note = nil }
        return rs485Note
    }

    public init(bus: BusConfig) throws(ModbusError) {
        self.bus = bus
        let made: OpaquePointer?
        switch bus.kind {
        case .tcp:
            let ep = bus.endpoint!
            made = modbus_new_tcp_pi(ep.host, String(ep.port))
        case .rtu:
            let s = bus.serial ?? SerialLine(baud: 9600, parity: .none, dataBits: 8, stopBits: 1)
            let parity: CChar =
                switch s.parity {
                case .none: 78;
                case .even: 69;
                case .odd: 79
                }  // N E O
            made = modbus_new_rtu(bus.device!, Int32(s.baud), parity, Int32(s.dataBits), Int32(s.stopBits))
        case .rtuOverTCP:
            throw ModbusError(.link("libmodbus has no RTU-over-TCP backend"), bus: bus.name)
        }
        guard let made else {
            throw ModbusError(
                .link("cannot create a libmodbus context: \(String(cString: modbus_strerror(errno)))"), bus: bus.name)
        }
        ctx = made
        modbus_set_error_recovery(ctx, MODBUS_ERROR_RECOVERY_NONE)
        Self.setTimeout(ctx, bus.responseTimeout, modbus_set_response_timeout)
        if let bt = bus.byteTimeout { Self.setTimeout(ctx, bt, modbus_set_byte_timeout) }
    }

    deinit {
        if isConnected { modbus_close(ctx) }
        modbus_free(ctx)
    }

    private static func setTimeout(
        _ ctx: OpaquePointer, _ t: TimeSpan,
        _ f: (OpaquePointer?, UInt32, UInt32) -> Int32
    ) {
        let ms = max(1, t.milliseconds)
        _ = f(ctx, UInt32(ms / 1000), UInt32((ms % 1000) * 1000))
    }

    public func connect() throws(ModbusError) {
        guard !isConnected else { return }
        if bus.kind == .tcp, let ep = bus.endpoint {
            // libmodbus waits for a TCP connect with the response timeout.
            Self.setTimeout(ctx, ep.connectTimeout, modbus_set_response_timeout)
        }
        let rc = modbus_connect(ctx)
        let err = errno
        Self.setTimeout(ctx, bus.responseTimeout, modbus_set_response_timeout)
        guard rc == 0 else {
            let target = bus.kind == .tcp ? "\(bus.endpoint!.host):\(bus.endpoint!.port)" : bus.device!
            throw ModbusError(.link("cannot open \(target): \(String(cString: modbus_strerror(err)))"), bus: bus.name)
        }
        isConnected = true
        if bus.kind == .rtu, let rs485 = bus.rs485 {
            rs485Note = SerialPort.enableRS485(fd: modbus_get_socket(ctx), rs485)
        }
    }

    public func close() {
        guard isConnected else { return }
        modbus_close(ctx)
        isConnected = false
    }

    public func readRegisters(unit: Int, table: RegisterTable, start: Int, count: Int) throws(ModbusError) -> [UInt16] {
        try transaction(unit: unit, table: table, start: start, count: count, zero: UInt16(0)) { ctx, s, n, buf in
            table == .input ? modbus_read_input_registers(ctx, s, n, buf) : modbus_read_registers(ctx, s, n, buf)
        }
    }

    public func readBits(unit: Int, table: RegisterTable, start: Int, count: Int) throws(ModbusError) -> [Bool] {
        try transaction(unit: unit, table: table, start: start, count: count, zero: UInt8(0)) { ctx, s, n, buf in
            table == .discrete ? modbus_read_input_bits(ctx, s, n, buf) : modbus_read_bits(ctx, s, n, buf)
        }.map { $0 != 0 }
    }

    /// One request sent as given (unit id and function code first; libmodbus adds the CRC or the MBAP
    /// header) and its confirmation as received — for Enron Modbus, whose replies libmodbus's read calls
    /// reject (4 bytes per 32-bit register; an archive read's quantity is a record index). libmodbus checks
    /// the CRC, the byte count against the frame and the ADU size; everything else — unit id, function code,
    /// exception, byte count against the request — is the caller's (`EnronFrame`).
    public func rawExchange(unit: Int, request: [UInt8], describe: String) throws(ModbusError) -> [UInt8] {
        try connect()
        guard modbus_set_slave(ctx, Int32(unit)) == 0 else {
            let why =
                UnitID.refusal(unit, on: bus.kind)
                ?? "libmodbus refused unit \(unit): \(String(cString: modbus_strerror(errno)))"
            throw ModbusError(.link("\(why); nothing was sent"), bus: bus.name, unit: unit, request: describe)
        }
        let sent = request.withUnsafeBufferPointer { modbus_send_raw_request(ctx, $0.baseAddress, Int32($0.count)) }
        guard sent > 0 else { throw rawFailure(errno, unit: unit, request: describe, rc: sent) }
        var reply = [UInt8](repeating: 0, count: Int(MODBUS_MAX_ADU_LENGTH))
        let n = reply.withUnsafeMutableBufferPointer { modbus_receive_confirmation(ctx, $0.baseAddress) }
        guard n > 0 else { throw rawFailure(errno, unit: unit, request: describe, rc: n) }
        return Array(reply.prefix(Int(n)))
    }

    /// A serial line is flushed; a TCP connection replaced (a late answer may still be on its way).
    public func discardPending() {
        guard isConnected else { return }
        if bus.kind == .tcp || modbus_flush(ctx) < 0 { close() }
    }

    /// A raw exchange failed. libmodbus does not match a raw confirmation to its request (no TCP transaction
    /// id check), so after a timeout or a garbled reply a TCP connection is replaced and a serial line
    /// flushed: a late answer must never be read as the answer to the next request.
    private func rawFailure(_ err: Int32, unit: Int, request: String, rc: Int32) -> ModbusError {
        let error = failure(err, unit: unit, request: request, rc: rc, expected: nil)
        if bus.kind == .tcp, error.kind == .timeout { close() }
        return error
    }

    /// One read: connects if needed, addresses `unit`, and calls `read` (context, start, count, buffer),
    /// which must fill `count` values; anything else becomes a typed error.
    private func transaction<T>(
        unit: Int, table: RegisterTable, start: Int, count: Int, zero: T,
        _ read: (OpaquePointer, Int32, Int32, UnsafeMutablePointer<T>?) -> Int32
    ) throws(ModbusError) -> [T] {
        try connect()
        // libmodbus refuses some unit ids (248–254 on TCP) and then keeps the previous one: a read sent
        // anyway would be answered by another device and its values stored under this one.
        guard modbus_set_slave(ctx, Int32(unit)) == 0 else {
            let why =
                UnitID.refusal(unit, on: bus.kind)
                ?? "libmodbus refused unit \(unit): \(String(cString: modbus_strerror(errno)))"
            throw ModbusError(
                .link("\(why); nothing was sent"), bus: bus.name, unit: unit,
                request: "\(table.rawValue) \(start)..\(start + count - 1)")
        }
        var out = [T](repeating: zero, count: count)
        let rc = out.withUnsafeMutableBufferPointer { buf in read(ctx, Int32(start), Int32(count), buf.baseAddress) }
        guard rc == count else {
            throw failure(
                errno, unit: unit, request: "\(table.rawValue) \(start)..\(start + count - 1)", rc: rc, expected: count)
        }
        return out
    }

    /// Maps libmodbus's errno to a typed error, and leaves the link ready for the next transaction.
    private func failure(_ err: Int32, unit: Int, request: String, rc: Int32, expected: Int?) -> ModbusError {
        let base = Int32(MODBUS_ENOBASE)
        let kind: ModbusError.Kind
        if rc >= 0 {
            kind = .framing(expected.map { "\(rc) values instead of \($0)" } ?? "an empty reply")
        } else if err > base && err <= base + 11 {
            kind = .exception(UInt8(err - base))
        } else if err > base + 11 {
            kind = .framing(String(cString: modbus_strerror(err)))  // bad CRC, bad data, wrong unit, too much data
        } else if err == ETIMEDOUT {
            kind = .timeout
        } else {
            kind = .link(String(cString: modbus_strerror(err)))
        }
        switch kind {
        case .link: close()
        case .timeout, .framing:
            // Drop whatever arrives late so it is not taken for the next response; TCP peers that
            // send garbage get a fresh connection.
            // A flush that fails (the port went away) would leave a late answer to be read as the next one.
            if bus.kind == .tcp, case .framing = kind { close() } else if modbus_flush(ctx) < 0 { close() }
        case .exception: break
        }
        return ModbusError(kind, bus: bus.name, unit: unit, request: request, timeout: "\(bus.responseTimeout)")
    }
}
