import Yams

/// Yams refuses a document whose mapping repeats a key, and stops there. To report the repetition where it
/// is written — with its field path — and still check the rest of the file, the loader renames each repeated
/// key to a sentinel and composes again; the reader turns sentinels back into "duplicate key" errors.
enum DuplicateKeys {
    private static let prefix = "__edged_duplicate_"

    /// The key a sentinel stands for, and the line where the key was first given.
    static func original(of key: String) -> (key: String, firstLine: Int)? {
        guard key.hasPrefix(prefix) else { return nil }
        let parts = key.dropFirst(prefix.count).split(separator: "_", maxSplits: 1)
        guard parts.count == 2, let line = Int(parts[0]) else { return nil }
        return (String(parts[1]), line)
    }

    /// Rewrites the second occurrence of `key` (first given at `first`) as a sentinel; nil when it cannot be found.
    static func rename(_ key: String, first: Mark, in text: String) -> String? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard first.line >= 1, first.line <= lines.count else { return nil }
        guard let (line, column) = secondOccurrence(of: key, after: first, lines: lines) else { return nil }
        var chars = Array(lines[line - 1].unicodeScalars)
        let start = column - 1
        let quoted = chars[start] == "\"" || chars[start] == "'"
        let length = key.unicodeScalars.count + (quoted ? 2 : 0)
        let sentinel = "\(prefix)\(first.line)_\(key)"
        chars.replaceSubrange(start..<(start + length), with: sentinel.unicodeScalars)
        lines[line - 1] = String(String.UnicodeScalarView(chars))
        return lines.joined(separator: "\n")
    }

    /// The next `key:` in the same mapping: the same column on a later line (block style), or the same
    /// flow nesting depth (flow style, `{a: 1, a: 2}`).
    static func secondOccurrence(of key: String, after first: Mark, lines: [String]) -> (Int, Int)? {
        let patterns = [key, "\"\(key)\"", "'\(key)'"]
        var depth = 0
        var inFlow = false
        for li in (first.line - 1)..<lines.count {
            let chars = Array(lines[li].unicodeScalars)
            let startCol = li == first.line - 1 ? first.column - 1 + key.unicodeScalars.count : 0
            if li == first.line - 1 {
                let before = chars[..<min(first.column - 1, chars.count)]
                inFlow = before.contains("{")
            }
            if !inFlow, li > first.line - 1 {
                // Block style: a key at the first key's column.
                let indent = chars.prefix { $0 == " " }.count
                if indent == first.column - 1 {
                    let rest = String(String.UnicodeScalarView(chars[indent...]))
                    if patterns.contains(where: { rest.hasPrefix($0 + ":") || rest.hasPrefix($0 + " :") }) {
                        return (li + 1, first.column)
                    }
                }
                continue
            }
            guard inFlow else { continue }
            var i = startCol
            while i < chars.count {
                let c = chars[i]
                if c == "{" || c == "[" {
                    depth += 1
                } else if c == "}" || c == "]" {
                    depth -= 1
                    if depth < 0 { return nil }
                } else if depth == 0, c == "," || c == " " {
                    var j = i + 1
                    while j < chars.count, chars[j] == " " { j += 1 }
                    let rest = String(String.UnicodeScalarView(chars[min(j, chars.count)...]))
                    if patterns.contains(where: { rest.hasPrefix($0 + ":") }) { return (li + 1, j + 1) }
                }
                i += 1
            }
        }
        return nil
    }
}
