import EdgeSystem
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
// Guard: `lock` protects `fd`, `stopping`, `connections` and `startNotes`; `path` and `handler` are immutable.
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
        let fd: Int32
        var notes: [String] = []
        do {
            fd = try UnixSocket.listen(path: path, backlog: 16) { path in
                // Between bind and listen: no client can connect before the mode and group are right.
                if chmod(path, 0o660) != 0 { notes.append("chmod 0660 \(path): \(SystemError.reason(errno: errno))") }
                if let group = getgrnam("edged"), chown(path, uid_t.max, group.pointee.gr_gid) != 0 {
                    notes.append("chown :edged \(path): \(SystemError.reason(errno: errno))")
                }
            }
        } catch {
            throw ControlSocketError("cannot serve the control socket: \(error)")
        }
        lock.withLock {
            self.fd = fd; startNotes = notes
        }
        let t = Thread { [self] in serve(fd) }
        t.name = "control-socket"
        t.start()
    }

    /// What could not be set on the socket file (mode, group), for the daemon's log.
    public var notes: [String] { lock.withLock { startNotes } }
    private var startNotes: [String] = []

    /// Stops serving. The serving thread closes the listening socket when it sees the flag: closing it here
    /// could hand its number to another open() while that thread still polls or accepts on it.
    public func stop() {
        lock.withLock {
            stopping = true
            if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }  // wakes the poll; under the lock, so fd is still ours
        }
        unlink(path)
    }

    private func serve(_ fd: Int32) {
        defer {
            lock.withLock {
                close(fd); self.fd = -1
            }
        }
        while !lock.withLock({ stopping }) {
            guard (try? UnixSocket.waitReadable(fd, timeoutMillis: 250)) == true,
                let client = try? UnixSocket.accept(fd)
            else { continue }
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
        // Without the peer's credentials a change could not be attributed: such a peer gets no answer.
        guard let c = try? UnixSocket.peerCredentials(client) else { return }
        let peer = ControlPeer(pid: c.pid, uid: c.uid, gid: c.gid)
        var buffer: [UInt8] = []
        while true {
            guard (try? UnixSocket.waitReadable(client, timeoutMillis: 30_000)) == true,
                let chunk = try? UnixSocket.read(client, max: 4096), !chunk.isEmpty
            else { return }
            buffer += chunk
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
        (try? UnixSocket.writeAll(fd, Array(data))) != nil
    }
}

/// edgectl's side: sends one request and reads one reply line.
public enum ControlClient {
    public static func call(_ path: String, _ request: ControlRequest, timeoutSeconds: Int = 10)
        throws(ControlSocketError) -> Data
    {
        let fd: Int32
        do { fd = try UnixSocket.connect(path: path) } catch {
            throw ControlSocketError(
                "cannot reach edged at \(path): \(error.reason)"
                    + (error.errno == ENOENT || error.errno == ECONNREFUSED
                        ? " (is edged running? systemctl status edged)"
                        : error.errno == EACCES ? " (are you in the edged group?)" : ""))
        }
        defer { close(fd) }
        guard let body = try? JSONEncoder().encode(request) else { throw ControlSocketError("cannot encode request") }
        guard ControlServer.writeAll(fd, body + Data([10])) else { throw ControlSocketError("cannot send to \(path)") }
        var reply: [UInt8] = []
        while true {
            let ready: Bool, chunk: [UInt8]
            do {
                ready = try UnixSocket.waitReadable(fd, timeoutMillis: Int32(timeoutSeconds * 1000))
                chunk = ready ? try UnixSocket.read(fd, max: 65536) : []
            } catch {
                throw ControlSocketError("reading edged's answer: \(error)")
            }
            guard ready else { throw ControlSocketError("edged did not answer within \(timeoutSeconds) s") }
            guard !chunk.isEmpty else { break }
            reply += chunk
            if reply.last == 10 { break }
        }
        return Data(reply.prefix { $0 != 10 })
    }
}
