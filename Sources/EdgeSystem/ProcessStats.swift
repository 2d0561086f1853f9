import Foundation

/// The process's own footprint and the box around it, from /proc and statvfs: what the gateway's health
/// series reports and the benchmarks measure. Every reader answers nil when the kernel does not say.
public enum ProcessStats {
    /// A memory line of `/proc/<pid>/status` (`RssAnon:`, `VmRSS:`) in bytes: the process's own
    /// (anonymous) memory is `RssAnon`.
    public static func memory(_ key: String, pid: pid_t? = nil) -> Int64? {
        let path = pid.map { "/proc/\($0)/status" } ?? "/proc/self/status"
        guard let status = try? String(contentsOfFile: path, encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }),
            let kib = line.split(separator: " ").dropFirst().first.flatMap({ Int64($0) })
        else { return nil }
        return kib * 1024
    }

    /// CPU time (user + system) the process has used, in seconds.
    public static func cpuSeconds(pid: pid_t? = nil) -> Double? {
        let path = pid.map { "/proc/\($0)/stat" } ?? "/proc/self/stat"
        guard let stat = try? String(contentsOfFile: path, encoding: .utf8), let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: state is fields[0]; utime and stime are fields 11 and 12, in clock ticks.
        guard fields.count > 12, let u = Double(fields[11]), let k = Double(fields[12]) else { return nil }
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return ticks > 0 ? (u + k) / Double(ticks) : nil
    }

    /// Bytes free for an unprivileged writer on the filesystem holding `path`.
    public static func diskFreeBytes(_ path: String) -> Int64? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }
}
