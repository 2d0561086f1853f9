import EdgeCore
import EdgeSystem
import Foundation

/// A line-oriented control socket for a running simulator, so tests, the demo and field techs can inject
/// faults and move values: `fault rpc-1 silent`, `fault rpc-1 exception:2`, `set rpc-1.tubing_pressure 650`,
/// `list`, and for flow computers `efm meter-1 advance 24` (see `handleFlowComputer`). Each command gets one reply
/// line starting with `ok` or `error`.
// Guard: `lock` protects `fd` and `stopping`; `devices`, `flowComputers` (each guards itself) and `path` are
// immutable.
public final class SimControl: @unchecked Sendable {
    private let devices: [String: SimDevice]
    let flowComputers: [String: SimFlowComputer]
    private let path: String
    private var fd: Int32 = -1
    private let lock = NSLock()
    private var stopping = false

    public init(path: String, devices: [SimDevice], flowComputers: [SimFlowComputer] = []) {
        self.path = path
        self.devices = Dictionary(devices.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.flowComputers = Dictionary(flowComputers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Handles one command line; public so it can be tested without a socket.
    public func handle(_ line: String) -> String {
        let words = line.split(separator: " ").map(String.init)
        guard let verb = words.first else { return "error: empty command" }
        switch verb {
        case "list":
            return "ok "
                + devices.keys.sorted().map { "\($0)(unit \(devices[$0]!.unit), fault \(devices[$0]!.currentFault))" }
                .joined(separator: ", ")
        case "fault":
            guard words.count == 3, let d = devices[words[1]] else {
                return "error: usage: fault DEVICE none|silent|exception:N|slow:DURATION|garbage|wrong-unit"
            }
            guard let f = SimFault(parsing: words[2]) else { return "error: unknown fault '\(words[2])'" }
            d.set(fault: f)
            return "ok \(words[1]) fault \(f)"
        case "set":
            let parts = words.count == 3 ? words[1].split(separator: ".", maxSplits: 1).map(String.init) : []
            guard parts.count == 2, let d = devices[parts[0]], let v = Double(words[2]) else {
                return "error: usage: set DEVICE.TAG VALUE"
            }
            guard d.tags.contains(where: { $0.name == parts[1] }) else {
                return "error: \(parts[0]) has no tag \(parts[1])"
            }
            d.set(parts[1], .constant(v))
            return "ok \(words[1]) = \(v)"
        case "get":
            let parts = words.count == 2 ? words[1].split(separator: ".", maxSplits: 1).map(String.init) : []
            guard parts.count == 2, let d = devices[parts[0]], let v = d.value(of: parts[1]) else {
                return "error: usage: get DEVICE.TAG"
            }
            return "ok \(v)"
        case "efm":
            return handleFlowComputer(Array(words.dropFirst()))
        default:
            return "error: unknown command '\(verb)' (list, fault, set, get, efm)"
        }
    }

    public func start() throws {
        let fd: Int32
        do { fd = try UnixSocket.listen(path: path, backlog: 4) } catch { throw SimError("cannot listen: \(error)") }
        lock.withLock { self.fd = fd }
        let t = Thread { [self] in loop(fd) }
        t.name = "edgesim-control"
        t.start()
    }

    /// Stops serving; the serving thread closes the listening socket itself (see ControlServer.stop).
    public func stop() {
        lock.withLock {
            stopping = true
            if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }  // wakes the poll; under the lock, so fd is still ours
        }
        unlink(path)
    }

    private func loop(_ fd: Int32) {
        defer {
            lock.withLock {
                close(fd); self.fd = -1
            }
        }
        while !lock.withLock({ stopping }) {
            guard (try? UnixSocket.waitReadable(fd, timeoutMillis: 200)) == true,
                let client = try? UnixSocket.accept(fd)
            else { continue }
            var buffer = [UInt8]()
            reading: while (try? UnixSocket.waitReadable(client, timeoutMillis: 2000)) == true {
                guard let chunk = try? UnixSocket.read(client, max: 512), !chunk.isEmpty else { break }
                buffer += chunk
                while let nl = buffer.firstIndex(of: 10) {
                    let line = String(decoding: buffer[..<nl], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                    buffer.removeSubrange(...nl)
                    guard (try? UnixSocket.writeAll(client, Array((handle(line) + "\n").utf8))) != nil else {
                        break reading
                    }
                }
            }
            close(client)
        }
    }
}
