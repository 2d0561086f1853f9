// Codable forms that read like the YAML a person writes, for `edgectl config show` and the control socket.

extension Deadband {
    /// `0.5` or `"1%"`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Double.self) { self = .absolute(v); return }
        let s = try c.decode(String.self)
        guard s.hasSuffix("%"), let p = Double(s.dropLast()) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a deadband: \(s)"))
        }
        self = .percentOfSpan(p)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .absolute(let v): try c.encode(v)
        case .percentOfSpan(let p): try c.encode("\(p)%")
        }
    }
}

extension TokenSource {
    private enum Keys: String, CodingKey { case file, credential }
    /// `{file: PATH}` or `{credential: NAME}`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        if let f = try c.decodeIfPresent(String.self, forKey: .file) { self = .file(f); return }
        self = .credential(try c.decode(String.self, forKey: .credential))
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .file(let f): try c.encode(f, forKey: .file)
        case .credential(let n): try c.encode(n, forKey: .credential)
        }
    }
}

extension Span {
    private enum Keys: String, CodingKey { case raw, eng }
    /// `{raw: [0, 65534], eng: [0, 240]}`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let raw = try c.decode([Double].self, forKey: .raw), eng = try c.decode([Double].self, forKey: .eng)
        guard raw.count == 2, eng.count == 2 else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "span needs [low, high] pairs"))
        }
        self.init(rawLow: raw[0], rawHigh: raw[1], engLow: eng[0], engHigh: eng[1])
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode([rawLow, rawHigh], forKey: .raw)
        try c.encode([engLow, engHigh], forKey: .eng)
    }
}

extension EdgeConfig {
    /// The configuration with anything secret-bearing masked: proxy credentials. (The token is never in the
    /// config, only where to find it.)
    public func redacted() -> EdgeConfig {
        var c = self
        if let p = c.uplink.proxy, let at = p.firstIndex(of: "@"), let scheme = p.range(of: "://") {
            c.uplink.proxy = p[..<scheme.upperBound] + "***@" + p[p.index(after: at)...]
        }
        return c
    }
}

extension TagValue {
    /// A plain JSON number or string.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Double.self) { self = .number(n); return }
        self = .text(try c.decode(String.self))
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .number(let n): try c.encode(n)
        case .text(let t): try c.encode(t)
        }
    }
}
