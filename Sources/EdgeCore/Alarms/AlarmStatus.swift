/// One line of `edgectl alarms`: an alarm that is raised, awaits acknowledgement, or is held
/// (shelved, suppressed, out of service).
public struct AlarmStatus: Sendable, Codable, Equatable {
    /// Where the alarm stands in the ISA-18.2 state model.
    public enum State: String, Sendable, Codable, CaseIterable {
        /// Raised and its condition holds.
        case active
        /// Raised, its condition is gone, and it waits for acknowledgement (latching alarms).
        case latched
        /// Cleared before anyone acknowledged it.
        case returnedUnacknowledged = "returned-unacknowledged"
        /// Not raised (listed only because it is shelved, suppressed or out of service).
        case normal
    }

    /// The alarm id (`rpc-1-tubing.hh`).
    public var id: AlarmID
    /// The rule's name.
    public var alarm: String
    public var kind: AlarmRule.Kind
    public var device: String
    public var tag: String?
    public var level: LimitSet.Level?
    public var priority: AlarmPriority
    public var state: State
    /// Whether its condition holds now (shelved and out-of-service alarms keep being tracked).
    public var conditionActive: Bool
    public var acknowledged: Bool
    public var acknowledgedBy: String?
    /// When it was last raised (wall-clock milliseconds).
    public var raisedAt: Int64?
    /// The tag's last good value.
    public var value: Double?
    /// The setpoint (limit) or allowed change (rate).
    public var limit: Double?
    /// Why it was last raised or cleared.
    public var reason: String
    public var shelvedUntil: Int64?
    public var shelvedBy: String?
    public var suppressed: Bool
    public var outOfService: Bool
    /// The rule's description from the configuration.
    public var description: String?
}

extension AlarmEngine {
    /// Alarms that are raised, await acknowledgement, or are shelved, suppressed or out of service, for
    /// `edgectl alarms`: the highest priority first, then the most recently raised.
    public var active: [AlarmStatus] {
        points.indices.compactMap { i -> AlarmStatus? in
            let r = points[i].record
            guard r.raised || !r.acknowledged || r.shelvedUntil != nil || r.suppressed || r.outOfService else {
                return nil
            }
            let rule = rules[points[i].rule]
            let state: AlarmStatus.State
            if r.raised {
                state = points[i].phase.settledActive || !rule.latching ? .active : .latched
            } else {
                state = r.acknowledged ? .normal : .returnedUnacknowledged
            }
            return AlarmStatus(
                id: r.id, alarm: r.alarm, kind: r.kind, device: r.device, tag: r.tag, level: r.level,
                priority: r.priority, state: state, conditionActive: points[i].phase.settledActive,
                acknowledged: r.acknowledged, acknowledgedBy: r.acknowledgedBy, raisedAt: r.raisedAt,
                value: currentValue(i), limit: r.limit, reason: r.reason, shelvedUntil: r.shelvedUntil,
                shelvedBy: r.shelvedBy, suppressed: r.suppressed, outOfService: r.outOfService,
                description: rule.description)
        }.sorted { a, b in
            if a.priority != b.priority { return a.priority < b.priority }
            let ta = a.raisedAt ?? .min, tb = b.raisedAt ?? .min
            return ta != tb ? ta > tb : a.id < b.id
        }
    }
}
