/// Alarm priority, as ISA-18.2 ranks them.
public enum AlarmPriority: String, Sendable, Codable, CaseIterable, Comparable {
    case critical, high, medium, low
    private var rank: Int { [.critical: 0, .high: 1, .medium: 2, .low: 3][self]! }
    public static func < (a: AlarmPriority, b: AlarmPriority) -> Bool { a.rank < b.rank }
}

/// One analog limit (HH, H, L or LL) with its own deadband and delays.
public struct AlarmLimit: Sendable, Equatable, Codable {
    public var setpoint: Double
    public var priority: AlarmPriority
    /// The value must come back past setpoint ∓ deadband to clear.
    public var deadband: Double
    /// The condition must hold this long before the alarm activates.
    public var onDelay: TimeSpan
    /// The condition must be gone this long before the alarm clears.
    public var offDelay: TimeSpan
}

/// The four analog limits of one tag; any of them may be absent.
public struct LimitSet: Sendable, Equatable, Codable {
    public var hh: AlarmLimit?
    public var h: AlarmLimit?
    public var l: AlarmLimit?
    public var ll: AlarmLimit?
    public enum Level: String, Sendable, Codable, CaseIterable { case hh, h, l, ll }
    public subscript(level: Level) -> AlarmLimit? {
        get {
            switch level {
            case .hh: hh;
            case .h: h;
            case .l: l;
            case .ll: ll
            }
        }
        set {
            switch level {
            case .hh: hh = newValue;
            case .h: h = newValue;
            case .l: l = newValue;
            case .ll: ll = newValue
            }
        }
    }
}

/// A rate-of-change limit: the value moved more than `change` within `per`.
public struct RateLimit: Sendable, Equatable, Codable {
    public enum Direction: String, Sendable, Codable, CaseIterable { case rise, fall, either }
    public var change: Double
    public var per: TimeSpan
    public var direction: Direction
}

/// One configured alarm: what it watches, when it is active, and how it is prioritised.
public struct AlarmRule: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// HH/H/L/LL analog limits.
        case limit
        /// Rate of change.
        case rate
        /// Enumerated states or bits (run status, fault codes).
        case state
        /// No good reading for a while.
        case stale
        /// The device stopped answering.
        case commLoss = "comm-loss"
        /// A flow computer's own alarm, from its event log (set and cleared records for a register).
        case deviceAlarm = "device-alarm"
    }
    public var name: String
    public var kind: Kind
    public var device: String
    /// The watched tag; nil for comm-loss.
    public var tag: String?
    public var limits: LimitSet?
    public var rate: RateLimit?
    /// Values that are abnormal (state alarms).
    public var alarmStates: [Double]?
    /// Abnormal states named as the tag's `states` name them; the validator resolves them into `alarmStates`.
    public var alarmStateNames: [String]
    /// Stale and comm-loss: how long before the alarm activates.
    public var after: TimeSpan?
    public var priority: AlarmPriority
    public var latching: Bool
    public var onDelay: TimeSpan
    public var offDelay: TimeSpan
    /// While this holds the alarm is suppressed (neither raised nor cleared).
    public var suppressWhen: ConditionExpression?
    public var description: String?
    /// Device alarms: the register the flow computer's alarm records name, and (optionally) the limit.
    public var register: Int? = nil
    public var deviceLimit: EventRecord.Limit? = nil
}
