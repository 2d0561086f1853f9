import Foundation

/// A whole well pad on loopback for end-to-end tests: a test CA and token, the reference receiver (the
/// tenant's sync endpoint), edgesim serving the demo pad's TCP devices, and an edged configuration that
/// points at them. edged itself is started by the test (`startEdged`), as often as it likes.
public final class PadFixture: @unchecked Sendable {
    public let dir = TempDir("edged-pad")
    public let receiverPort: Int
    public let adminPort: Int
    public let simPort: Int
    public let configPath: String
    public let controlSocket: String
    public let simControl: String
    public private(set) var receiver: ChildProcess?
    public private(set) var sim: ChildProcess?
    /// With `efmOverSerial`: the pty pair `efm-1`'s RS-485 line runs over (edged on `a`, edgesim on `b`).
    public let serialLine: PtyPair?

    /// - Parameter alarmsYAML: the `alarms:` section to use (the demo's by default).
    /// - Parameter bufferPath: where edged keeps its buffer (in the fixture's directory by default).
    /// - Parameter storageSettings: more `storage:` settings, e.g. `stuckAfter: 2s`.
    /// - Parameter efm: when set, `efm-1` is also an Enron flow computer whose records edged collects: this is
    ///   its device `efm:` block (`{meter: M-1, check: 1s}`), and `flowComputer` its edgesim spec.
    public init(
        pollInterval: String = "500ms", batchMaxAge: String = "1s", extraProfile: String = "",
        bufferPath: String? = nil, storageSettings: String = "", efm: String? = nil,
        flowComputer: String = "{profile: scanner2000, bus: pad-lan, unit: 20, historyHours: 0}",
        extraAlarms: String = "", gatewaySettings: String = "", efmOverSerial: Bool = false
    ) throws {
        serialLine = efmOverSerial ? try PtyPair() : nil
        let efmBus = serialLine == nil ? "pad-lan" : "fc-line"
        receiverPort = try freeTCPPort()
        adminPort = try freeTCPPort()
        simPort = try freeTCPPort()
        configPath = dir.file("edged.yaml")
        controlSocket = dir.file("control.sock")
        simControl = dir.file("sim.sock")
        let pki = dir.file("pki")
        let ca = try runTool(
            "/bin/bash", [TestPaths.root.appendingPathComponent("tools/receiver/make_test_ca.sh").path, pki, "pad-gw"])
        guard ca.status == 0 else { throw TestSetupError("make_test_ca.sh failed: \(ca.output)") }
        let token = "tok-" + UUID().uuidString.lowercased()
        let tokenPath = dir.file("token")
        guard
            FileManager.default.createFile(
                atPath: tokenPath, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600])
        else {
            throw TestSetupError("cannot write \(tokenPath)")
        }
        try "pad-gw:\(token)\n".write(toFile: dir.file("tokens.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(
            at: TestPaths.config.appendingPathComponent("templates"), to: dir.url.appendingPathComponent("templates"))
        try """
        gateway: {id: pad-gw, site: Test Pad, tenant: test\(gatewaySettings.isEmpty ? "" : ", " + gatewaySettings)}
        uplink:
          endpoint: https://127.0.0.1:\(receiverPort)/api/v1/edge/batches
          tls: {caFile: \(pki)/ca.pem}
          token: {file: \(tokenPath)}
          batch: {maxRecords: 500, maxAge: \(batchMaxAge)}
          connectTimeout: 2s
          requestTimeout: 10s
        storage: {path: \(bufferPath ?? dir.file("buffer.db")), maxBytes: 64MiB\(storageSettings.isEmpty ? "" : ", " + storageSettings)}
        buses:
          - {name: pad-lan, type: tcp, host: 127.0.0.1, port: \(simPort), responseTimeout: 300ms, retries: 0}
        \(serialLine.map { "  - {name: fc-line, type: rtu, device: \($0.a), baud: 19200, responseTimeout: 300ms}" } ?? "")
        templates:
          - include: templates/rod-pump-controller.yaml
          - include: templates/scanner-2000.yaml
        devices:
          - {name: rpc-1, bus: pad-lan, unit: 1, template: rod-pump-controller, poll: \(pollInterval), offlineAfter: 2, maxBackoff: 2s}
          - {name: efm-1, bus: \(efmBus), unit: 20, template: scanner-2000, poll: \(pollInterval), offlineAfter: 2, maxBackoff: 2s\(efm.map { ", efm: " + $0 } ?? "")}
        alarms:
          - {name: rpc-1-tubing, type: limit, device: rpc-1, tag: tubing_pressure, h: 450, hh: {setpoint: 600, priority: critical}, deadband: 10}
          - {name: rpc-1-comm, type: comm-loss, device: rpc-1, after: 1s}
        \(extraAlarms.isEmpty ? "" : "  " + extraAlarms)
        """.write(toFile: configPath, atomically: true, encoding: .utf8)
        try """
        devices:
          rpc-1:
            well_state: {constant: 1}
            fault_word: {constant: 0}
            tubing_pressure: {constant: 300}
            casing_pressure: {walk: {mid: 80, step: 1, min: 60, max: 100}}
          efm-1:
            flow_rate: {walk: {mid: 400, step: 2, min: 300, max: 500}}
        \(efm == nil ? "" : "flowComputers:\n  efm-1: \(flowComputer.replacingOccurrences(of: "bus: pad-lan", with: "bus: \(efmBus)"))")
        \(extraProfile)
        """.write(toFile: dir.file("profile.yaml"), atomically: true, encoding: .utf8)
    }

    /// Starts (or restarts) the reference receiver; its database survives restarts.
    public func startReceiver(extraArguments: [String] = []) async throws {
        receiver?.terminate()
        receiver = try ChildProcess(
            "/usr/bin/python3",
            [
                TestPaths.root.appendingPathComponent("tools/receiver/receiver.py").path,
                "--listen", "127.0.0.1:\(receiverPort)", "--cert", dir.file("pki/server.pem"), "--key",
                dir.file("pki/server.key"),
                "--tokens", dir.file("tokens.txt"), "--store", dir.file("receiver.db"), "--admin",
                "127.0.0.1:\(adminPort)"
            ] + extraArguments,
            output: dir.file("receiver.log"))
        guard await eventually(timeout: 20, { (try? await adminGet("/stats")) != nil }) else {
            throw TestSetupError("receiver did not start: \(log("receiver.log"))")
        }
    }

    public func startSimulator() async throws {
        sim?.terminate()
        sim = try ChildProcess(
            TestPaths.product("edgesim"),
            ["--config", configPath, "--profile", dir.file("profile.yaml"), "--control", simControl]
                + (serialLine.map { ["--serial", "fc-line=\($0.b)"] } ?? []),
            output: dir.file("edgesim.log"))
        guard await eventually(timeout: 20, { FileManager.default.fileExists(atPath: simControl) }) else {
            throw TestSetupError("edgesim did not start: \(log("edgesim.log"))")
        }
    }

    /// Starts edged as a process; `notifySocket` makes it talk sd_notify to the test.
    public func startEdged(notifySocket: String? = nil, watchdogMicros: Int? = nil) throws -> ChildProcess {
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = notifySocket
        if let w = watchdogMicros { env["WATCHDOG_USEC"] = String(w) }
        env["JOURNAL_STREAM"] = nil
        return try ChildProcess(
            TestPaths.product("edged"), ["--config", configPath, "--control-socket", controlSocket],
            output: dir.file("edged.log"), environment: env)
    }

    public func log(_ name: String) -> String { (try? String(contentsOfFile: dir.file(name), encoding: .utf8)) ?? "" }

    // MARK: receiver admin API (plain HTTP on loopback)

    public func adminGet(_ path: String) async throws -> [String: Any] {
        let (status, body) = try LoopbackHTTP.request(port: adminPort, method: "GET", path: path, body: nil)
        guard status == 200, let obj = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw TestSetupError("admin \(path): \(status) \(String(decoding: body, as: UTF8.self))")
        }
        return obj
    }

    public func setFault(_ json: String) async throws {
        let (status, body) = try LoopbackHTTP.request(port: adminPort, method: "POST", path: "/faults", body: json)
        guard status == 200 else {
            throw TestSetupError("setting fault \(json): \(status) \(String(decoding: body, as: UTF8.self))")
        }
    }

    /// Every seq the receiver stored for this gateway, by epoch.
    public func storedSeqs() async throws -> [String: [Int64]] {
        let stats = try await adminGet("/stats")
        let store = stats["store"] as? [String: Any] ?? [:]
        var out: [String: [Int64]] = [:]
        for e in store["byEpoch"] as? [[String: Any]] ?? [] {
            guard let epoch = e["epoch"] as? String else { continue }
            let seqs = try await adminGet("/seqs?gateway=pad-gw&epoch=\(epoch)")
            var list: [Int64] = []
            for r in seqs["ranges"] as? [[Any]] ?? [] {
                guard r.count == 2, let a = (r[0] as? NSNumber)?.int64Value, let b = (r[1] as? NSNumber)?.int64Value
                else { continue }
                list += Array(a...b)
            }
            out[epoch] = list
        }
        return out
    }

    /// Every record the receiver stored for this gateway, in seq order per epoch (readings, alarm events,
    /// gaps, as `GET /records` gives them).
    public func storedRecords() async throws -> [[String: Any]] {
        var out: [[String: Any]] = []
        for epoch in try await storedSeqs().keys.sorted() {
            var after = 0
            while true {
                let page = try await adminGet("/records?gateway=pad-gw&epoch=\(epoch)&after=\(after)&limit=5000")
                let records = page["records"] as? [[String: Any]] ?? []
                if records.isEmpty { break }
                out += records
                after = (records.last?["seq"] as? NSNumber)?.intValue ?? after
            }
        }
        return out
    }

    /// Sends one command to edgesim's control socket (`set rpc-1.tubing_pressure 640`, `fault …`); its answer.
    public func simCommand(_ command: String) async throws -> String {
        try await runTool(
            "/usr/bin/bash", ["-c", "echo '\(command)' | socat - UNIX-CONNECT:\(simControl)"], timeout: 10
        ).output
    }

    public func receiverCounts() async throws -> (stored: Int64, duplicates: Int64) {
        let s = try await adminGet("/stats")
        return ((s["recordsStored"] as? NSNumber)?.int64Value ?? -1, (s["duplicates"] as? NSNumber)?.int64Value ?? -1)
    }

    deinit {
        sim?.terminate()
        receiver?.terminate()
    }
}

/// Collects sd_notify datagrams sent to a test NOTIFY_SOCKET.
public final class NotifyListener: @unchecked Sendable {
    public let path: String
    /// What the receiving thread shares with the listener; the thread holds this, not the listener, so the
    /// listener can go away, and the thread closes its socket itself once told to stop.
    private final class Inbox: @unchecked Sendable {
        let lock = NSLock()
        var received: [(at: ContinuousClock.Instant, message: String)] = []
        var stopped = false
    }
    private let inbox = Inbox()

    public init(path: String) throws {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSetupError("socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in path.utf8.enumerated() { p[i] = b } }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        guard ok else { close(fd); throw TestSetupError("cannot bind \(path)") }
        let t = Thread { [inbox] in
            defer { close(fd) }
            var buf = [UInt8](repeating: 0, count: 4096)
            while !inbox.lock.withLock({ inbox.stopped }) {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 100) > 0 else { continue }
                let n = recv(fd, &buf, buf.count, 0)
                if n > 0 {
                    let m = String(decoding: buf[..<n], as: UTF8.self), at = ContinuousClock.now
                    inbox.lock.withLock { inbox.received.append((at, m)) }
                }
            }
        }
        t.start()
    }

    /// Every `KEY=value` line received so far, in order.
    public var lines: [String] {
        inbox.lock.withLock { inbox.received.flatMap { $0.message.split(separator: "\n").map(String.init) } }
    }
    public func count(_ prefix: String) -> Int { lines.filter { $0.hasPrefix(prefix) }.count }
    /// When each message holding a line that starts with `prefix` arrived, in order.
    public func times(_ prefix: String) -> [ContinuousClock.Instant] {
        inbox.lock.withLock {
            inbox.received.filter { $0.message.split(separator: "\n").contains { $0.hasPrefix(prefix) } }.map(\.at)
        }
    }
    /// How long ago the last message with a line starting with `prefix` arrived (nil: none yet).
    public func sinceLast(_ prefix: String) -> Duration? {
        let last = inbox.lock.withLock {
            inbox.received.last { $0.message.split(separator: "\n").contains { $0.hasPrefix(prefix) } }?.at
        }
        return last.map { ContinuousClock.now - $0 }
    }
    deinit {
        inbox.lock.withLock { inbox.stopped = true }
        unlink(path)
    }
}
