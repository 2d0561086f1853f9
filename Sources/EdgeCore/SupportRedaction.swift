/// What `edgectl support-bundle` removes from every file it puts in the bundle: the uplink token (when
/// edgectl could read it), bearer tokens in logged headers, PEM private keys, and passwords in URLs
/// (`http://user:secret@proxy`). Pure: the command reads, this decides, the command writes.
public enum SupportRedaction {
    public static let mark = "[REDACTED]"

    /// `text` with every secret replaced by `[REDACTED]`; `secrets` are literal values known to be secret
    /// (the token), each at least 8 characters (shorter ones would blank ordinary words).
    public static func redact(_ text: String, secrets: [String] = []) -> String {
        // Bearer tokens first, whole (a known secret inside one would otherwise leave its tail).
        var out = redactAfter("Bearer ", in: text)
        for s in secrets where s.count >= 8 { out = out.replacingAll(s, with: mark) }
        out = redactPEMKeys(out)
        out = redactURLPasswords(out)
        return out
    }

    /// `-----BEGIN … PRIVATE KEY-----` … `-----END … PRIVATE KEY-----` blocks, whole.
    static func redactPEMKeys(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let begin = rest.range(of: "-----BEGIN "), let header = rest[begin.upperBound...].range(of: "-----") {
            let label = rest[begin.upperBound..<header.lowerBound]
            guard label.hasSuffix("PRIVATE KEY") else {
                out += rest[..<header.upperBound]
                rest = rest[header.upperBound...]
                continue
            }
            out += rest[..<begin.lowerBound] + "-----BEGIN \(label)----- \(mark) -----END \(label)-----"
            if let end = rest[header.upperBound...].range(of: "-----END \(label)-----") {
                rest = rest[end.upperBound...]
            } else {
                rest = ""
            }
        }
        return out + rest
    }

    /// The token characters (RFC 6750: A-Z a-z 0-9 - . _ ~ + / =) after each `prefix`.
    static func redactAfter(_ prefix: String, in text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let r = rest.range(of: prefix) {
            out += rest[..<r.upperBound]
            rest = rest[r.upperBound...]
            let token = rest.prefix { $0.isLetter || $0.isNumber || "-._~+/=".contains($0) }
            if !token.isEmpty {
                out += mark
                rest = rest.dropFirst(token.count)
            }
        }
        return out + rest
    }

    /// `scheme://user:password@host` → `scheme://user:[REDACTED]@host`.
    static func redactURLPasswords(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let r = rest.range(of: "://") {
            out += rest[..<r.upperBound]
            rest = rest[r.upperBound...]
            let authority = rest.prefix { !"/ \n\t\"'".contains($0) }
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                out += rest[..<colon] + ":" + mark
                rest = rest[at...]
            }
        }
        return out + rest
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: target) {
            out += rest[..<r.lowerBound] + replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
