import Foundation
import Yams

/// A YAML node together with the file it came from and its field path (`devices[3].unit`).
struct YNode {
    let node: Node
    let path: String
    let file: String

    var location: SourceLocation? {
        node.mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) }
    }
    var isNull: Bool { node.null != nil }
    var scalarText: String? { node.scalar?.string }

    func child(_ key: String, _ value: Node) -> YNode {
        YNode(node: value, path: path.isEmpty ? key : "\(path).\(key)", file: file)
    }
    func item(_ index: Int, _ value: Node) -> YNode {
        YNode(node: value, path: "\(path)[\(index)]", file: file)
    }

    /// What kind of YAML node this is, for messages ("expected a mapping, got a list").
    var kindDescription: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let s):
            if node.null != nil { return "nothing" }
            return "'\(s.string)'"
        }
    }
}

/// A YAML mapping whose keys have been checked against the keys the reader knows.
struct YMap {
    let base: YNode
    private let entries: [String: YNode]
    private let keyNodes: [String: YNode]
    let keys: [String]
    /// Known keys that an unknown key was taken for a misspelling of (no "missing" error for those).
    let misspelt: Set<String>

    fileprivate init(
        base: YNode, entries: [String: YNode], keyNodes: [String: YNode], keys: [String], misspelt: Set<String>
    ) {
        self.base = base; self.entries = entries; self.keyNodes = keyNodes; self.keys = keys; self.misspelt = misspelt
    }
    /// Where the key itself is written (errors about a key point there, not at its value).
    func keyNode(_ key: String) -> YNode? { keyNodes[key] }
    subscript(key: String) -> YNode? {
        guard let n = entries[key], !n.isNull else { return nil }
        return n
    }
    func has(_ key: String) -> Bool { self[key] != nil }
}

/// Typed reads from YAML nodes; each failed read records a diagnostic naming file, line, column and field.
struct YAMLReader {
    var log = DiagnosticLog()

    /// Reads a mapping; unknown keys are errors with a "did you mean" suggestion, duplicates are errors too.
    mutating func map(_ n: YNode, known: [String]) -> YMap? {
        guard let mapping = n.node.mapping else {
            log.error(n.location, n.path, "expected a mapping, got \(n.kindDescription)")
            return nil
        }
        var entries: [String: YNode] = [:]
        var keyNodes: [String: YNode] = [:]
        var keys: [String] = []
        var misspelt: Set<String> = []
        for (k, v) in mapping {
            let keyNode = YNode(node: k, path: n.path, file: n.file)
            guard let key = k.scalar?.string else {
                log.error(keyNode.location, n.path, "keys must be plain words, got \(keyNode.kindDescription)")
                continue
            }
            let keyLoc = keyNode.location
            if let dup = DuplicateKeys.original(of: key) {
                log.error(
                    keyLoc, n.child(dup.key, v).path,
                    "duplicate key '\(dup.key)' in one mapping (first given at line \(dup.firstLine))")
                continue
            }
            let child = n.child(key, v)
            if !known.contains(key) {
                let suggestion = Suggestion.closest(to: key, in: known)
                if let s = suggestion { misspelt.insert(s) }
                log.error(
                    keyLoc, child.path, "unknown key '\(key)'\(suggestion.map { "; did you mean '\($0)'?" } ?? "")")
                continue
            }
            entries[key] = child
            keyNodes[key] = YNode(node: k, path: child.path, file: n.file)
            keys.append(key)
        }
        return YMap(base: n, entries: entries, keyNodes: keyNodes, keys: keys, misspelt: misspelt)
    }

    /// Reads a list; a single value where a list is expected is an error.
    mutating func list(_ n: YNode) -> [YNode]? {
        guard let seq = n.node.sequence else {
            log.error(n.location, n.path, "expected a list, got \(n.kindDescription)")
            return nil
        }
        return seq.enumerated().map { n.item($0.offset, $0.element) }
    }

    mutating func list(_ m: YMap, _ key: String, required: Bool = false) -> [YNode]? {
        guard let n = present(m, key, required: required) else { return nil }
        return list(n)
    }

    /// The node for `key`, or nil; a missing required key is reported at the mapping.
    mutating func present(_ m: YMap, _ key: String, required: Bool) -> YNode? {
        if let n = m[key] { return n }
        if required && !m.misspelt.contains(key) {
            let path = m.base.path.isEmpty ? key : "\(m.base.path).\(key)"
            log.error(m.base.location, path, "missing required field '\(key)'")
        }
        return nil
    }

    mutating func scalar(_ n: YNode, expected: String) -> String? {
        guard let text = n.scalarText, n.node.scalar != nil else {
            log.error(n.location, n.path, "expected \(expected), got \(n.kindDescription)")
            return nil
        }
        return text
    }

    mutating func string(_ m: YMap, _ key: String, required: Bool = false) -> String? {
        guard let n = present(m, key, required: required) else { return nil }
        guard let s = scalar(n, expected: "a string") else { return nil }
        if s.isEmpty {
            log.error(n.location, n.path, "must not be empty")
            return nil
        }
        return s
    }

    /// A name used as a reference elsewhere: letters, digits, '-' and '_', starting with a letter or digit.
    mutating func name(_ m: YMap, _ key: String, required: Bool = true, identifier: Bool = false) -> String? {
        guard let n = present(m, key, required: required),
            let s = scalar(n, expected: "a name")
        else { return nil }
        let ok = NameRules.isValid(s, identifier: identifier)
        if !ok {
            log.error(
                n.location, n.path,
                identifier
                    ? "'\(s)' is not a valid tag name (letters, digits and '_', starting with a letter or '_')"
                    : "'\(s)' is not a valid name (letters, digits, '-' and '_', starting with a letter or digit)")
            return nil
        }
        return s
    }

    mutating func int(_ n: YNode, range: ClosedRange<Int>? = nil) -> Int? {
        guard let s = scalar(n, expected: "a whole number") else { return nil }
        let cleaned = s.replacingOccurrences(of: "_", with: "")
        let value: Int?
        if cleaned.lowercased().hasPrefix("0x") {
            value = Int(cleaned.dropFirst(2), radix: 16)
        } else {
            value = Int(cleaned)
        }
        guard let v = value else {
            log.error(n.location, n.path, "expected a whole number, got '\(s)'")
            return nil
        }
        if let r = range, !r.contains(v) {
            log.error(n.location, n.path, "\(v) is out of range \(r.lowerBound)...\(r.upperBound)")
            return nil
        }
        return v
    }

    mutating func int(_ m: YMap, _ key: String, range: ClosedRange<Int>? = nil, required: Bool = false) -> Int? {
        guard let n = present(m, key, required: required) else { return nil }
        return int(n, range: range)
    }

    mutating func double(_ n: YNode) -> Double? {
        guard let s = scalar(n, expected: "a number") else { return nil }
        guard let v = Double(s.replacingOccurrences(of: "_", with: "")), v.isFinite else {
            log.error(n.location, n.path, "expected a number, got '\(s)'")
            return nil
        }
        return v
    }

    mutating func double(_ m: YMap, _ key: String, required: Bool = false) -> Double? {
        guard let n = present(m, key, required: required) else { return nil }
        return double(n)
    }

    mutating func bool(_ m: YMap, _ key: String, required: Bool = false) -> Bool? {
        guard let n = present(m, key, required: required), let s = scalar(n, expected: "true or false") else {
            return nil
        }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            log.error(n.location, n.path, "expected true or false, got '\(s)'")
            return nil
        }
    }

    mutating func duration(
        _ m: YMap, _ key: String, required: Bool = false,
        min: TimeSpan? = nil, max: TimeSpan? = nil
    ) -> TimeSpan? {
        guard let n = present(m, key, required: required) else { return nil }
        guard let s = scalar(n, expected: "a duration") else { return nil }
        guard let t = TimeSpan(parsing: s) else {
            let hint = Int(s) != nil ? " (add a unit: '\(s)s' or '\(s)ms')" : ""
            log.error(n.location, n.path, "expected a duration such as 500ms, 15s, 10m or 2h, got '\(s)'\(hint)")
            return nil
        }
        if let lo = min, t < lo {
            log.error(n.location, n.path, "\(t) is below the minimum of \(lo)"); return nil
        }
        if let hi = max, t > hi {
            log.error(n.location, n.path, "\(t) is above the maximum of \(hi)"); return nil
        }
        return t
    }

    mutating func bytes(_ m: YMap, _ key: String, required: Bool = false, min: ByteCount? = nil) -> ByteCount? {
        guard let n = present(m, key, required: required), let s = scalar(n, expected: "a size") else { return nil }
        guard let b = ByteCount(parsing: s) else {
            log.error(n.location, n.path, "expected a size such as 4096, 512KiB, 64MiB or 20MB, got '\(s)'")
            return nil
        }
        if let lo = min, b < lo {
            log.error(n.location, n.path, "\(b) is below the minimum of \(lo)"); return nil
        }
        return b
    }

    /// One of a fixed set of words, with a suggestion when misspelt.
    mutating func word<E: RawRepresentable & CaseIterable>(_ n: YNode, as: E.Type) -> E? where E.RawValue == String {
        guard let s = scalar(n, expected: "one of \(Self.choices(E.self))") else { return nil }
        if let v = E(rawValue: s) ?? E(rawValue: s.lowercased()) { return v }
        let all = E.allCases.map(\.rawValue)
        log.error(n.location, n.path, "'\(s)' is not one of \(Self.choices(E.self))\(Suggestion.hint(for: s, in: all))")
        return nil
    }

    mutating func word<E: RawRepresentable & CaseIterable>(
        _ m: YMap, _ key: String, as t: E.Type,
        required: Bool = false
    ) -> E? where E.RawValue == String {
        guard let n = m[key] else {
            if required && !m.misspelt.contains(key) {
                let path = m.base.path.isEmpty ? key : "\(m.base.path).\(key)"
                log.error(m.base.location, path, "missing required field '\(key)' (one of \(Self.choices(E.self)))")
            }
            return nil
        }
        return word(n, as: t)
    }

    static func choices<E: RawRepresentable & CaseIterable>(_: E.Type) -> String where E.RawValue == String {
        E.allCases.map(\.rawValue).joined(separator: ", ")
    }
}

/// Naming rules shared by the parser and the condition language.
public enum NameRules {
    /// Names of buses, devices, templates and alarms: `[A-Za-z0-9][A-Za-z0-9_-]*`.
    /// Tag names (`identifier`): `[A-Za-z_][A-Za-z0-9_]*`, so that conditions can name them.
    public static func isValid(_ s: String, identifier: Bool) -> Bool {
        guard let first = s.unicodeScalars.first, s.count <= 64 else { return false }
        func isAlnum(_ c: Unicode.Scalar) -> Bool { c.isASCII && (CharacterSet.alphanumerics.contains(c)) }
        if identifier {
            guard isAlnum(first) && !("0"..."9").contains(first) || first == "_" else { return false }
            return s.unicodeScalars.allSatisfy { isAlnum($0) || $0 == "_" }
        }
        guard isAlnum(first) else { return false }
        return s.unicodeScalars.allSatisfy { isAlnum($0) || $0 == "_" || $0 == "-" }
    }
}
