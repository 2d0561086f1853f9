import Foundation

/// A test PKI made by `tools/receiver/make_test_ca.sh`: a CA, the receiver's certificate for 127.0.0.1, a
/// client certificate for mTLS, and the server key's pin.
public struct TestPKI: Sendable {
    public let dir: String
    public var caFile: String { dir + "/ca.pem" }
    public var serverCertificate: String { dir + "/server.pem" }
    public var serverKey: String { dir + "/server.key" }
    public var clientCertificate: String { dir + "/client.pem" }
    public var clientKey: String { dir + "/client.key" }
    /// `sha256//<base64>` of the server's public key, as curl's CURLOPT_PINNEDPUBLICKEY wants it.
    public let pin: String

    /// Makes a fresh CA and certificates in `dir`; the client certificate names `gateway`.
    public static func make(in dir: String, gateway: String) throws -> TestPKI {
        let r = try runTool(
            "/bin/sh", [TestPaths.root.appendingPathComponent("tools/receiver/make_test_ca.sh").path, dir, gateway])
        let pin = r.output.split(separator: "\n").last.map(String.init) ?? ""
        guard r.status == 0, pin.hasPrefix("sha256//") else {
            throw TestSetupError("make_test_ca.sh failed: \(r.output)")
        }
        return TestPKI(dir: dir, pin: pin)
    }
}

/// The reference receiver (`tools/receiver/receiver.py`) as a child process on 127.0.0.1, with a fresh
/// test CA, a token for one gateway, free ports, and its admin API (stats, stored seqs, faults).
public final class ReferenceReceiver: @unchecked Sendable {
    public let dir = TempDir("edged-receiver")
    public let pki: TestPKI
    public let gateway: String
    /// The token the receiver accepts for `gateway`, and a 0600 file holding it.
    public let token: String
    public let tokenFile: String
    public let arguments: [String]
    public private(set) var port = 0
    public private(set) var adminPort = 0
    private var process: ChildProcess?

    /// Starts a receiver. `arguments` are extra receiver options (`--max-body 4KiB`); `clientCertificates`
    /// makes it require a client certificate signed by its test CA (mTLS).
    public init(
        gateway: String = "pecos-17-gw1", arguments: [String] = [], clientCertificates: Bool = false,
        pki: TestPKI? = nil
    ) throws {
        self.gateway = gateway
        let pki = try pki ?? TestPKI.make(in: dir.file("pki"), gateway: gateway)
        self.pki = pki
        self.arguments = arguments + (clientCertificates ? ["--client-ca", pki.caFile] : [])
        token = "tok-" + UUID().uuidString.lowercased()
        tokenFile = dir.file("token")
        _ = FileManager.default.createFile(
            atPath: tokenFile, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600])
        try "\(gateway):\(token)\n".write(toFile: dir.file("tokens.txt"), atomically: true, encoding: .utf8)
        try start()
    }

    /// The batch URL.
    public var endpoint: String { "https://127.0.0.1:\(port)/api/v1/edge/batches" }
    public var logPath: String { dir.file("receiver.log") }
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Starts the process on free ports (port 0: the receiver picks them and prints them on its first line).
    public func start() throws {
        try? FileManager.default.removeItem(atPath: logPath)
        // Under timeout(1): should the test process die without stopping it, it still ends (the tests take seconds).
        let child = try ChildProcess(
            "/usr/bin/timeout",
            [
                "600", "/usr/bin/python3",
                TestPaths.root.appendingPathComponent("tools/receiver/receiver.py").path,
                "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                "--cert", pki.serverCertificate, "--key", pki.serverKey,
                "--tokens", dir.file("tokens.txt"), "--store", dir.file("receiver.db")
            ] + arguments, output: logPath)
        process = child
        var ports: (Int, Int)?
        _ = waitUntil(timeout: 20) {
            ports = Self.ports(fromLog: log)
            return ports != nil || !child.isRunning
        }
        guard let (p, a) = ports else { throw TestSetupError("receiver did not start: \(log)") }
        port = p; adminPort = a
    }

    /// SIGTERM, and waits for a clean exit.
    public func stop() { process?.terminate() }
    deinit { stop() }

    static func ports(fromLog log: String) -> (Int, Int)? {
        guard let line = log.split(separator: "\n").first(where: { $0.contains("listening on https://") }) else {
            return nil
        }
        func port(after marker: String) -> Int? {
            guard let r = line.range(of: marker) else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
        guard let p = port(after: "https://127.0.0.1:"), let a = port(after: "admin http://127.0.0.1:") else {
            return nil
        }
        return (p, a)
    }

    // MARK: - Admin API

    /// A JSON object from the admin endpoint.
    public func admin(_ path: String, method: String = "GET", body: String? = nil) throws -> [String: Any] {
        let (status, data) = try LoopbackHTTP.request(port: adminPort, method: method, path: path, body: body)
        guard status == 200, let obj = try JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else {
            throw TestSetupError("admin \(method) \(path): \(status) \(String(decoding: data, as: UTF8.self))")
        }
        return obj
    }

    /// Sets a fault (`{"mode": "status", "code": 503, "count": 2}`; docs/sync-protocol.md §11).
    public func setFault(_ json: String) throws { _ = try admin("/faults", method: "POST", body: json) }

    public func stats() throws -> ReceiverStats { ReceiverStats(try admin("/stats")) }

    /// The seqs the receiver stored for an epoch of this gateway.
    public func storedSeqs(epoch: String) throws -> StoredSeqs {
        let o = try admin("/seqs?gateway=\(gateway)&epoch=\(epoch)")
        let ranges = (o["ranges"] as? [[Any]] ?? []).compactMap { r -> ClosedRange<Int64>? in
            guard r.count == 2, let a = (r[0] as? NSNumber)?.int64Value, let b = (r[1] as? NSNumber)?.int64Value else {
                return nil
            }
            return a...b
        }
        return StoredSeqs(count: (o["count"] as? NSNumber)?.intValue ?? -1, ranges: ranges)
    }

    /// Stored records of an epoch, decoded by the receiver, in seq order.
    public func records(epoch: String, after: Int64 = 0, limit: Int = 10_000) throws -> [[String: Any]] {
        let o = try admin("/records?gateway=\(gateway)&epoch=\(epoch)&after=\(after)&limit=\(limit)")
        return o["records"] as? [[String: Any]] ?? []
    }

    /// The receiver's access-log lines (one per answered request) with their times, in order.
    public func requestLog() -> [(time: Date, line: String)] {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return log.split(separator: "\n").compactMap { (l: Substring) -> (time: Date, line: String)? in
            guard let space = l.firstIndex(of: " "), let t = f.date(from: String(l[..<space])) else { return nil }
            return (t, String(l[space...].dropFirst()))
        }
    }
}

/// The receiver's counters (`GET /stats`).
public struct ReceiverStats: @unchecked Sendable {
    public let raw: [String: Any]
    public init(_ raw: [String: Any]) { self.raw = raw }
    public func int(_ key: String) -> Int { (raw[key] as? NSNumber)?.intValue ?? 0 }
    public var requests: Int { int("requests") }
    public var batches: Int { int("batches") }
    public var recordsStored: Int { int("recordsStored") }
    public var duplicates: Int { int("duplicates") }
    public var bodyBytes: Int { int("bodyBytes") }
    public var tlsHandshakeFailures: Int { int("tlsHandshakeFailures") }
    /// Answers by status code.
    public func answered(_ status: Int) -> Int {
        ((raw["byStatus"] as? [String: Any])?["\(status)"] as? NSNumber)?.intValue ?? 0
    }
}

/// Seqs stored for one epoch, as ranges.
public struct StoredSeqs: Sendable, Equatable {
    public var count: Int
    public var ranges: [ClosedRange<Int64>]
    public init(count: Int, ranges: [ClosedRange<Int64>]) { self.count = count; self.ranges = ranges }
    public var seqs: [Int64] { ranges.flatMap { Array($0) } }
}

/// A TCP connection to 127.0.0.1:`port`, with send and receive timeouts; the caller closes it.
public func loopbackConnect(port: Int, timeoutSeconds: Int = 10) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestSetupError("socket: \(String(cString: strerror(errno)))") }
    var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
    guard connected else {
        let e = errno
        close(fd)
        throw TestSetupError("connect 127.0.0.1:\(port): \(String(cString: strerror(e)))")
    }
    return fd
}

/// A stream connection to the Unix socket at `path`, with a receive timeout; the caller closes it.
public func unixConnect(_ path: String, timeoutSeconds: Int = 10) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestSetupError("socket: \(String(cString: strerror(errno)))") }
    var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in path.utf8.enumerated() { p[i] = b } }
    let ok = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
        }
    }
    guard ok else { let e = errno; close(fd); throw TestSetupError("connect \(path): \(String(cString: strerror(e)))") }
    return fd
}

/// Plain HTTP/1.0 to a loopback port: enough for the receiver's admin API, without a child process per call.
public enum LoopbackHTTP {
    public static func request(port: Int, method: String, path: String, body: String? = nil, timeoutSeconds: Int = 10)
        throws -> (status: Int, body: [UInt8])
    {
        let fd = try loopbackConnect(port: port, timeoutSeconds: timeoutSeconds)
        defer { close(fd) }
        let payload = Array((body ?? "").utf8)
        let head =
            "\(method) \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(payload.count)\r\n\r\n"
        let out = Array(head.utf8) + payload
        var sent = 0
        while sent < out.count {
            let n = out[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestSetupError("send to 127.0.0.1:\(port) failed") }
            sent += n
        }
        var response: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n > 0 { response += buf[..<n]; continue }
            if n == 0 { break }
            throw TestSetupError("reading from 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let split = (0..<max(0, response.count - 3)).first(where: { Array(response[$0..<$0 + 4]) == separator })
        else {
            throw TestSetupError("no HTTP answer from 127.0.0.1:\(port)")
        }
        let statusLine = String(decoding: response[..<split], as: UTF8.self).split(separator: "\r\n").first ?? ""
        let status = statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, Array(response[(split + 4)...]))
    }
}

/// Waits for a condition without blocking a thread of Swift's cooperative pool; false after `timeout` seconds.
public func eventually(timeout: Double = 10, poll: Duration = .milliseconds(20), _ condition: () async throws -> Bool)
    async rethrows -> Bool
{
    let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * TestEnvironment.timeScale * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: poll)
    }
    return try await condition()
}
