#if canImport(Glibc)
    import Glibc
#endif

/// Blocking TCP client sockets with timeouts (RTU framed over TCP to a serial device server): every call's
/// return checked, EINTR retried, failures as `SystemError`.
public enum TCPSocket {
    /// A connected socket to `host:port` (each resolved address tried in turn), close-on-exec, TCP_NODELAY.
    public static func connect(host: String, port: Int, timeoutMillis: Int) throws(SystemError) -> Int32 {
        let target = "\(host):\(port)"
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &res)
        guard rc == 0, let first = res else {
            throw SystemError(
                "getaddrinfo", target: host, errno: 0,
                detail: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(res) }
        var last = SystemError("connect", target: target, errno: 0, detail: "no address")
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            do {
                return try connect(a.pointee, target: target, timeoutMillis: timeoutMillis)
            } catch {
                last = error
            }
        }
        throw last
    }

    private static func connect(_ a: addrinfo, target: String, timeoutMillis: Int) throws(SystemError) -> Int32 {
        let fd = try Syscall.run("socket", target: target) {
            socket(a.ai_family, a.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.ai_protocol)
        }
        do throws(SystemError) {
            let flags = try Syscall.run("fcntl F_GETFL", target: target) { fcntl(fd, F_GETFL) }
            try Syscall.run("fcntl F_SETFL", target: target) { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
            if Glibc.connect(fd, a.ai_addr, a.ai_addrlen) < 0 {
                guard errno == EINPROGRESS else { throw SystemError("connect", target: target, errno: errno) }
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = try Syscall.run("poll", target: target) { poll(&p, 1, Int32(timeoutMillis)) }
                guard ready > 0 else {
                    throw SystemError(
                        "connect", target: target, errno: ETIMEDOUT,
                        detail: "connect timed out after \(timeoutMillis) ms")
                }
                var soErr: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                try Syscall.run("getsockopt SO_ERROR", target: target) {
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soErr, &len)
                }
                if soErr != 0 { throw SystemError("connect", target: target, errno: soErr) }
            }
            try Syscall.run("fcntl F_SETFL", target: target) { fcntl(fd, F_SETFL, flags) }
            var one: Int32 = 1
            try Syscall.run("setsockopt TCP_NODELAY", target: target) {
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// Writes all of `bytes` (no SIGPIPE: an EPIPE error instead).
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        var off = 0
        while off < bytes.count {
            let n = try Syscall.run("send") {
                bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
            off += n
        }
    }

    /// Up to `max` bytes, or none when nothing arrives within the timeout; a closed connection is an error.
    public static func read(_ fd: Int32, max: Int, timeoutMillis: Int) throws(SystemError) -> [UInt8] {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard try Syscall.run("poll", { poll(&p, 1, Int32(timeoutMillis)) }) > 0 else { return [] }
        var buf = [UInt8](repeating: 0, count: max)
        let n = try Syscall.run("recv") { recv(fd, &buf, max, 0) }
        if n == 0 { throw SystemError("recv", errno: ECONNRESET, detail: "connection closed by the device server") }
        return Array(buf[..<n])
    }

    /// Discards bytes already waiting (what a timed-out exchange left behind); stops at the first error.
    public static func drain(_ fd: Int32) {
        var buf = [UInt8](repeating: 0, count: 512)
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 0) > 0, p.revents & Int16(POLLIN) != 0 else { return }
            if recv(fd, &buf, buf.count, 0) <= 0 { return }
        }
    }
}
