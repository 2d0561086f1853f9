import Foundation

/// A length of time as people write it in a config file (`500ms`, `15s`, `2h`, `30d`), kept in milliseconds.
public struct TimeSpan: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Whole milliseconds.
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public static func seconds(_ s: Int64) -> TimeSpan { TimeSpan(milliseconds: s * 1000) }
    public static func minutes(_ m: Int64) -> TimeSpan { .seconds(m * 60) }
    public static func hours(_ h: Int64) -> TimeSpan { .minutes(h * 60) }

    public var seconds: Double { Double(milliseconds) / 1000 }
    public var duration: Duration { .milliseconds(milliseconds) }

    private static let units: [(suffix: String, ms: Int64)] = [
        ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)
    ]

    /// Parses `250ms`, `1.5s`, `10m`, `2h`, `30d`, and compounds such as `1m30s`.
    /// Returns nil for anything else (a bare number has no unit and is refused).
    public init?(parsing text: String) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { return nil }
        var total = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let suffix = rest.prefix { $0.isLetter }
            guard let unit = Self.units.first(where: { $0.suffix == suffix.lowercased() }) else { return nil }
            rest = rest.dropFirst(suffix.count)
            total += value * Double(unit.ms)
        }
        guard total.isFinite, total < 1e15 else { return nil }
        self.milliseconds = Int64(total.rounded())
    }

    /// The shortest exact rendering: `1h30m`, `500ms`, `1s500ms`, `0s`.
    public var description: String {
        if milliseconds == 0 { return "0s" }
        var rest = milliseconds.magnitude
        var out = milliseconds < 0 ? "-" : ""
        for unit in Self.units.reversed() {
            let n = rest / UInt64(unit.ms)
            if n > 0 { out += "\(n)\(unit.suffix)" }
            rest %= UInt64(unit.ms)
        }
        return out
    }

    public static func < (a: TimeSpan, b: TimeSpan) -> Bool { a.milliseconds < b.milliseconds }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let v = TimeSpan(parsing: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a duration: \(text)"))
        }
        self = v
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A size in bytes as people write it (`64MiB`, `20MB`, `512KiB`, `4096`).
public struct ByteCount: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var bytes: Int64
    public init(bytes: Int64) { self.bytes = bytes }

    private static let units: [(suffix: String, factor: Int64)] = [
        ("b", 1), ("kb", 1000), ("mb", 1_000_000), ("gb", 1_000_000_000),
        ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30)
    ]

    /// Parses a plain byte count or a number with a decimal (kB, MB, GB) or binary (KiB, MiB, GiB) unit.
    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let number = trimmed.prefix { $0.isNumber || $0 == "." }
        guard !number.isEmpty, let value = Double(number) else { return nil }
        let suffix = trimmed.dropFirst(number.count).trimmingCharacters(in: .whitespaces).lowercased()
        let factor: Int64
        if suffix.isEmpty {
            factor = 1
        } else {
            guard let unit = Self.units.first(where: { $0.suffix == suffix }) else { return nil }
            factor = unit.factor
        }
        let total = value * Double(factor)
        guard total.isFinite, total < 9e18 else { return nil }
        self.bytes = Int64(total.rounded())
    }

    /// Binary units when exact (`64MiB`), else plain bytes.
    public var description: String {
        for (suffix, factor) in [("GiB", Int64(1) << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        where bytes >= factor && bytes % factor == 0 {
            return "\(bytes / factor)\(suffix)"
        }
        for (suffix, factor) in [("GB", Int64(1_000_000_000)), ("MB", 1_000_000), ("kB", 1000)]
        where bytes >= factor && bytes % factor == 0 {
            return "\(bytes / factor)\(suffix)"
        }
        return "\(bytes)"
    }

    public static func < (a: ByteCount, b: ByteCount) -> Bool { a.bytes < b.bytes }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int64.self) { self.bytes = n; return }
        let text = try c.decode(String.self)
        guard let v = ByteCount(parsing: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a size: \(text)"))
        }
        self = v
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
