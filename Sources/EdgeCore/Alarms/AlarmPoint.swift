/// What one observation says about an alarm's process condition.
enum AlarmSignal: Sendable, Equatable {
    /// The condition holds (value ≥ H setpoint, value in an alarm state, no good reading for `after`, …).
    case abnormal
    /// The condition is gone (for a limit: the value is back past setpoint ∓ deadband).
    case normal
    /// Inside a limit's deadband: keeps an active alarm active and does not start a raise.
    case inDeadband
}

/// The debounced process condition of one alarm: on- and off-delays as a small state machine.
///
/// A delay completes only if no contrary observation arrives before it runs out; observations are
/// good readings (bad ones are not fed) or, for stale and comm-loss alarms, the passing of time.
enum ConditionPhase: Sendable, Equatable {
    case normal
    /// The condition holds since `since`, not yet for the on-delay.
    case pendingOn(since: Int64)
    case active
    /// The condition is gone since `since`, not yet for the off-delay.
    case pendingOff(since: Int64)

    /// Whether the condition counts as holding: active, or still within its off-delay.
    var settledActive: Bool {
        switch self {
        case .active, .pendingOff: true
        case .normal, .pendingOn: false
        }
    }

    /// The phase with any pending delay abandoned.
    var settled: ConditionPhase { settledActive ? .active : .normal }

    /// Takes in one observation at `now`, then lets delays that ran out complete.
    mutating func observe(_ signal: AlarmSignal, now: Int64, onDelay: Int64, offDelay: Int64) {
        switch (self, signal) {
        case (.normal, .abnormal): self = .pendingOn(since: now)
        case (.pendingOn, .normal), (.pendingOn, .inDeadband): self = .normal
        case (.active, .normal): self = .pendingOff(since: now)
        case (.pendingOff, .abnormal), (.pendingOff, .inDeadband): self = .active
        default: break
        }
        elapse(now: now, onDelay: onDelay, offDelay: offDelay)
    }

    /// Completes an on- or off-delay that ran out by `now`.
    mutating func elapse(now: Int64, onDelay: Int64, offDelay: Int64) {
        switch self {
        case .pendingOn(let since) where now - since >= onDelay: self = .active
        case .pendingOff(let since) where now - since >= offDelay: self = .normal
        default: break
        }
    }
}

/// One annunciated alarm inside the engine: a rule, or one level of a limit rule.
struct AlarmPoint: Sendable {
    /// Index of the rule in `AlarmEngine.rules`.
    let rule: Int
    let onDelay: Int64
    let offDelay: Int64
    /// The limit of a limit alarm's level.
    let limit: AlarmLimit?
    var phase: ConditionPhase = .normal
    /// The durable part; its naming fields never change after init.
    var record: AlarmRecord

    var id: AlarmID { record.id }
    var isShelved: Bool { record.shelvedUntil != nil }

    init(rule: AlarmRule, index: Int, level: LimitSet.Level?) {
        self.rule = index
        let limit = level.flatMap { rule.limits?[$0] }
        self.limit = limit
        self.onDelay = (limit?.onDelay ?? rule.onDelay).milliseconds
        self.offDelay = (limit?.offDelay ?? rule.offDelay).milliseconds
        let id = AlarmID(rule: rule.name, level: level)
        self.record = AlarmRecord(
            id: id, alarm: rule.name, kind: rule.kind, device: rule.device, tag: rule.tag, level: level,
            priority: limit?.priority ?? rule.priority, limit: limit?.setpoint ?? rule.rate?.change)
    }

    /// An event about this alarm, with its naming fields filled in.
    func event(
        _ transition: AlarmEvent.Transition, value: Double?, reason: String, now: Int64,
        by: String? = nil, shelvedUntil: Int64? = nil
    ) -> AlarmEvent {
        AlarmEvent(
            id: record.id, alarm: record.alarm, kind: record.kind, device: record.device, tag: record.tag,
            level: record.level, transition: transition, priority: record.priority, value: value,
            limit: record.limit, reason: reason, wallMillis: now, by: by, shelvedUntil: shelvedUntil)
    }
}

/// A device and one of its tags.
struct TagKey: Sendable, Hashable {
    var device: String
    var tag: String
}

/// A value and when it was read (wall-clock milliseconds).
struct Sample: Sendable, Equatable {
    var at: Int64
    var value: Double
}

extension AlarmRule.Kind {
    /// Whether the alarm watches a tag's value, and so is frozen while its device is offline.
    var watchesValue: Bool { self != .commLoss && self != .deviceAlarm }
}
