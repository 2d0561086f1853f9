import EdgeCore
import EdgeSystem
import Foundation

/// Reads configuration and template files from the local file system.
public struct DiskConfigFiles: ConfigFileAccess {
    public init() {}

    public func readText(_ path: String) throws(ConfigFileError) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { throw ConfigFileError(path: path, reason: SystemError.reason(errno: errno)) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw ConfigFileError(path: path, reason: "not a regular file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigFileError(
                path: path, reason: access(path, R_OK) != 0 ? SystemError.reason(errno: errno) : "unreadable")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigFileError(path: path, reason: "not UTF-8 text")
        }
        return text
    }

    public func permissions(_ path: String) -> UInt32? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return UInt32(st.st_mode) & 0o7777
    }
}
