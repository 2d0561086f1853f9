/// A change of one of the uplink's own alarms, for the gateway to store as a `system` alarm event.
public struct UplinkAlarmChange: Sendable, Equatable {
    public var id: AlarmID
    /// `.raised` or `.cleared`.
    public var transition: AlarmTransition
    public var priority: AlarmPriority
    public var reason: String
    public init(_ name: String, _ transition: AlarmTransition, priority: AlarmPriority, reason: String) {
        self.id = AlarmID(rule: name)
        self.transition = transition; self.priority = priority; self.reason = reason
    }
}

/// One lane's batch size, dead letters and alarms (`UplinkMachine`), and how many of its records fitted in
/// `batch.maxBytes` last time.
public struct UplinkLane: Sendable {
    public var machine: UplinkMachine
    /// How many records fitted in `batch.maxBytes` the last time that bound decided (nil: the record limit
    /// decides). Without it every batch would read and encode `batchRecords` records to keep a few.
    public private(set) var bodyFit: Int?

    public init(maxRecords: Int) { machine = UplinkMachine(maxBatchRecords: maxRecords) }

    /// Records to offer for the next batch: the record limit, or a little more than fitted last time.
    public var offer: Int { min(machine.batchRecords, bodyFit.map { $0 + $0 / 4 + 1 } ?? .max) }

    /// Learns whether the body bound decided: `offered` records were offered, `kept` fitted.
    public mutating func noteFit(offered: Int, kept: Int) {
        if kept < offered {
            bodyFit = kept
        } else if let f = bodyFit, kept >= f {
            bodyFit = kept * 2 >= machine.batchRecords ? nil : kept * 2
        }
    }
}
