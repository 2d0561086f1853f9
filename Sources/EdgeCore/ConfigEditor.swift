import Foundation
import Yams

/// Changes one value in a configuration's YAML text in place, keeping every comment and the layout: the
/// scalar at the path is located through the parser's marks and only its characters are replaced.
public enum ConfigEditor {
    public struct EditError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// `uplink.batch.maxAge`, `devices.rpc-1.poll` (a list item by its `name`), `buses[0].baud`.
    public static func set(_ keyPath: String, to value: String, in text: String) throws(EditError) -> String {
        guard let root = try? Yams.compose(yaml: text) else {
            throw EditError(description: "the file does not parse as YAML")
        }
        var node = root
        var walked: [String] = []
        for segment in segments(keyPath) {
            walked.append(segment)
            let here = walked.joined(separator: ".")
            if let seq = node.sequence {
                if segment.hasPrefix("["), let i = Int(segment.dropFirst().dropLast()), seq.indices.contains(i) {
                    node = seq[i]
                } else if let item = seq.first(where: { $0.mapping?["name"]?.scalar?.string == segment }) {
                    node = item
                } else {
                    let names = seq.compactMap { $0.mapping?["name"]?.scalar?.string }
                    throw EditError(
                        description:
                            "\(here): no list item named '\(segment)'\(names.isEmpty ? "" : " (items: \(names.joined(separator: ", ")))")"
                    )
                }
            } else if let map = node.mapping {
                guard let child = map[segment] else {
                    let keys = map.keys.compactMap { $0.scalar?.string }
                    throw EditError(
                        description:
                            "\(here): not set in this file\(Suggestion.hint(for: segment, in: keys)); add it with `edgectl config edit`"
                    )
                }
                node = child
            } else {
                throw EditError(
                    description: "\(here): \(walked.dropLast().joined(separator: ".")) is a single value, not a section"
                )
            }
        }
        guard let scalar = node.scalar, let mark = scalar.mark else {
            throw EditError(
                description: "\(keyPath) is a section or a list, not a single value; use `edgectl config edit`")
        }
        guard scalar.style == .plain || scalar.style == .singleQuoted || scalar.style == .doubleQuoted else {
            throw EditError(description: "\(keyPath) is a multi-line value; use `edgectl config edit`")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard mark.line >= 1, mark.line <= lines.count else { throw EditError(description: "cannot locate \(keyPath)") }
        var chars = Array(lines[mark.line - 1].unicodeScalars)
        let start = mark.column - 1
        let length = originalLength(scalar, chars: chars, start: start)
        guard start >= 0, start + length <= chars.count else {
            throw EditError(description: "cannot locate \(keyPath)")
        }
        chars.replaceSubrange(start..<(start + length), with: quoted(value).unicodeScalars)
        lines[mark.line - 1] = String(String.UnicodeScalarView(chars))
        return lines.joined(separator: "\n")
    }

    static func segments(_ path: String) -> [String] {
        var out: [String] = []
        for part in path.split(separator: ".") {
            var p = Substring(part)
            while let open = p.firstIndex(of: "[") {
                if open > p.startIndex { out.append(String(p[..<open])) }
                guard let close = p[open...].firstIndex(of: "]") else { break }
                out.append(String(p[open...close]))
                p = p[p.index(after: close)...]
            }
            if !p.isEmpty { out.append(String(p)) }
        }
        return out
    }

    /// How many characters the scalar takes on its line as written (quotes included).
    static func originalLength(_ s: Node.Scalar, chars: [Unicode.Scalar], start: Int) -> Int {
        switch s.style {
        case .singleQuoted, .doubleQuoted:
            let q = s.style == .singleQuoted ? "'" : "\""
            var i = start + 1
            while i < chars.count {
                if String(chars[i]) == q {
                    if s.style == .singleQuoted, i + 1 < chars.count, chars[i + 1] == "'" { i += 2; continue }
                    if s.style == .doubleQuoted, chars[i - 1] == "\\" { i += 1; continue }
                    return i - start + 1
                }
                i += 1
            }
            return chars.count - start
        default:
            return s.string.unicodeScalars.count
        }
    }

    /// The value as YAML: plain when that reads back as the same string, else double-quoted.
    static func quoted(_ v: String) -> String {
        let plainOK =
            !v.isEmpty && !v.contains(": ") && !v.contains(" #") && !"[]{},&*!|>'\"%@`#".contains(v.first!)
            && v.trimmingCharacters(in: .whitespaces) == v && !v.contains("\n")
        if plainOK { return v }
        return "\"" + v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
