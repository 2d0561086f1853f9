import Foundation

/// Waits for a condition instead of sleeping a fixed time; fails after `timeout` seconds. This one blocks its
/// thread: for set-up code outside Swift concurrency. Tests use `eventually`, which does not.
public func waitUntil(timeout: Double = 10, poll: Double = 0.02, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: poll)
    }
    return try condition()
}

/// A scratch directory removed when the value goes away.
public final class TempDir: @unchecked Sendable {
    public let url: URL
    public var path: String { url.path }
    public init(_ prefix: String = "edged-test") {
        url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "\(prefix)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// A child process (posix_spawn) that is killed and reaped when the value goes away.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private var reaped = false
    private let lock = NSLock()

    /// Starts `executable` with `arguments`; stdout and stderr go to `output` (default /dev/null).
    public init(
        _ executable: String, _ arguments: [String], output: String = "/dev/null", environment: [String: String]? = nil
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { env.forEach { free($0) } }
        // The spawning thread may block signals (dispatch's threads do); the child must start with none blocked.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGUSR1, SIGUSR2] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attr, argv, env)
        guard rc == 0 else { throw TestSetupError("cannot start \(executable): \(String(cString: strerror(rc)))") }
        pid = child
    }

    /// Sends a signal (SIGTERM, SIGKILL, SIGHUP, ...).
    public func signal(_ sig: Int32) { lock.withLock { if !reaped { _ = kill(pid, sig) } } }

    /// Waits for the process to exit and returns its wait status, or nil on timeout.
    @discardableResult
    public func wait(timeout: Double = 30) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout * TestEnvironment.timeScale)
        while Date() < deadline {
            var status: Int32 = 0
            let r = lock.withLock { reaped ? -1 : waitpid(pid, &status, WNOHANG) }
            if r == pid { lock.withLock { reaped = true }; return status }
            if r < 0 { return nil }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return nil
    }

    /// Waits for the process to exit without holding a thread of Swift's cooperative pool (the code under
    /// test runs on that pool too: a test that blocks it can starve the very thing it waits for).
    @discardableResult
    public func wait(timeout: Double = 30) async -> Int32? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * TestEnvironment.timeScale * 1000))
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            let r = lock.withLock { reaped ? -1 : waitpid(pid, &status, WNOHANG) }
            if r == pid { lock.withLock { reaped = true }; return status }
            if r < 0 { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    public var isRunning: Bool {
        lock.withLock {
            if reaped { return false }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { reaped = true; return false }
            return true
        }
    }

    public func terminate() {
        guard isRunning else { return }
        signal(SIGTERM)
        if wait(timeout: 5) == nil { signal(SIGKILL); wait(timeout: 5) }
    }
    deinit { terminate() }
}

/// A serial line made of two ptys joined by socat: what one end writes, the other reads.
public final class PtyPair: @unchecked Sendable {
    public let dir = TempDir("edged-pty")
    public let a: String
    public let b: String
    private let socat: ChildProcess

    public init() throws {
        a = dir.file("a"); b = dir.file("b")
        socat = try ChildProcess("/usr/bin/socat", ["PTY,link=\(a),raw,echo=0", "PTY,link=\(b),raw,echo=0"])
        guard
            waitUntil(
                timeout: 10, { FileManager.default.fileExists(atPath: a) && FileManager.default.fileExists(atPath: b) })
        else {
            throw TestSetupError("socat did not create the pty pair")
        }
    }
}

/// A serial device server stand-in: socat bridges a TCP listener to a pty, as a Moxa NPort in raw mode
/// bridges TCP to its RS-485 port.
public final class SerialDeviceServer: @unchecked Sendable {
    public let dir = TempDir("edged-nport")
    public let pty: String
    public let port: Int
    private let socat: ChildProcess

    public init() throws {
        pty = dir.file("serial")
        port = try freeTCPPort()
        socat = try ChildProcess(
            "/usr/bin/socat", ["PTY,link=\(pty),raw,echo=0", "TCP-LISTEN:\(port),bind=127.0.0.1,reuseaddr"])
        guard waitUntil(timeout: 10, { FileManager.default.fileExists(atPath: pty) }) else {
            throw TestSetupError("socat did not create the device server's pty")
        }
    }
}

public struct TestSetupError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// A TCP port on 127.0.0.1 for a child process to listen on, free when handed out.
///
/// It is taken from below the kernel's ephemeral range (net.ipv4.ip_local_port_range), where the source
/// ports of outgoing connections come from: a port picked by binding port 0 is in that range, and any
/// connection a parallel test opens before the child binds can take it. Below the range only another
/// listener can, so each port is checked bindable and handed out once per test process.
public func freeTCPPort() throws -> Int {
    try PortPool.shared.take()
}

final class PortPool: @unchecked Sendable {
    static let shared = PortPool()
    private let lock = NSLock()
    private var handedOut: Set<Int> = []
    private let candidates: ClosedRange<Int>

    init() {
        let range =
            (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) } ?? []
        let low = range.count == 2 ? range[0] : 32768, high = range.count == 2 ? range[1] : 60999
        // From 20000 up to the range (32768 by default), or above it on a box that moved the range down.
        candidates = low > 21_000 ? 20_000...(low - 1) : high < 64_535 ? (high + 1)...65_535 : 20_000...32_767
    }

    func take() throws -> Int {
        try lock.withLock {
            var port = Int.random(in: candidates)
            for _ in 0..<candidates.count {
                port = port == candidates.upperBound ? candidates.lowerBound : port + 1
                if handedOut.contains(port) || !Self.bindable(port) { continue }
                handedOut.insert(port)
                return port
            }
            throw TestSetupError("no free port in \(candidates)")
        }
    }

    static func bindable(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
