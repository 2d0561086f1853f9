/// The well pad's local alarm engine (ISA-18.2): a pure value-type state machine.
///
/// The daemon feeds it readings, device comm changes, the passing of time and operator commands; each
/// call returns the alarm transitions it caused, in order, for the buffer's alarm lane. Time is
/// injected as UTC wall-clock milliseconds: event timestamps are the `now` of the call that caused them,
/// and delays are measured between the `now`s of successive calls (not the readings' own timestamps).
///
/// Semantics, per alarm (see `AlarmEvent` for alarm ids):
/// - **Limit** (each of HH/H/L/LL its own alarm with its own priority): the condition holds when the
///   value is ≥ setpoint (H, HH) or ≤ setpoint (L, LL) and is gone when the value is back past setpoint
///   ∓ deadband; in between it keeps its state. A value jumping past HH raises H and HH together (H
///   first), as the operator should see both levels; falling back clears HH before H.
/// - **Rate**: the value moved more than `change` within the last `per` (rise: now − lowest sample of
///   the window; fall: highest sample − now; either: the larger).
/// - **State**: the value is one of `alarmStates` (bools and bits as 0/1).
/// - **Stale**: no good reading of the tag for `after` (counted from the engine's start and from the
///   device's return online, too); only a good reading clears it.
/// - **Comm loss**: the device offline for `after` (0: at once); cleared when it is back online. A good
///   reading from an offline device counts as it being back online.
/// - On-delay: the condition must hold on every good reading for `onDelay` before the alarm raises;
///   off-delay likewise before it clears. A bad-quality reading neither raises nor clears nor restarts
///   a delay: the last good value stands (a flaky link must not hide a real alarm).
/// - **Latching**: a latching alarm stays raised after its condition is gone until acknowledged; the
///   acknowledgement then clears it. Acknowledged while the condition still holds, it clears when the
///   condition goes. Acknowledging a non-latching alarm only marks it acknowledged. A non-latching alarm
///   that clears before acknowledgement stays listed as returned-unacknowledged until acknowledged.
/// - **Frozen**: while its device is offline, or while its `suppressWhen` holds, an alarm is neither
///   raised nor cleared, and pending delays are abandoned. When the suppression lifts the alarm is
///   re-evaluated from the last good value, delays starting then; after an outage, from the next reading.
///   A `suppressWhen` that cannot be evaluated (a value never read) counts as not holding; last good
///   values are kept per device and tag, also across a device's outage.
/// - **Shelved / out of service**: the condition keeps being tracked, but the alarm is neither raised
///   nor cleared; on unshelve (or shelve expiry) and return to service it is reconciled at once.
public struct AlarmEngine: Sendable {
    /// The longest shelve an operator may ask for (ISA-18.2: shelving is always bounded in time).
    public static let maxShelve = TimeSpan.hours(24)

    /// The rules the engine runs, as given to `init`.
    public let rules: [AlarmRule]
    let tagDefinitions: [TagKey: TagDefinition]
    var points: [AlarmPoint] = []
    /// The points of each rule, by rule index.
    let pointsOfRule: [[Int]]
    /// Point index by alarm id.
    let index: [AlarmID: Int]
    /// Tags the rules read: watched tags and those their conditions refer to.
    let watched: Set<TagKey>
    /// Last good numeric value per watched tag.
    var lastGood: [TagKey: Sample] = [:]
    /// Time of the last good reading (of any type) per watched tag.
    var freshAt: [TagKey: Int64] = [:]
    var offlineSince: [String: Int64] = [:]
    /// When each device last came back online.
    var onlineSince: [String: Int64] = [:]
    /// Recent good values of each rate rule's tag, by rule index.
    var rateSamples: [Int: [Sample]] = [:]
    var healthLog = AlarmHealthLog()
    /// The last set or cleared record of each device-alarm rule's register, by rule index.
    var deviceAlarms: [Int: DeviceAlarmState] = [:]

    /// A flow computer's alarm record, as a device-alarm rule keeps it.
    struct DeviceAlarmState: Sendable, Equatable {
        var set: Bool
        var register: Int
        var limits: [EventRecord.Limit]
        var value: Double
        var deviceTime: String
    }
    /// The `now` given to `init`.
    let startedAt: Int64

    /// An engine for `rules`; `tags` are each device's effective tag definitions (state names for
    /// conditions and reasons, units for reasons). Every alarm starts normal; use `restore(_:)` next to
    /// take over a previous run's state.
    public init(rules: [AlarmRule], tags: [String: [TagDefinition]], now: Int64) {
        self.rules = rules
        self.startedAt = now
        var defs: [TagKey: TagDefinition] = [:]
        for (device, list) in tags { for t in list { defs[TagKey(device: device, tag: t.name)] = t } }
        self.tagDefinitions = defs
        var points: [AlarmPoint] = []
        var pointsOfRule: [[Int]] = []
        var watched = Set<TagKey>()
        for (i, rule) in rules.enumerated() {
            let levels: [LimitSet.Level?] =
                rule.kind == .limit
                ? LimitSet.Level.allCases.filter { rule.limits?[$0] != nil } : [nil]
            pointsOfRule.append(
                levels.map { level in
                    points.append(AlarmPoint(rule: rule, index: i, level: level))
                    return points.count - 1
                })
            if let tag = rule.tag { watched.insert(TagKey(device: rule.device, tag: tag)) }
            for ref in rule.suppressWhen?.condition.references ?? [] {
                watched.insert(TagKey(device: ref.device ?? rule.device, tag: ref.tag))
            }
        }
        self.points = points
        self.pointsOfRule = pointsOfRule
        self.index = Dictionary(points.enumerated().map { ($0.element.id, $0.offset) }, uniquingKeysWith: { a, _ in a })
        self.watched = watched
    }

    /// An engine for a validated configuration's alarms. Rules of disabled devices are left out: those
    /// devices are never read, so their stale alarms would stand forever.
    public init(config: EdgeConfig, now: Int64) {
        var tags: [String: [TagDefinition]] = [:]
        for d in config.devices { tags[d.name] = config.effectiveTags(of: d) }
        let enabled = Set(config.devices.filter(\.enabled).map(\.name))
        self.init(rules: config.alarms.filter { enabled.contains($0.device) }, tags: tags, now: now)
    }

    /// Feeds one poll's readings (of one device or several); returns the transitions they cause.
    ///
    /// Good readings update the last values (also those suppression conditions read), prove their
    /// device online, and are evaluated against every rule watching their tag. Bad-quality readings
    /// are ignored.
    public mutating func ingest(_ readings: [Reading], now: Int64) -> [AlarmEvent] {
        var events: [AlarmEvent] = []
        var touched = Set<TagKey>()
        for r in readings where r.quality.isGood {
            if offlineSince[r.device] != nil { events += deviceComm(r.device, online: true, now: now) }
            let key = TagKey(device: r.device, tag: r.tag)
            guard watched.contains(key) else { continue }
            freshAt[key] = now
            touched.insert(key)
            guard let v = r.value?.number, v.isFinite else { continue }
            lastGood[key] = Sample(at: now, value: v)
            for (ri, rule) in rules.enumerated()
            where rule.kind == .rate && rule.device == r.device && rule.tag == r.tag {
                let per = rule.rate?.per.milliseconds ?? 0
                rateSamples[ri, default: []].removeAll { $0.at < now - per }
                rateSamples[ri, default: []].append(Sample(at: now, value: v))
            }
        }
        events += updateSuppression(now: now)
        for (ri, rule) in rules.enumerated() where rule.kind.watchesValue {
            guard let tag = rule.tag, touched.contains(TagKey(device: rule.device, tag: tag)) else { continue }
            events += evaluate(rule: ri, now: now, newReading: true)
        }
        return events
    }

    /// The device's comm state changed. Going offline freezes the device's value alarms (pending
    /// delays are abandoned; nothing raises or clears) and starts its comm-loss alarms' `after`;
    /// coming back clears the comm-loss alarms and ends the freeze. Repeating the current state does nothing.
    public mutating func deviceComm(_ device: String, online: Bool, now: Int64) -> [AlarmEvent] {
        if online {
            guard offlineSince.removeValue(forKey: device) != nil else { return [] }
            onlineSince[device] = now
        } else {
            guard offlineSince[device] == nil else { return [] }
            offlineSince[device] = now
            for i in points.indices where rules[points[i].rule].device == device && points[i].record.kind.watchesValue {
                points[i].phase = points[i].phase.settled
            }
        }
        var events: [AlarmEvent] = []
        for ri in rules.indices where rules[ri].device == device {
            events += evaluate(rule: ri, now: now, newReading: false)
        }
        return events
    }

    /// Time passes: on- and off-delays that ran out complete, stale and comm-loss alarms whose `after`
    /// ran out raise, shelves that expired end (`unshelved` with no `by`). Call it about once a second.
    public mutating func tick(now: Int64) -> [AlarmEvent] {
        var events: [AlarmEvent] = []
        for i in points.indices {
            guard let until = points[i].record.shelvedUntil, until <= now else { continue }
            let who = points[i].record.shelvedBy.map { " (shelved by \($0))" } ?? ""
            points[i].record.shelvedUntil = nil
            points[i].record.shelvedBy = nil
            events.append(points[i].event(.unshelved, value: currentValue(i), reason: "shelve expired\(who)", now: now))
        }
        for ri in rules.indices { events += evaluate(rule: ri, now: now, newReading: false) }
        return events
    }

    /// Alarm records from a flow computer's event log, oldest first, as they were stored (each once): a set or
    /// cleared record on a register a device-alarm rule watches (and on its limit, when the rule names one)
    /// raises or clears that alarm. Operator events change nothing here.
    public mutating func deviceAlarms(_ device: String, _ records: [EventRecord], now: Int64) -> [AlarmEvent] {
        var events: [AlarmEvent] = []
        for record in records {
            guard let set = record.alarmSet else { continue }
            for (ri, rule) in rules.enumerated()
            where rule.kind == .deviceAlarm && rule.device == device && rule.register == Int(record.register)
                && (rule.deviceLimit.map { record.limits.contains($0) } ?? true)
            {
                deviceAlarms[ri] = DeviceAlarmState(
                    set: set, register: Int(record.register), limits: record.limits, value: Double(record.asFound),
                    deviceTime: record.timestamp.description)
                events += evaluate(rule: ri, now: now, newReading: true)
            }
        }
        return events
    }

    /// Every alarm's id, in rule order (limit levels HH, H, L, LL).
    public var alarmIDs: [AlarmID] { points.map(\.id) }

    /// Health of the alarm system up to `now`: floods and chattering alarms.
    public func health(now: Int64) -> AlarmHealth { healthLog.health(now: now) }
}
