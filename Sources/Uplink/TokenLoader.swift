import EdgeCore
import EdgeSystem
import Foundation

/// Reads the bearer token from its configured source. Never logs it.
public enum TokenLoader {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public static func load(_ source: TokenSource, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(Failure) -> String
    {
        let path: String
        switch source {
        case .file(let p):
            path = p
            var st = stat()
            guard stat(p, &st) == 0 else {
                throw Failure(description: "token file \(p): \(SystemError.reason(errno: errno))")
            }
            if st.st_mode & 0o077 != 0 {
                throw Failure(
                    description:
                        "token file \(p) is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); run: chmod 600 \(p)"
                )
            }
        case .credential(let name):
            guard let dir = environment["CREDENTIALS_DIRECTORY"] else {
                throw Failure(
                    description:
                        "token credential '\(name)': $CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=\(name):/etc/edged/token)"
                )
            }
            path = "\(dir)/\(name)"
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "cannot read token from \(path)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty, token.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 32 && $0.value < 127 }) else {
            throw Failure(description: "the token in \(path) is empty or has characters a bearer token cannot have")
        }
        return token
    }
}
