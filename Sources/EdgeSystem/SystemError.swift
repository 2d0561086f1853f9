#if canImport(Glibc)
    import Glibc
#endif

/// A failed system call: which call, on what, and errno — the one place errno becomes a typed error.
public struct SystemError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call that failed (`bind`, `connect`, `poll`, …).
    public var call: String
    /// What it was called on (a path, an address), if anything.
    public var target: String?
    public var errno: Int32
    /// Words of the failure's own where errno says too little (a resolver's error, a timeout).
    public var detail: String?

    public init(_ call: String, target: String? = nil, errno: Int32, detail: String? = nil) {
        self.call = call; self.target = target; self.errno = errno; self.detail = detail
    }

    /// What went wrong, in words: `detail`, or strerror's words for errno.
    public var reason: String { detail ?? Self.reason(errno: errno) }

    /// strerror's words for an errno: the one place they are looked up.
    public static func reason(errno: Int32) -> String { String(cString: strerror(errno)) }

    public var description: String { "\(call)\(target.map { " \($0)" } ?? ""): \(reason)" }
}

/// System calls with EINTR retried and failures thrown as `SystemError`.
public enum Syscall {
    /// Runs `body` (a call returning -1 and setting errno on failure) until it is not interrupted; throws
    /// its errno on failure, returns its result otherwise.
    @discardableResult
    public static func run<T: BinaryInteger>(_ call: String, target: String? = nil, _ body: () -> T) throws(SystemError)
        -> T
    {
        while true {
            let rc = body()
            if rc >= 0 { return rc }
            let e = Glibc.errno
            if e == EINTR { continue }
            throw SystemError(call, target: target, errno: e)
        }
    }
}
