import Foundation

/// Replaces a file so that a power cut leaves either the old or the new content, never a mix: write a
/// temp file in the same directory, fsync it, keep a backup of the old one, rename over, fsync the directory.
public enum AtomicFile {
    public struct Failure: Error, Sendable, CustomStringConvertible { public var description: String }

    public static func replace(_ path: String, with text: String, backup: Bool = true) throws(Failure) {
        let dir =
            (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        var st = stat()
        let mode: mode_t = stat(path, &st) == 0 ? st.st_mode & 0o7777 : 0o640
        if backup, FileManager.default.fileExists(atPath: path) {
            let bak = path + ".bak"
            unlink(bak)
            guard link(path, bak) == 0 || (try? FileManager.default.copyItem(atPath: path, toPath: bak)) != nil else {
                throw Failure(description: "cannot keep a backup at \(bak): \(String(cString: strerror(errno)))")
            }
        }
        let tmp = "\(path).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(description: "cannot write \(tmp): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }; let e = errno; close(fd); unlink(tmp);
                throw Failure(description: "writing \(tmp): \(String(cString: strerror(e)))")
            }
            off += n
        }
        if st.st_uid != 0 || st.st_gid != 0 { _ = fchown(fd, st.st_uid, st.st_gid) }
        guard fsync(fd) == 0 else {
            let e = errno; close(fd); unlink(tmp);
            throw Failure(description: "fsync \(tmp): \(String(cString: strerror(e)))")
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let e = errno; unlink(tmp); throw Failure(description: "rename to \(path): \(String(cString: strerror(e)))")
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
