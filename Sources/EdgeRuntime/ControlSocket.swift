import CEdgeShim
import Foundation

/// Who is on the other end of the control socket (SO_PEERCRED), logged for every change.
public struct ControlPeer: Sendable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    public var description: String { "uid \(uid) (pid \(pid))" }
}

/// A request on the control socket: one JSON object per line, `{"command": "...", "args": {...}}`.
public struct ControlRequest: Sendable, Codable {
    public var command: String
    public var args: [String: String]?
    public init(command: String, args: [String: String]? = nil) { self.command = command; self.args = args }
}

/// What kind of error a control reply carries (`{"ok": false, "code": …, "error": …}`): edgectl decides on
/// the code, a person reads the error.
public enum ControlErrorCode: String, Sendable, Codable, CaseIterable {
    /// Not one JSON object per line.
    case malformed
    /// A request over 64 KiB (the connection is closed).
    case tooLarge = "too-large"
    /// All connections are taken.
    case busy
    case unknownCommand = "unknown-command"
    /// A missing or malformed argument.
    case badArguments = "bad-arguments"
    /// No such alarm (or other named thing).
    case notFound = "not-found"
    /// A configuration refused on reload: the running one stays.
    case refused
    /// The daemon could not answer (the buffer file could not be read).
    case unavailable
    case internalError = "internal"
}

/// Why the control socket could not be served or reached.
public struct ControlSocketError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// The daemon's control socket: a Unix stream socket, one JSON request per line, one JSON reply per line.
/// Requests are bounded in size; anything malformed gets an error reply, never a crash. A dedicated thread
/// accepts; each connection is served on a thread of its own, at most `maxConnections` at once, so an idle
/// client or a request waiting on a hung disk does not hold up the others. `handler` runs on the
/// connection's thread and may block (it bridges to the daemon's async state).
public final class ControlServer: @unchecked Sendable {
    public static let maxRequestBytes = 64 * 1024
    public static let maxConnections = 8
    public let path: String
    private let handler: @Sendable (ControlRequest, ControlPeer) -> Data
    private var fd: Int32 = -1
    private let lock = NSLock()
    private var stopping = false
    private var connections = 0

    public init(path: String, handler: @escaping @Sendable (ControlRequest, ControlPeer) -> Data) {
        self.path = path
        self.handler = handler
    }

    /// Creates the socket (mode 0660, group `edged` when that group exists) and starts serving.
    public func start() throws(ControlSocketError) {
        let dir = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        unlink(path)
        guard var addr = Self.address(path) else { throw ControlSocketError("control socket path too long: \(path)") }
        // Non-blocking, so a connection that went away between poll and accept cannot park the thread.
        let fd = socket(
            AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError("socket: \(String(cString: strerror(errno)))") }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw ControlSocketError("cannot bind \(path): \(why)")
        }
        chmod(path, 0o660)
        if let group = getgrnam("edged") { chown(path, uid_t.max, group.pointee.gr_gid) }
        guard listen(fd, 16) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw ControlSocketError("cannot listen on \(path): \(why)")
        }
        lock.withLock { self.fd = fd }
        let t = Thread { [self] in serve(fd) }
        t.name = "control-socket"
        t.start()
    }

    /// Stops serving. The serving thread closes the listening socket when it sees the flag: closing it here
    /// could hand its number to another open() while that thread still polls or accepts on it.
    public func stop() {
        lock.withLock {
            stopping = true
            if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }  // wakes the poll; under the lock, so fd is still ours
        }
        unlink(path)
    }

    static func address(_ path: String) -> sockaddr_un? {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        return addr
    }

    private func serve(_ fd: Int32) {
        defer {
            lock.withLock {
                close(fd); self.fd = -1
            }
        }
        while !lock.withLock({ stopping }) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 250) > 0 else { continue }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            let admitted = lock.withLock { () -> Bool in
                guard connections < Self.maxConnections else { return false }
                connections += 1
                return true
            }
            guard admitted else {
                _ = Self.writeAll(
                    client,
                    Self.errorReply(.busy, "busy: \(Self.maxConnections) connections are open; try again") + Data([10]))
                close(client)
                continue
            }
            let t = Thread { [self] in
                handle(client)
                close(client)
                lock.withLock { connections -= 1 }
            }
            t.name = "control-conn"
            t.start()
        }
    }

    /// One connection: requests until the peer closes, each line answered in order.
    private func handle(_ client: Int32) {
        var pid: Int32 = 0, uid: UInt32 = UInt32.max, gid: UInt32 = UInt32.max
        _ = edge_peer_credentials(client, &pid, &uid, &gid)
        let peer = ControlPeer(pid: pid, uid: uid, gid: gid)
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            var p = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 30_000) > 0 else { return }
            let n = read(client, &chunk, chunk.count)
            guard n > 0 else { return }
            buffer += chunk[..<n]
            while let nl = buffer.firstIndex(of: 10) {
                let line = Data(buffer[..<nl])
                buffer.removeSubrange(...nl)
                let reply: Data
                if let req = try? JSONDecoder().decode(ControlRequest.self, from: line) {
                    reply = handler(req, peer)
                } else {
                    reply = Self.errorReply(
                        .malformed, "malformed request: expected one JSON object per line, {\"command\": \"status\"}")
                }
                if !Self.writeAll(client, reply + Data([10])) { return }
            }
            if buffer.count > Self.maxRequestBytes {
                _ = Self.writeAll(
                    client, Self.errorReply(.tooLarge, "request larger than \(Self.maxRequestBytes) bytes") + Data([10])
                )
                return
            }
        }
    }

    /// `{"code": …, "error": …, "ok": false}`.
    public static func errorReply(_ code: ControlErrorCode, _ message: String) -> Data {
        (try? JSONSerialization.data(
            withJSONObject: ["ok": false, "code": code.rawValue, "error": message], options: [.sortedKeys])) ?? Data()
    }

    static func writeAll(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
    }
}

/// edgectl's side: sends one request and reads one reply line.
public enum ControlClient {
    public static func call(_ path: String, _ request: ControlRequest, timeoutSeconds: Int = 10)
        throws(ControlSocketError) -> Data
    {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard var addr = ControlServer.address(path) else {
            throw ControlSocketError("control socket path too long: \(path)")
        }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        guard ok else {
            let why = String(cString: strerror(errno))
            throw ControlSocketError(
                "cannot reach edged at \(path): \(why)"
                    + (errno == ENOENT || errno == ECONNREFUSED
                        ? " (is edged running? systemctl status edged)"
                        : errno == EACCES ? " (are you in the edged group?)" : ""))
        }
        guard let body = try? JSONEncoder().encode(request) else { throw ControlSocketError("cannot encode request") }
        guard ControlServer.writeAll(fd, body + Data([10])) else { throw ControlSocketError("cannot send to \(path)") }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(timeoutSeconds * 1000)) > 0 else {
                throw ControlSocketError("edged did not answer within \(timeoutSeconds) s")
            }
            let n = read(fd, &chunk, chunk.count)
            guard n > 0 else { break }
            reply += chunk[..<n]
            if reply.last == 10 { break }
        }
        return Data(reply.prefix { $0 != 10 })
    }
}
