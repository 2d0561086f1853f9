import CModbus
import EdgeCore
import Foundation

/// Serves simulated devices on one bus: Modbus TCP on a loopback port (several unit ids behind one
/// endpoint), or Modbus RTU on a serial port or pty (several unit ids on one line). Replies are built by
/// libmodbus (`modbus_reply`), so the poller is tested against libmodbus on the other end too — except for
/// units that are `SimFlowComputer`s, whose Enron replies the server frames itself (`SimServer+Enron.swift`).
// Guard: `lock` protects `started` and `stopping`, `done` protects `finished`; `ctx`, `listenFD` and `port` are
// set by `start()` before the serving thread starts and reset by `stop()` only after it finished (or never
// started): this holds only while `start()` and `stop()` are not called concurrently. `devices` and
// `flowComputers` are immutable (each flow computer guards itself).
public final class SimServer: @unchecked Sendable {
    public enum Transport: Sendable {
        /// Listen on host:port (port 0 picks a free one; see `port`).
        case tcp(host: String, port: Int)
        /// Open this serial device (e.g. one end of a socat pty pair).
        case rtu(path: String, baud: Int)
    }

    public let transport: Transport
    private let devices: [Int: SimDevice]
    private let flowComputers: [Int: SimFlowComputer]
    private let lock = NSLock()
    private var started = false
    private var stopping = false
    private var finished = false
    private let done = NSCondition()
    /// The TCP port actually bound.
    public private(set) var port: Int = 0
    private var ctx: OpaquePointer?
    private var listenFD: Int32 = -1

    /// A server for `devices` and `flowComputers` on one bus. A unit id given to both answers the flow
    /// computer's Enron requests as the flow computer and everything else as the device (one box, two maps).
    public init(transport: Transport, devices: [SimDevice], flowComputers: [SimFlowComputer] = []) {
        self.transport = transport
        self.devices = Dictionary(devices.map { ($0.unit, $0) }, uniquingKeysWith: { a, _ in a })
        self.flowComputers = Dictionary(flowComputers.map { ($0.unit, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public func flowComputer(unit: Int) -> SimFlowComputer? { flowComputers[unit] }

    public func device(unit: Int) -> SimDevice? { devices[unit] }

    /// Binds (TCP) or opens the port (RTU) and starts the serving thread.
    public func start() throws {
        switch transport {
        case .tcp(let host, let port):
            guard let c = modbus_new_tcp(host, Int32(port)) else { throw SimError("cannot create TCP context") }
            ctx = c
            listenFD = modbus_tcp_listen(c, 16)
            guard listenFD >= 0 else {
                throw SimError("cannot listen on \(host):\(port): \(String(cString: modbus_strerror(errno)))")
            }
            var addr = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(listenFD, $0, &len) }
            }
            self.port = Int(UInt16(bigEndian: addr.sin_port))
            modbus_set_indication_timeout(c, 1, 0)
        case .rtu(let path, let baud):
            guard let c = modbus_new_rtu(path, Int32(baud), 78, 8, 1) else {
                throw SimError("cannot create RTU context for \(path)")
            }
            ctx = c
            guard modbus_connect(c) == 0 else {
                throw SimError("cannot open \(path): \(String(cString: modbus_strerror(errno)))")
            }
        }
        let t = Thread { [self] in
            switch transport {
            case .tcp: serveTCP()
            case .rtu: serveRTU()
            }
            done.withLock {
                finished = true; done.broadcast()
            }
        }
        t.name = "edgesim"
        lock.withLock { started = true }
        t.start()
    }

    /// Stops the serving thread, then closes what it used. Safe to call twice, or after a failed `start`.
    public func stop() {
        let serving = lock.withLock { () -> Bool in
            defer { stopping = true }; return started && !stopping
        }
        if serving { done.withLock { while !finished { done.wait() } } }
        if listenFD >= 0 { close(listenFD); listenFD = -1 }
        if let ctx { modbus_close(ctx); modbus_free(ctx) }
        ctx = nil
    }

    private var shouldStop: Bool { lock.withLock { stopping } }

    // MARK: TCP

    private func serveTCP() {
        guard let ctx else { return }
        var clients: [Int32] = []
        var query = [UInt8](repeating: 0, count: Int(MODBUS_TCP_MAX_ADU_LENGTH))
        // The context's socket is whichever client was answered last; detach it before the clients are
        // closed, or modbus_close in stop() closes that number a second time (by then perhaps another file's).
        defer { modbus_set_socket(ctx, -1); clients.forEach { close($0) } }
        while !shouldStop {
            var fds =
                [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
                + clients.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&fds, nfds_t(fds.count), 100) > 0 else { continue }
            if fds[0].revents & Int16(POLLIN) != 0 {
                let fd = accept(listenFD, nil, nil)
                if fd >= 0 { clients.append(fd) }
            }
            for p in fds.dropFirst() where p.revents != 0 {
                modbus_set_socket(ctx, p.fd)
                let rc = query.withUnsafeMutableBufferPointer { modbus_receive(ctx, $0.baseAddress) }
                if rc <= 0 {
                    if rc < 0 { modbus_set_socket(ctx, -1); close(p.fd); clients.removeAll { $0 == p.fd } }
                    continue
                }
                let unit = Int(query[6])
                if let computer = flowComputers[unit],
                    devices[unit] == nil || Int(rc) < 12 || computer.serves(Array(query[7..<Int(rc)]))
                {
                    answerEnronTCP(computer, request: Array(query[..<Int(rc)]), fd: p.fd)
                    continue
                }
                answer(ctx, Array(query[..<Int(rc)]), unit: unit, offset: 7, fd: p.fd)
            }
        }
    }

    // MARK: RTU

    private func serveRTU() {
        guard let ctx else { return }
        let fd = modbus_get_socket(ctx)
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256)
        while !shouldStop {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else {
                buffer.removeAll()  // a silence ends any partial frame
                continue
            }
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { continue }
            buffer += chunk[..<n]
            // Read requests (FC01–04) are 8 bytes; slide over anything that is not a valid frame.
            while buffer.count >= 8 {
                let frame = Array(buffer[..<8])
                if RTUFraming.checks(frame) {
                    buffer.removeFirst(8)
                    let unit = Int(frame[0])
                    if let computer = flowComputers[unit], devices[unit] == nil || computer.serves(Array(frame[1..<6]))
                    {
                        answerEnronRTU(computer, frame: frame, fd: fd)
                        continue
                    }
                    // A unit libmodbus cannot address is not answered (a real line would stay silent too).
                    if devices[unit] != nil, modbus_set_slave(ctx, Int32(unit)) == 0 {
                        answer(ctx, frame, unit: unit, offset: 1, fd: fd)
                    }
                } else {
                    buffer.removeFirst()
                }
            }
        }
    }

    // MARK: answering

    /// Answers one request for `unit`; `offset` is where the function code sits (TCP 7, RTU 1).
    private func answer(_ ctx: OpaquePointer, _ req: [UInt8], unit: Int, offset: Int, fd: Int32) {
        guard let device = devices[unit] else {
            // A TCP gateway with nothing at that unit id answers "gateway target failed to respond".
            if offset == 7 { _ = req.withUnsafeBufferPointer { modbus_reply_exception(ctx, $0.baseAddress, 11) } }
            return
        }
        switch device.begin() {
        case .none: break
        case .silent: return
        case .slow(let t): usleep(UInt32(t.milliseconds * 1000))
        case .exception(let code):
            _ = req.withUnsafeBufferPointer { modbus_reply_exception(ctx, $0.baseAddress, UInt32(code)) }
            return
        case .garbage:
            var junk = (0..<12).map { _ in UInt8.random(in: 0...255) }
            _ = write(fd, &junk, junk.count)
            return
        case .wrongUnit:
            var forged = req
            forged[offset - 1] = UInt8((unit % 247) + 1)
            if offset == 1, modbus_set_slave(ctx, Int32(forged[0])) != 0 { return }
            reply(ctx, forged, device)
            return
        }
        let function = req[offset]
        let start = Int(req[offset + 1]) << 8 | Int(req[offset + 2])
        let count = Int(req[offset + 3]) << 8 | Int(req[offset + 4])
        if let code = device.exceptionFor(function: function, start: start, count: count) {
            _ = req.withUnsafeBufferPointer { modbus_reply_exception(ctx, $0.baseAddress, UInt32(code)) }
            return
        }
        reply(ctx, req, device)
    }

    private func reply(_ ctx: OpaquePointer, _ req: [UInt8], _ device: SimDevice) {
        device.withImage { image in
            _ = req.withUnsafeBufferPointer { modbus_reply(ctx, $0.baseAddress, Int32(req.count), image) }
        }
    }
}

/// A simulator setup problem, with what went wrong.
public struct SimError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
