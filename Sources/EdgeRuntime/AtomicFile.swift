import EdgeSystem
import Foundation

/// Replaces a file so that a power cut leaves either the old or the new content, never a mix: write a
/// temp file in the same directory, fsync it, keep a backup of the old one, rename over, fsync the directory.
public enum AtomicFile {
    public struct Failure: Error, Sendable, CustomStringConvertible { public var description: String }

    public static func replace(_ path: String, with text: String, backup: Bool = true) throws(Failure) {
        do { try write(path, Array(text.utf8), backup: backup) } catch { throw Failure(description: error.description) }
    }

    private static func write(_ path: String, _ bytes: [UInt8], backup: Bool) throws(SystemError) {
        let parent = (path as NSString).deletingLastPathComponent
        let dir = parent.isEmpty ? "." : parent
        var st = stat()
        let exists = stat(path, &st) == 0
        let mode: mode_t = exists ? st.st_mode & 0o7777 : 0o640
        if backup && exists {
            let bak = path + ".bak"
            if unlink(bak) != 0 && errno != ENOENT { throw SystemError("unlink", target: bak, errno: errno) }
            // A hard link costs nothing; where the file system has none, a copy.
            if link(path, bak) != 0 {
                let e = errno
                guard (try? FileManager.default.copyItem(atPath: path, toPath: bak)) != nil else {
                    throw SystemError("link", target: bak, errno: e)
                }
            }
        }
        let tmp = "\(path).tmp-\(getpid())"
        let fd = try Syscall.run("open", target: tmp) { open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
        do {
            var off = 0
            while off < bytes.count {
                off += try Syscall.run("write", target: tmp) {
                    bytes[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                }
            }
            // Best effort: a non-root editor cannot give the file to root, and keeps the mode regardless.
            if exists && (st.st_uid != getuid() || st.st_gid != getgid()) { _ = fchown(fd, st.st_uid, st.st_gid) }
            try Syscall.run("fsync", target: tmp) { fsync(fd) }
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        // close after a successful fsync cannot lose data; its result changes nothing here.
        close(fd)
        do { try Syscall.run("rename", target: path) { rename(tmp, path) } } catch {
            unlink(tmp)
            throw error
        }
        // The rename is durable only once the directory is.
        let dfd = try Syscall.run("open", target: dir) { open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(dfd) }
        try Syscall.run("fsync", target: dir) { fsync(dfd) }
    }
}
