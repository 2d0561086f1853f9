/// One transition of one alarm: what the buffer's alarm lane stores and the uplink's fast lane sends.
///
/// **Alarm ids.** A rule of kind rate, state, stale or comm-loss is one alarm whose id is the rule's
/// name (`rpc-1-comm`). A limit rule is one alarm per configured level, with the id
/// `<rule name>.<level>` and the level in lower case: `rpc-1-tubing.h`, `rpc-1-tubing.hh`,
/// `rpc-1-fillage.l`, `rpc-1-fillage.ll`. Rule names cannot contain a dot, so ids never collide.
/// Operator commands accept an id, or a limit rule's name to act on all of its levels.
public struct AlarmEvent: Sendable, Codable, Equatable {
    /// What happened to the alarm: the one transition enum of engine, buffer, snapshot and sync protocol.
    public typealias Transition = AlarmTransition

    /// The alarm id (see the type's documentation for the scheme).
    public var id: AlarmID
    /// The rule's name.
    public var alarm: String
    public var kind: AlarmRule.Kind
    public var device: String
    /// The watched tag; nil for comm-loss.
    public var tag: String?
    /// The limit level, for limit alarms.
    public var level: LimitSet.Level?
    public var transition: Transition
    public var priority: AlarmPriority
    /// The tag's value that caused the transition (limit, state), the observed change (rate), or the
    /// last good value (other transitions); nil when unknown.
    public var value: Double?
    /// The setpoint (limit) or the allowed change (rate).
    public var limit: Double?
    /// What a field technician reads: `tubing_pressure 612 psi ≥ HH 600`.
    public var reason: String
    /// UTC wall-clock time of the transition, milliseconds since 1970.
    public var wallMillis: Int64
    /// Who acknowledged, shelved, unshelved or changed service; nil for process transitions.
    public var by: String?
    /// For `shelved`: when the shelve expires (wall-clock milliseconds).
    public var shelvedUntil: Int64?

    public init(
        id: AlarmID, alarm: String, kind: AlarmRule.Kind, device: String, tag: String?, level: LimitSet.Level?,
        transition: Transition, priority: AlarmPriority, value: Double?, limit: Double?, reason: String,
        wallMillis: Int64, by: String? = nil, shelvedUntil: Int64? = nil
    ) {
        self.id = id; self.alarm = alarm; self.kind = kind; self.device = device; self.tag = tag; self.level = level
        self.transition = transition; self.priority = priority; self.value = value; self.limit = limit
        self.reason = reason; self.wallMillis = wallMillis; self.by = by; self.shelvedUntil = shelvedUntil
    }
}

extension AlarmEvent: CustomStringConvertible {
    /// One line for logs: `rpc-1-tubing.hh raised (critical): tubing_pressure 612 psi ≥ HH 600`.
    public var description: String { "\(id) \(transition.rawValue) (\(priority.rawValue)): \(reason)" }
}

extension LimitSet.Level {
    /// How far from normal the level is (H/L 1, HH/LL 2); used to order simultaneous transitions.
    var severity: Int { self == .hh || self == .ll ? 2 : 1 }
    /// Whether the level alarms on high values.
    var isHigh: Bool { self == .hh || self == .h }
    /// `HH`, `H`, `L`, `LL`.
    var label: String { rawValue.uppercased() }
}

extension [AlarmEvent] {
    /// Orders the raises and clears one rule produced at one instant as a value moving through its levels
    /// produces them: clears first, the most severe level first (HH before H), then raises, the least
    /// severe first (H before HH). Any other transition goes last, in its original order.
    func inLevelOrder() -> [AlarmEvent] {
        func key(_ e: AlarmEvent) -> Int {
            let s = e.level?.severity ?? 0
            switch e.transition {
            case .cleared: return 0 - s
            case .raised: return 10 + s
            default: return 20
            }
        }
        return enumerated().sorted { (key($0.element), $0.offset) < (key($1.element), $1.offset) }.map(\.element)
    }
}
