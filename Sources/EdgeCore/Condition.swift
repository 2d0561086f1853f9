/// A reference to a tag in a condition: `run_status` (same device) or `rpc-1.run_status`.
public struct TagRef: Sendable, Hashable, Codable, CustomStringConvertible {
    public var device: String?
    public var tag: String
    public var description: String { device.map { "\($0).\(tag)" } ?? tag }
}

/// A boolean condition over tag values, used for alarm suppression.
///
/// Grammar: `expr := and ('or' and)*; and := unary ('and' unary)*; unary := 'not' unary | '(' expr ')' | cmp;`
/// `cmp := ref op literal` with `op` one of `== != < <= > >=` and `literal` a number, `true`, `false`
/// or a state name of the referenced tag.
public indirect enum Condition: Sendable, Equatable {
    public enum Operator: String, Sendable, CaseIterable {
        case eq = "==", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">="
    }
    public enum Literal: Sendable, Equatable {
        case number(Double)
        case bool(Bool)
        /// A state name, resolved against the tag's `states` during validation.
        case state(String)
    }
    case compare(TagRef, Operator, Literal)
    case and(Condition, Condition)
    case or(Condition, Condition)
    case not(Condition)

    /// Every tag the condition reads.
    public var references: [TagRef] {
        switch self {
        case .compare(let r, _, _): [r]
        case .and(let a, let b), .or(let a, let b): a.references + b.references
        case .not(let a): a.references
        }
    }

    /// Every comparison in the condition, with the tag it reads.
    public var comparisons: [(TagRef, Operator, Literal)] {
        switch self {
        case .compare(let r, let o, let l): [(r, o, l)]
        case .and(let a, let b), .or(let a, let b): a.comparisons + b.comparisons
        case .not(let a): a.comparisons
        }
    }

    /// Evaluates against current values; nil when a value it needs is unknown.
    public func evaluate(_ value: (TagRef) -> Double?, state: (TagRef, String) -> Double?) -> Bool? {
        switch self {
        case .compare(let ref, let op, let lit):
            guard let v = value(ref) else { return nil }
            let rhs: Double
            switch lit {
            case .number(let n): rhs = n
            case .bool(let b): rhs = b ? 1 : 0
            case .state(let s): guard let n = state(ref, s) else { return nil }; rhs = n
            }
            switch op {
            case .eq: return v == rhs
            case .ne: return v != rhs
            case .lt: return v < rhs
            case .le: return v <= rhs
            case .gt: return v > rhs
            case .ge: return v >= rhs
            }
        case .and(let a, let b):
            let l = a.evaluate(value, state: state), r = b.evaluate(value, state: state)
            if l == false || r == false { return false }
            return (l == nil || r == nil) ? nil : true
        case .or(let a, let b):
            let l = a.evaluate(value, state: state), r = b.evaluate(value, state: state)
            if l == true || r == true { return true }
            return (l == nil || r == nil) ? nil : false
        case .not(let a):
            return a.evaluate(value, state: state).map { !$0 }
        }
    }
}

/// A condition with the text it was written as; encodes as that text.
public struct ConditionExpression: Sendable, Equatable, Codable, CustomStringConvertible {
    public var source: String
    public var condition: Condition

    public init(source: String, condition: Condition) { self.source = source; self.condition = condition }
    public init(parsing source: String) throws(ConditionSyntaxError) {
        self.source = source
        var parser = ConditionParser(source)
        self.condition = try parser.parse()
    }
    public var description: String { source }
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(source)
    }
}

/// Why a condition does not parse, and at which character (1-based).
public struct ConditionSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var message: String
    public var description: String { "\(message) at character \(offset)" }
}

/// Recursive-descent parser for `Condition`.
struct ConditionParser {
    private enum Token: Equatable {
        case word(String), number(Double), op(Condition.Operator), lparen, rparen, end
    }
    private var tokens: [(Token, Int)] = []
    private var index = 0
    private let text: String
    /// Parentheses and `not`s open now, and `and`/`or`s so far: conditions are parsed, evaluated and encoded
    /// recursively, so their depth and size are bounded (make fuzz found a stack overflow at a few thousand
    /// '(' — a file a field tech could save by accident would crash edgectl and edged).
    private var depth = 0
    private var operators = 0
    static let maxDepth = 32
    static let maxOperators = 64

    init(_ text: String) { self.text = text }

    mutating func parse() throws(ConditionSyntaxError) -> Condition {
        tokens = try Self.tokenize(text)
        let c = try parseOr()
        guard case .end = tokens[index].0 else { throw fail("expected 'and', 'or' or the end") }
        return c
    }

    private func fail(_ message: String) -> ConditionSyntaxError {
        ConditionSyntaxError(offset: tokens[index].1, message: message)
    }

    private mutating func parseOr() throws(ConditionSyntaxError) -> Condition {
        var lhs = try parseAnd()
        while tokens[index].0 == .word("or") {
            try countOperator()
            index += 1
            lhs = .or(lhs, try parseAnd())
        }
        return lhs
    }
    private mutating func parseAnd() throws(ConditionSyntaxError) -> Condition {
        var lhs = try parseUnary()
        while tokens[index].0 == .word("and") {
            try countOperator()
            index += 1
            lhs = .and(lhs, try parseUnary())
        }
        return lhs
    }
    private mutating func countOperator() throws(ConditionSyntaxError) {
        operators += 1
        guard operators <= Self.maxOperators else {
            throw fail("more than \(Self.maxOperators) 'and'/'or' in one condition; split it over several alarms")
        }
    }
    private mutating func parseUnary() throws(ConditionSyntaxError) -> Condition {
        switch tokens[index].0 {
        case .word("not"), .lparen:
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else {
                throw fail("nested deeper than \(Self.maxDepth) parentheses or 'not's")
            }
            if tokens[index].0 == .word("not") {
                index += 1
                return .not(try parseUnary())
            }
            index += 1
            let inner = try parseOr()
            guard tokens[index].0 == .rparen else { throw fail("expected ')'") }
            index += 1
            return inner
        case .word(let w) where !["and", "or"].contains(w):
            index += 1
            let ref = try Self.reference(w, at: tokens[index - 1].1)
            guard case .op(let op) = tokens[index].0 else {
                throw fail("expected a comparison (==, !=, <, <=, >, >=) after '\(w)'")
            }
            index += 1
            let lit: Condition.Literal
            switch tokens[index].0 {
            case .number(let n): lit = .number(n)
            case .word("true"): lit = .bool(true)
            case .word("false"): lit = .bool(false)
            case .word(let s) where !s.contains(".") && !["and", "or", "not"].contains(s): lit = .state(s)
            default: throw fail("expected a number, true, false or a state name")
            }
            index += 1
            return .compare(ref, op, lit)
        default:
            throw fail("expected a tag name, 'not' or '('")
        }
    }

    private static func reference(_ w: String, at offset: Int) throws(ConditionSyntaxError) -> TagRef {
        let parts = w.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        switch parts.count {
        case 1 where NameRules.isValid(parts[0], identifier: true):
            return TagRef(device: nil, tag: parts[0])
        case 2 where NameRules.isValid(parts[0], identifier: false) && NameRules.isValid(parts[1], identifier: true):
            return TagRef(device: parts[0], tag: parts[1])
        default:
            throw ConditionSyntaxError(offset: offset, message: "'\(w)' is not a tag reference (tag or device.tag)")
        }
    }

    private static func tokenize(_ text: String) throws(ConditionSyntaxError) -> [(Token, Int)] {
        var out: [(Token, Int)] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            let start = i + 1
            if c == " " || c == "\t" { i += 1; continue }
            if c == "(" { out.append((.lparen, start)); i += 1; continue }
            if c == ")" { out.append((.rparen, start)); i += 1; continue }
            if "=!<>".contains(c) {
                var s = String(c)
                if i + 1 < chars.count, chars[i + 1] == "=" { s.append("="); i += 1 }
                i += 1
                guard let op = Condition.Operator(rawValue: s) else {
                    throw ConditionSyntaxError(
                        offset: start, message: "'\(s)' is not an operator (use ==, !=, <, <=, >, >=)")
                }
                out.append((.op(op), start)); continue
            }
            if c.isNumber || ((c == "-" || c == ".") && i + 1 < chars.count && chars[i + 1].isNumber) {
                var j = i + 1
                while j < chars.count, chars[j].isNumber || chars[j] == "." || chars[j] == "e" || chars[j] == "E" {
                    j += 1
                }
                guard let n = Double(String(chars[i..<j])) else {
                    throw ConditionSyntaxError(offset: start, message: "'\(String(chars[i..<j]))' is not a number")
                }
                out.append((.number(n), start)); i = j; continue
            }
            if c.isLetter || c == "_" {
                var j = i + 1
                while j < chars.count, chars[j].isLetter || chars[j].isNumber || "_-.".contains(chars[j]) { j += 1 }
                out.append((.word(String(chars[i..<j])), start)); i = j; continue
            }
            throw ConditionSyntaxError(offset: start, message: "unexpected '\(c)'")
        }
        out.append((.end, chars.count + 1))
        return out
    }
}
