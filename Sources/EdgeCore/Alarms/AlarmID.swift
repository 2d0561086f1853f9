/// The one identity of an alarm, the same in the engine, the buffer's alarm records, the snapshot, the
/// status replies and the uplink's system alarms.
///
/// A rule of kind rate, state, stale or comm-loss is one alarm named by the rule (`rpc-1-comm`); a limit
/// rule is one alarm per configured level (`rpc-1-tubing.hh`). A system alarm (`uplink-unauthorized`,
/// `buffer-not-stored`) is named by itself. Rule names cannot contain a dot, so ids never collide.
///
/// It is written as that one string wherever it is encoded (JSON, dictionary keys), so the snapshot, the
/// control protocol and the sync protocol keep their formats.
public struct AlarmID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The rule's (or system alarm's) name.
    public var rule: String
    /// The limit level, for limit alarms.
    public var level: LimitSet.Level?

    public init(rule: String, level: LimitSet.Level? = nil) {
        self.rule = rule
        self.level = level
    }

    /// Reads `rule` or `rule.level`; nil when the part after the dot is not a level.
    public init?(parsing text: String) {
        guard let dot = text.lastIndex(of: ".") else {
            self.init(rule: text)
            return
        }
        guard let level = LimitSet.Level(rawValue: String(text[text.index(after: dot)...])) else { return nil }
        self.init(rule: String(text[..<dot]), level: level)
    }

    public var description: String { level.map { "\(rule).\($0.rawValue)" } ?? rule }

    public static func < (a: AlarmID, b: AlarmID) -> Bool { a.description < b.description }
}

extension AlarmID: Codable, CodingKeyRepresentable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = AlarmID(parsing: text) else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "not an alarm id: \(text)"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public var codingKey: any CodingKey { AnyKey(stringValue: description) }

    public init?<T: CodingKey>(codingKey: T) { self.init(parsing: codingKey.stringValue) }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// `"rpc-1-tubing.hh"` in code and tests, read as `AlarmID(_:)` reads it.
extension AlarmID: ExpressibleByStringLiteral {
    public init(stringLiteral text: String) {
        self = AlarmID(parsing: text) ?? AlarmID(rule: text)
    }
}
