/// The durable state of one alarm: annunciation, acknowledgement and operator holds.
///
/// Besides the state it names the alarm (rule, device, tag, level, priority), so that an alarm whose
/// rule was removed from the configuration can still be cleared after a restart.
public struct AlarmRecord: Sendable, Codable, Equatable {
    /// The alarm id (`rpc-1-tubing.hh`, `rpc-1-comm`).
    public var id: AlarmID
    /// The rule's name.
    public var alarm: String
    public var kind: AlarmRule.Kind
    public var device: String
    public var tag: String?
    public var level: LimitSet.Level?
    public var priority: AlarmPriority
    /// The setpoint (limit) or allowed change (rate).
    public var limit: Double?

    /// Whether the process condition holds (after its on-delay; before its off-delay ran out).
    public var conditionActive = false
    /// Whether the alarm is annunciated: raised and not yet cleared.
    public var raised = false
    /// When it was last raised (wall-clock milliseconds).
    public var raisedAt: Int64?
    /// False from a raise until an operator acknowledges it, also after the alarm cleared.
    public var acknowledged = true
    public var acknowledgedBy: String?
    public var acknowledgedAt: Int64?
    /// Whether its `suppressWhen` condition holds.
    public var suppressed = false
    /// When the shelve expires (wall-clock milliseconds); nil when not shelved.
    public var shelvedUntil: Int64?
    public var shelvedBy: String?
    public var outOfService = false
    public var outOfServiceBy: String?
    /// The value at the last raise or clear.
    public var value: Double?
    /// Why it was last raised or cleared.
    public var reason = ""

    /// Whether the record differs from a quiet alarm (normal, acknowledged, in service, not shelved or suppressed).
    var isNotable: Bool {
        conditionActive || raised || !acknowledged || suppressed || shelvedUntil != nil || outOfService
    }
}

/// Everything an `AlarmEngine` needs after a restart so that an active alarm is neither raised twice nor lost.
///
/// Holds the alarms that are not quiet, the devices that were offline, and the last good values of the
/// tags the rules watch (so suppression conditions evaluate at once). Pending on- and off-delays are
/// not kept: after a restart they start again from the next reading.
public struct AlarmSnapshot: Sendable, Codable, Equatable {
    /// The snapshot format this build writes.
    public static let currentVersion = 1

    /// A device that was offline, and since when (wall-clock milliseconds).
    public struct OfflineDevice: Sendable, Codable, Equatable {
        public var device: String
        public var since: Int64
        public init(device: String, since: Int64) { self.device = device; self.since = since }
    }

    /// The last good value of one tag.
    public struct LastValue: Sendable, Codable, Equatable {
        public var device: String
        public var tag: String
        public var value: Double
        public var wallMillis: Int64
        public init(device: String, tag: String, value: Double, wallMillis: Int64) {
            self.device = device; self.tag = tag; self.value = value; self.wallMillis = wallMillis
        }
    }

    public var version: Int
    public var alarms: [AlarmRecord]
    public var offlineDevices: [OfflineDevice]
    public var values: [LastValue]
    /// Recent raises and clears and the episode counts behind `AlarmHealth` (absent in snapshots written
    /// before it was kept: the health then starts afresh).
    public var health: AlarmHealthLog?

    public init(
        version: Int = currentVersion, alarms: [AlarmRecord], offlineDevices: [OfflineDevice], values: [LastValue]
    ) {
        self.version = version; self.alarms = alarms; self.offlineDevices = offlineDevices; self.values = values
    }
}

extension AlarmEngine {
    /// The durable state: persist it after every call that returned events (and whenever convenient),
    /// and hand it to `restore(_:)` after a restart.
    public var snapshot: AlarmSnapshot {
        let alarms = points.map { p in
            var r = p.record
            r.conditionActive = p.phase.settledActive
            return r
        }.filter(\.isNotable)
        let offline = offlineSince.sorted { $0.key < $1.key }.map {
            AlarmSnapshot.OfflineDevice(device: $0.key, since: $0.value)
        }
        let values = lastGood.sorted { ($0.key.device, $0.key.tag) < ($1.key.device, $1.key.tag) }
            .map {
                AlarmSnapshot.LastValue(
                    device: $0.key.device, tag: $0.key.tag, value: $0.value.value, wallMillis: $0.value.at)
            }
        var s = AlarmSnapshot(alarms: alarms, offlineDevices: offline, values: values)
        s.health = healthLog
        return s
    }

    /// Takes over the state a previous run saved. Call it once, right after `init`, before any reading.
    ///
    /// The alarm health (floods, chattering, their episode counts) carries over as it was; entries that
    /// have left their windows by the next look no longer count.
    ///
    /// An alarm whose id still exists keeps its state, also when its rule changed (the next reading
    /// re-evaluates it against the new rule, so a raised alarm still clears exactly once). An alarm whose
    /// id no longer exists is dropped; if it was raised, the returned events clear it, stamped with the
    /// engine's start time, so no receiver keeps it active forever. Offline devices and last values of
    /// devices and tags no longer watched are dropped. A snapshot of a newer format is ignored.
    @discardableResult
    public mutating func restore(_ s: AlarmSnapshot) -> [AlarmEvent] {
        guard s.version <= AlarmSnapshot.currentVersion else { return [] }
        if let h = s.health { healthLog = h }
        for v in s.values {
            let key = TagKey(device: v.device, tag: v.tag)
            if watched.contains(key) { lastGood[key] = Sample(at: v.wallMillis, value: v.value) }
        }
        let devices = Set(rules.map(\.device))
        for d in s.offlineDevices where devices.contains(d.device) { offlineSince[d.device] = d.since }
        var events: [AlarmEvent] = []
        for record in s.alarms {
            if let i = index[record.id] {
                var r = record
                // The rule may have changed: name, priority and limit come from the current one.
                r.alarm = points[i].record.alarm; r.kind = points[i].record.kind; r.device = points[i].record.device
                r.tag = points[i].record.tag; r.level = points[i].record.level
                r.priority = points[i].record.priority; r.limit = points[i].record.limit
                points[i].record = r
                points[i].phase = r.conditionActive ? .active : .normal
            } else if record.raised {
                events.append(
                    AlarmEvent(
                        id: record.id, alarm: record.alarm, kind: record.kind, device: record.device,
                        tag: record.tag, level: record.level, transition: .cleared, priority: record.priority,
                        value: nil, limit: record.limit, reason: "alarm no longer configured; cleared at restart",
                        wallMillis: startedAt))
            }
        }
        return events
    }
}
