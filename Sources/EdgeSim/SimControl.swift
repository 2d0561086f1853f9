import EdgeCore
import Foundation

/// A line-oriented control socket for a running simulator, so tests, the demo and field techs can inject
/// faults and move values: `fault rpc-1 silent`, `fault rpc-1 exception:2`, `set rpc-1.tubing_pressure 650`,
/// `list`. Each command gets one reply line starting with `ok` or `error`.
public final class SimControl: @unchecked Sendable {
    private let devices: [String: SimDevice]
    private let path: String
    private var fd: Int32 = -1
    private let lock = NSLock()
    private var stopping = false

    public init(path: String, devices: [SimDevice]) {
        self.path = path
        self.devices = Dictionary(devices.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
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
        default:
            return "error: unknown command '\(verb)' (list, fault, set, get)"
        }
    }

    public func start() throws {
        unlink(path)
        let fd = socket(
            AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SimError("socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd); throw SimError("control socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
        }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        guard ok, listen(fd, 4) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw SimError("cannot listen on \(path): \(why)")
        }
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
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) > 0 else { continue }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            var buffer = [UInt8]()
            var chunk = [UInt8](repeating: 0, count: 512)
            while true {
                var cp = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
                guard poll(&cp, 1, 2000) > 0 else { break }
                let n = read(client, &chunk, chunk.count)
                if n <= 0 { break }
                buffer += chunk[..<n]
                while let nl = buffer.firstIndex(of: 10) {
                    let line = String(decoding: buffer[..<nl], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                    buffer.removeSubrange(...nl)
                    let reply = Array((handle(line) + "\n").utf8)
                    _ = reply.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                }
            }
            close(client)
        }
    }
}
