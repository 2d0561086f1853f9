import EdgeCore
import EdgeSystem
import Foundation

/// Modbus RTU frames (with CRC) over a raw TCP socket: serial device servers such as a Moxa NPort in
/// raw/TCP-server mode. libmodbus has no such backend, so the framing is ours (`RTUFraming`).
public final class RTUOverTCPLink: ModbusLink {
    public let bus: BusConfig
    private var fd: Int32 = -1
    public var isConnected: Bool { fd >= 0 }

    public init(bus: BusConfig) { self.bus = bus }
    deinit { close() }

    private var target: String { "\(bus.endpoint!.host):\(bus.endpoint!.port)" }

    public func connect() throws(ModbusError) {
        guard fd < 0 else { return }
        let ep = bus.endpoint!
        do {
            fd = try TCPSocket.connect(host: ep.host, port: ep.port, timeoutMillis: Int(ep.connectTimeout.milliseconds))
        } catch {
            throw ModbusError(.link("cannot connect to \(target): \(error.reason)"), bus: bus.name)
        }
    }

    public func close() {
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
    }

    public func readRegisters(unit: Int, table: RegisterTable, start: Int, count: Int) throws(ModbusError) -> [UInt16] {
        RTUFraming.registers(try transact(unit: unit, table: table, start: start, count: count))
    }

    public func readBits(unit: Int, table: RegisterTable, start: Int, count: Int) throws(ModbusError) -> [Bool] {
        RTUFraming.bits(try transact(unit: unit, table: table, start: start, count: count), count: count)
    }

    private func transact(unit: Int, table: RegisterTable, start: Int, count: Int) throws(ModbusError) -> [UInt8] {
        let request = "\(table.rawValue) \(start)..\(start + count - 1)"
        func fail(_ kind: ModbusError.Kind) -> ModbusError {
            ModbusError(kind, bus: bus.name, unit: unit, request: request, timeout: "\(bus.responseTimeout)")
        }
        if let why = UnitID.refusal(unit, on: bus.kind) { throw fail(.link("\(why); nothing was sent")) }
        try connect()
        // Whatever a previous, timed-out exchange left behind is not this response.
        TCPSocket.drain(fd)
        let frame = RTUFraming.readRequest(unit: UInt8(unit), function: table.readFunction, start: start, count: count)
        do { try TCPSocket.writeAll(fd, frame) } catch {
            close()
            throw fail(.link("write to \(target) failed: \(error.reason)"))
        }
        var response: [UInt8] = []
        let firstByteDeadline = Int(bus.responseTimeout.milliseconds)
        let byteTimeout = Int(bus.byteTimeout?.milliseconds ?? 100)
        while true {
            let need = RTUFraming.expectedLength(response).map { $0 - response.count } ?? (3 - response.count)
            if need <= 0 { break }
            let chunk: [UInt8]
            do {
                chunk = try TCPSocket.read(
                    fd, max: need, timeoutMillis: response.isEmpty ? firstByteDeadline : byteTimeout)
            } catch {
                close()
                throw fail(.link("read from \(target) failed: \(error.reason)"))
            }
            if chunk.isEmpty {
                throw response.isEmpty
                    ? fail(.timeout) : fail(.framing("response stopped after \(response.count) bytes"))
            }
            response += chunk
            if response.count >= 3, RTUFraming.expectedLength(response)! > 256 { break }
        }
        do {
            switch try RTUFraming.parseResponse(response, unit: UInt8(unit), function: table.readFunction) {
            case .exception(let code): throw fail(.exception(code))
            case .data(let data):
                let want = table.isBitTable ? (count + 7) / 8 : 2 * count
                guard data.count == want else { throw fail(.framing("\(data.count) data bytes instead of \(want)")) }
                return data
            }
        } catch let e as RTUFraming.FrameError {
            TCPSocket.drain(fd)
            switch e {
            case .badCRC: throw fail(.framing("bad CRC"))
            case .wrongUnit(let u): throw fail(.framing("answer from unit \(u)"))
            case .wrongFunction(let f): throw fail(.framing("function \(f) in the answer"))
            case .badLength: throw fail(.framing("bad length"))
            }
        } catch let e as ModbusError {
            throw e
        } catch {
            throw fail(.framing("\(error)"))
        }
    }

    /// Enron Modbus needs a bus that libmodbus drives (RTU or TCP): this link has no raw request path.
    public func rawExchange(unit: Int, request: [UInt8], describe: String) throws(ModbusError) -> [UInt8] {
        throw ModbusError(
            .link("Enron Modbus needs an RTU or TCP bus; this one has no raw request path"), bus: bus.name, unit: unit,
            request: describe)
    }

    public func discardPending() { close() }
}
