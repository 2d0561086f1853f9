/// Why a reading is not good.
public enum BadCause: Sendable, Hashable, Codable, CustomStringConvertible {
    /// No (complete) response within the response timeout.
    case timeout
    /// The device answered with a Modbus exception code (02 = illegal data address, …).
    case exception(UInt8)
    /// CRC error, bad framing, wrong unit id or garbage on the line.
    case framing
    /// The link is down (connection refused, port gone).
    case link
    /// The registers arrived but do not make a usable value (NaN, infinity, raw value outside the span).
    case decode
    /// The device is offline; the value is not being read.
    case offline

    public var description: String {
        switch self {
        case .timeout: "timeout"
        case .exception(let c): "exception \(String(format: "%02X", c))"
        case .framing: "framing"
        case .link: "link"
        case .decode: "decode"
        case .offline: "offline"
        }
    }
}

/// Whether a reading can be trusted.
public enum Quality: Sendable, Hashable, Codable, CustomStringConvertible {
    case good
    case bad(BadCause)
    public var isGood: Bool { self == .good }
    public var description: String {
        switch self {
        case .good: "good"
        case .bad(let c): "bad(\(c))"
        }
    }
}

/// A decoded value: a number (booleans as 0/1) or text.
public enum TagValue: Sendable, Hashable, Codable, CustomStringConvertible {
    case number(Double)
    case text(String)
    public var number: Double? { if case .number(let v) = self { v } else { nil } }
    public var description: String {
        switch self {
        case .number(let v): v.rounded() == v && abs(v) < 1e15 ? String(Int64(v)) : String(v)
        case .text(let s): "\"\(s)\""
        }
    }
}

/// One tag's value at one transaction.
public struct Reading: Sendable, Hashable, Codable {
    public var device: String
    public var tag: String
    /// nil when the quality is bad.
    public var value: TagValue?
    public var quality: Quality
    /// UTC wall-clock time of the transaction, milliseconds since 1970.
    public var wallMillis: Int64
    /// Monotonic time of the transaction, nanoseconds (orders readings across clock jumps).
    public var monotonicNanos: UInt64
    /// Whether the system clock was NTP-synchronized when `wallMillis` was taken; false flags the time as
    /// possibly wrong (a box that booted without a network, a clock that jumped).
    public var clockSynchronized: Bool

    public init(
        device: String, tag: String, value: TagValue?, quality: Quality, wallMillis: Int64, monotonicNanos: UInt64,
        clockSynchronized: Bool = true
    ) {
        self.device = device; self.tag = tag; self.value = value; self.quality = quality
        self.wallMillis = wallMillis; self.monotonicNanos = monotonicNanos; self.clockSynchronized = clockSynchronized
    }
}
