/// Where in which file something was written: 1-based line and column, as editors count them.
public struct SourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public init(file: String, line: Int, column: Int) {
        self.file = file; self.line = line; self.column = column
    }
    public var description: String { "\(file):\(line):\(column)" }
}

/// One finding about a configuration: where, which field, and what was expected.
///
/// Renders as `config/edged.yaml:42:7: error: devices[3].unit: 250 is out of range 1...247`.
public struct ConfigDiagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Codable { case error, warning }
    public var severity: Severity
    public var location: SourceLocation?
    /// The field path, e.g. `devices[3].unit`; empty for the document as a whole.
    public var path: String
    public var message: String

    public init(_ severity: Severity, at location: SourceLocation?, path: String, _ message: String) {
        self.severity = severity; self.location = location; self.path = path; self.message = message
    }

    public var description: String {
        var out = location.map { "\($0): " } ?? ""
        out += "\(severity.rawValue): "
        if !path.isEmpty { out += "\(path): " }
        return out + message
    }
}

/// Thrown when a configuration cannot be used; carries every error and warning found in one run.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]
    public init(diagnostics: [ConfigDiagnostic]) { self.diagnostics = diagnostics }
    public var errors: [ConfigDiagnostic] { diagnostics.filter { $0.severity == .error } }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Collects diagnostics while a configuration is read and checked.
struct DiagnosticLog {
    private(set) var items: [ConfigDiagnostic] = []
    var hasErrors: Bool { items.contains { $0.severity == .error } }

    mutating func error(_ at: SourceLocation?, _ path: String, _ message: String) {
        items.append(ConfigDiagnostic(.error, at: at, path: path, message))
    }
    mutating func warning(_ at: SourceLocation?, _ path: String, _ message: String) {
        items.append(ConfigDiagnostic(.warning, at: at, path: path, message))
    }
    mutating func append(contentsOf other: [ConfigDiagnostic]) { items.append(contentsOf: other) }
}

/// Suggests the closest known word for a misspelt one ("did you mean 'baud'?").
enum Suggestion {
    static func closest(to word: String, in candidates: some Sequence<String>) -> String? {
        let lowered = word.lowercased()
        var best: (String, Int)?
        for c in candidates {
            let lc = c.lowercased()
            var d = distance(lowered, lc)
            // `baudrate` for `baud`, `temp` for `temperature`: a prefix of three or more letters counts as close.
            if min(lc.count, lowered.count) >= 3, lc.hasPrefix(lowered) || lowered.hasPrefix(lc) { d = min(d, 1) }
            if d <= max(2, c.count / 4), d < (best?.1 ?? .max) { best = (c, d) }
        }
        return best?.0
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count)
        var cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }

    static func hint(for word: String, in candidates: some Sequence<String>) -> String {
        closest(to: word, in: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }
}
