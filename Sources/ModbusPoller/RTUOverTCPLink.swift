import EdgeCore
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
            fd = try Socket.connect(host: ep.host, port: ep.port, timeoutMillis: Int(ep.connectTimeout.milliseconds))
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
        Socket.drain(fd)
        let frame = RTUFraming.readRequest(unit: UInt8(unit), function: table.readFunction, start: start, count: count)
        do { try Socket.writeAll(fd, frame) } catch {
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
                chunk = try Socket.read(
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
            Socket.drain(fd)
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
}

/// Blocking socket calls with timeouts, errno turned into a typed error in one place (EINTR retried).
enum Socket {
    struct Failure: Error { var reason: String }

    static func describe(_ err: Int32) -> String { String(cString: strerror(err)) }

    static func connect(host: String, port: Int, timeoutMillis: Int) throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &res)
        guard rc == 0, let first = res else {
            throw Failure(reason: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(res) }
        var lastError = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            let fd = socket(
                a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.pointee.ai_protocol)
            if fd < 0 { lastError = describe(errno); continue }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var r = Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen)
            if r < 0 && errno == EINPROGRESS {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                repeat { r = poll(&p, 1, Int32(timeoutMillis)) } while r < 0 && errno == EINTR
                if r == 0 { Glibc.close(fd); lastError = "connect timed out after \(timeoutMillis) ms"; continue }
                var soErr: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soErr, &len)
                if soErr != 0 { Glibc.close(fd); lastError = describe(soErr); continue }
            } else if r < 0 {
                lastError = describe(errno); Glibc.close(fd); continue
            }
            _ = fcntl(fd, F_SETFL, flags)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            return fd
        }
        throw Failure(reason: lastError)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Failure) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; throw Failure(reason: describe(errno)) }
            off += n
        }
    }

    /// Up to `max` bytes, or none when nothing arrives within the timeout.
    static func read(_ fd: Int32, max: Int, timeoutMillis: Int) throws(Failure) -> [UInt8] {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var r: Int32
        repeat { r = poll(&p, 1, Int32(timeoutMillis)) } while r < 0 && errno == EINTR
        if r < 0 { throw Failure(reason: describe(errno)) }
        if r == 0 { return [] }
        var buf = [UInt8](repeating: 0, count: max)
        var n: Int
        repeat { n = recv(fd, &buf, max, 0) } while n < 0 && errno == EINTR
        if n < 0 { throw Failure(reason: describe(errno)) }
        if n == 0 { throw Failure(reason: "connection closed by the device server") }
        return Array(buf[..<n])
    }

    /// Discards bytes already waiting.
    static func drain(_ fd: Int32) {
        var buf = [UInt8](repeating: 0, count: 512)
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 0) > 0, p.revents & Int16(POLLIN) != 0 else { return }
            if recv(fd, &buf, buf.count, 0) <= 0 { return }
        }
    }
}
