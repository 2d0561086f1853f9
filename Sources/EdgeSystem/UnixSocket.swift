import CEdgeSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Unix stream sockets for the control sockets of edged and edgesim: listen, connect, wait, write a whole
/// reply. Every descriptor is close-on-exec; every failure is a `SystemError` naming the call and the path.
public enum UnixSocket {
    /// A listening socket at `path` (an old socket file there is removed first), non-blocking so that a
    /// client that went away between poll and accept cannot park the accepting thread. `prepare` runs
    /// between bind and listen (e.g. to set the file's mode and group).
    public static func listen(path: String, backlog: Int32, prepare: (String) -> Void = { _ in }) throws(SystemError)
        -> Int32
    {
        guard var addr = address(path) else { throw SystemError("bind", target: path, errno: ENAMETOOLONG) }
        unlink(path)
        let fd = try Syscall.run("socket", target: path) {
            socket(
                AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        }
        do {
            try Syscall.run("bind", target: path) {
                withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                }
            }
            prepare(path)
            try Syscall.run("listen", target: path) { Glibc.listen(fd, backlog) }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// A connected (blocking) socket to the listener at `path`.
    public static func connect(path: String) throws(SystemError) -> Int32 {
        guard var addr = address(path) else { throw SystemError("connect", target: path, errno: ENAMETOOLONG) }
        let fd = try Syscall.run("socket", target: path) {
            socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        do {
            try Syscall.run("connect", target: path) {
                withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                }
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// The next connection, made close-on-exec, or nil when none is waiting (the listener is non-blocking).
    public static func accept(_ listener: Int32) throws(SystemError) -> Int32? {
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            if fd >= 0 {
                // Glibc's module does not bring accept4 (a GNU extension): set close-on-exec at once.
                guard fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 else {
                    let e = errno
                    close(fd)
                    throw SystemError("fcntl FD_CLOEXEC", errno: e)
                }
                return fd
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, ECONNABORTED: return nil
            default: throw SystemError("accept", errno: errno)
            }
        }
    }

    /// Waits until `fd` is readable (or closed by the peer): true; false when `timeoutMillis` passed.
    /// The peer's process, user and group (SO_PEERCRED), as the kernel recorded them at connect.
    public static func peerCredentials(_ fd: Int32) throws(SystemError) -> (pid: Int32, uid: UInt32, gid: UInt32) {
        var pid: Int32 = 0, uid: UInt32 = .max, gid: UInt32 = .max
        let rc = edge_peer_credentials(fd, &pid, &uid, &gid)
        if rc != 0 { throw SystemError("getsockopt(SO_PEERCRED)", errno: rc) }
        return (pid, uid, gid)
    }

    public static func waitReadable(_ fd: Int32, timeoutMillis: Int32) throws(SystemError) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return try Syscall.run("poll") { poll(&p, 1, timeoutMillis) } > 0
    }

    /// Reads what is there (at most `max` bytes); empty when the peer closed.
    public static func read(_ fd: Int32, max: Int) throws(SystemError) -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: max)
        let n = try Syscall.run("read") { Glibc.read(fd, &chunk, max) }
        return Array(chunk[..<n])
    }

    /// Writes all of `bytes` (no SIGPIPE when the peer went away: an EPIPE error instead).
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        var off = 0
        while off < bytes.count {
            let n = try Syscall.run("send") {
                bytes.withUnsafeBytes { raw in send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL)) }
            }
            off += n
        }
    }

    /// The address of `path`, or nil when it does not fit in `sun_path`.
    public static func address(_ path: String) -> sockaddr_un? {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        return addr
    }
}
