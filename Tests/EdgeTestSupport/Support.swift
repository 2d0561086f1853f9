import EdgeCore
import Foundation

/// Paths used by tests: the repository root and the fixtures folder.
/// How this test run was built: `make tsan` sets EDGED_TSAN=1, and every wait for a condition or a
/// process then allows 5 times as long (ThreadSanitizer slows code 5–15×). Assertions about figures the
/// sanitizer itself changes (glibc's heap counters: it brings its own allocator) check `sanitized`.
public enum TestEnvironment {
    public static let sanitized = ProcessInfo.processInfo.environment["EDGED_TSAN"] == "1"
    public static let timeScale: Double = sanitized ? 5 : 1
}

public enum TestPaths {
    /// The package root, found from this file's location.
    public static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    public static let fixtures = root.appendingPathComponent("Tests/Fixtures")
    public static let config = root.appendingPathComponent("config")
}

/// Config files served from a folder, so diagnostics name paths relative to it (`edged.yaml:3:5`).
public struct RootedConfigFiles: ConfigFileAccess {
    public let root: URL
    public let base: any ConfigFileAccess
    public init(root: URL, base: any ConfigFileAccess) { self.root = root; self.base = base }
    func full(_ path: String) -> String { path.hasPrefix("/") ? path : root.appendingPathComponent(path).path }
    public func readText(_ path: String) throws(ConfigFileError) -> String {
        do { return try base.readText(full(path)) } catch { throw ConfigFileError(path: path, reason: error.reason) }
    }
    public func permissions(_ path: String) -> UInt32? { base.permissions(full(path)) }
}

/// In-memory config files, for pure tests.
public struct MemoryConfigFiles: ConfigFileAccess {
    public var files: [String: String]
    public var modes: [String: UInt32]
    public init(_ files: [String: String], modes: [String: UInt32] = [:]) { self.files = files; self.modes = modes }
    public func readText(_ path: String) throws(ConfigFileError) -> String {
        guard let t = files[path] else { throw ConfigFileError(path: path, reason: "No such file or directory") }
        return t
    }
    public func permissions(_ path: String) -> UInt32? { modes[path] ?? (files[path] != nil ? 0o600 : nil) }
}

/// A small valid pad to start test configs from.
public enum SampleConfigs {
    public static let minimal = """
        gateway: {id: gw-1, site: Test Pad, tenant: acmeoil}
        uplink:
          endpoint: https://acmeoil.wellpulse.io/api/v1/edge/batches
          token: {credential: edged-token}
        storage: {path: /var/lib/edged/buffer.db}
        buses:
          - {name: line1, type: rtu, device: /dev/ttyS1, baud: 9600}
        templates:
          - name: gauge
            addressing: modicon
            tags:
              - {name: pressure, address: 40001, type: uint16, scale: 0.1, units: psi}
              - {name: status, address: 40002, type: uint16, states: {0: stopped, 1: running}}
        devices:
          - {name: well-1, bus: line1, unit: 1, template: gauge, poll: 5s}
        """
}

/// The example pad, loaded once for tests that need real templates.
public enum ExamplePad {
    public static func load() throws -> EdgeConfig {
        try ConfigLoader(files: ExampleFiles()).load(
            path: TestPaths.config.appendingPathComponent("edged.example.yaml").path
        ).get().config
    }
    /// Plain file reads for the shipped example (EdgeCore-only, so test support needs no I/O module).
    struct ExampleFiles: ConfigFileAccess {
        func readText(_ path: String) throws(ConfigFileError) -> String {
            guard let d = FileManager.default.contents(atPath: path), let s = String(data: d, encoding: .utf8) else {
                throw ConfigFileError(path: path, reason: "unreadable")
            }
            return s
        }
        func permissions(_ path: String) -> UInt32? {
            (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.uint32Value
        }
    }
}

extension TestPaths {
    /// Where `swift build` put the executables (beside the test bundle).
    public static let products: URL = {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("edgectl").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }()
    public static func product(_ name: String) -> String { products.appendingPathComponent(name).path }
}

/// Runs a command to completion and returns its exit status and output (stdout and stderr together).
public func runTool(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> (
    status: Int32, output: String
) {
    let dir = TempDir("edged-run")
    let out = dir.file("out")
    let child = try ChildProcess(executable, arguments, output: out)
    guard let status = child.wait(timeout: timeout) else {
        child.terminate()
        throw TestSetupError("\(executable) \(arguments.joined(separator: " ")) did not finish in \(timeout) s")
    }
    let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    return ((status >> 8) & 0xFF, text)
}

/// `runTool` for async code: waits for the tool without holding a thread of the cooperative pool.
public func runTool(_ executable: String, _ arguments: [String], timeout: Double = 60) async throws -> (
    status: Int32, output: String
) {
    let dir = TempDir("edged-run")
    let out = dir.file("out")
    let child = try ChildProcess(executable, arguments, output: out)
    guard let status = await child.wait(timeout: timeout) else {
        child.terminate()
        throw TestSetupError("\(executable) \(arguments.joined(separator: " ")) did not finish in \(timeout) s")
    }
    let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    return ((status >> 8) & 0xFF, text)
}

/// Runs blocking test code (a bus loop, sockets, sleeps) on a thread of its own and awaits its result, so
/// the cooperative pool — two threads on a two-core box — stays free for the async tests running beside it.
/// Expectations belong in the awaiting test, not in `body` (issues are attributed by task).
public func offPool<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        let thread = Thread { c.resume(with: Result { try body() }) }
        thread.name = name
        thread.start()
    }
}
