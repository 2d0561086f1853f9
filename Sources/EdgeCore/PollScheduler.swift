/// Decides which device a bus polls next: the one whose deadline is nearest (earliest deadline first).
///
/// A pure state machine over monotonic milliseconds. A device that fails `offlineAfter` times in a row
/// goes offline and is only probed, with a capped exponential backoff, so a dead device costs the bus
/// little and the others keep their intervals. The first answer brings it back at once.
public struct PollScheduler: Sendable {
    public struct Device: Sendable, Equatable {
        public var name: String
        public var intervalMillis: Int64
        public var offlineAfter: Int
        public var maxBackoffMillis: Int64
        public var nextDue: Int64
        public var consecutiveFailures = 0
        public var online = true
        /// Monotonic ms when the device went offline.
        public var offlineSince: Int64?
        public var backoffAttempt = 0

        /// How long the device waits before its next probe while offline (attempt 0, 1, 2, …).
        public func backoff(attempt: Int) -> Int64 {
            let factor = Int64(1) << Int64(min(attempt + 1, 20))
            return min(maxBackoffMillis, intervalMillis * factor)
        }
    }

    public enum Action: Sendable, Equatable {
        /// Read every request of the device's plan.
        case poll(Int)
        /// The device is offline: try one short request to see whether it is back.
        case probe(Int)
        /// Nothing is due before this monotonic time.
        case sleep(until: Int64)
        case idle
    }

    /// What changed in a device's comm state after a poll.
    public enum Transition: Sendable, Equatable {
        case wentOffline(Int)
        case cameBack(Int)
    }

    public private(set) var devices: [Device]

    public init(devices: [(name: String, interval: TimeSpan, offlineAfter: Int, maxBackoff: TimeSpan)], now: Int64) {
        // Stagger first polls a little so devices sharing an interval do not all fall due at once.
        self.devices = devices.enumerated().map { i, d in
            Device(
                name: d.name, intervalMillis: max(1, d.interval.milliseconds), offlineAfter: max(1, d.offlineAfter),
                maxBackoffMillis: max(d.maxBackoff.milliseconds, d.interval.milliseconds), nextDue: now + Int64(i))
        }
    }

    public func next(now: Int64) -> Action {
        guard let i = devices.indices.min(by: { (devices[$0].nextDue, $0) < (devices[$1].nextDue, $1) }) else {
            return .idle
        }
        guard devices[i].nextDue <= now else { return .sleep(until: devices[i].nextDue) }
        return devices[i].online ? .poll(i) : .probe(i)
    }

    /// Records how a poll or probe of device `i` ended: `answered` is true when the device responded at all
    /// (an exception response counts; a timeout, garbage or a dead link does not).
    public mutating func completed(_ i: Int, answered: Bool, now: Int64) -> Transition? {
        var d = devices[i]
        defer { devices[i] = d }
        if answered {
            d.consecutiveFailures = 0
            d.backoffAttempt = 0
            if !d.online {
                d.online = true
                d.offlineSince = nil
                d.nextDue = now  // back: a full poll right away
                return .cameBack(i)
            }
            d.nextDue = Self.advance(d.nextDue, by: d.intervalMillis, now: now)
            return nil
        }
        d.consecutiveFailures += 1
        if d.online {
            if d.consecutiveFailures >= d.offlineAfter {
                d.online = false
                d.offlineSince = now
                d.backoffAttempt = 0
                d.nextDue = now + d.backoff(attempt: 0)
                return .wentOffline(i)
            }
            d.nextDue = Self.advance(d.nextDue, by: d.intervalMillis, now: now)
            return nil
        }
        d.backoffAttempt += 1
        d.nextDue = now + d.backoff(attempt: d.backoffAttempt)
        return nil
    }

    /// Keeps the device's cadence; when a cycle was missed entirely, the device is due now rather than
    /// bursting to catch up.
    static func advance(_ due: Int64, by interval: Int64, now: Int64) -> Int64 {
        let next = due + interval
        return next > now ? next : now
    }
}

/// Communication counters of one device, as `edgectl devices` shows them.
public struct DeviceCounters: Sendable, Equatable, Codable {
    public var requests = 0
    public var responses = 0
    public var timeouts = 0
    public var exceptions = 0
    public var framingErrors = 0
    public var linkErrors = 0
    /// Sum and count of response latencies, for the mean; and the last one.
    public var latencyTotalMicros: Int64 = 0
    public var lastLatencyMicros: Int64 = 0
    public init() {}
    public var meanLatencyMicros: Int64 { responses == 0 ? 0 : latencyTotalMicros / Int64(responses) }

    public mutating func record(_ outcome: Quality, latencyMicros: Int64) {
        requests += 1
        switch outcome {
        case .good, .bad(.decode):
            responses += 1; latencyTotalMicros += latencyMicros; lastLatencyMicros = latencyMicros
        case .bad(.exception):
            responses += 1; exceptions += 1; latencyTotalMicros += latencyMicros; lastLatencyMicros = latencyMicros
        case .bad(.timeout): timeouts += 1
        case .bad(.framing): framingErrors += 1
        case .bad(.link), .bad(.offline): linkErrors += 1
        }
    }
}

/// A device's read plan as it is refined at run time: a grouped read that the device refuses with
/// exception 02 is split until the offending range is found; splits last for the life of the process.
public struct LivePlan: Sendable, Equatable {
    public private(set) var requests: [ReadRequest]
    /// One line per split, for `edgectl` and the log.
    public private(set) var adjustments: [String] = []

    private let original: [ReadRequest]

    public init(_ plan: ReadPlan) { self.requests = plan.requests; self.original = plan.requests }

    /// A device that refused every read of a cycle with exception 02 does not have holes in its map: the
    /// template (or unit id) is wrong. Undo the splits, which would only multiply requests, and say so.
    public mutating func refusedEverything(device: String, unit: Int) {
        requests = original
        let line = "every read refused with exception 02: is '\(device)' (unit \(unit)) really this template's device?"
        adjustments.removeAll()
        adjustments.append(line)
    }

    /// Splits request `i` in two; returns false when it serves a single tag (the offending range is found:
    /// that tag's registers). The cut goes through the widest unread gap — where an unmapped block most
    /// likely sits — or through the middle when the tags are contiguous.
    public mutating func split(_ i: Int, tags: [TagDefinition]) -> Bool {
        let r = requests[i]
        guard r.tagIndexes.count > 1 else { return false }
        let sorted = r.tagIndexes.sorted {
            (tags[$0].address, tags[$0].lastAddress) < (tags[$1].address, tags[$1].lastAddress)
        }
        var cut = sorted.count / 2
        var widest = 0
        var covered = tags[sorted[0]].lastAddress
        for k in 1..<sorted.count {
            let gap = tags[sorted[k]].address - covered - 1
            if gap > widest { widest = gap; cut = k }
            covered = max(covered, tags[sorted[k]].lastAddress)
        }
        let halves = [Array(sorted[..<cut]), Array(sorted[cut...])]
        let parts = halves.map { idx -> ReadRequest in
            let lo = idx.map { tags[$0].address }.min()!, hi = idx.map { tags[$0].lastAddress }.max()!
            return ReadRequest(table: r.table, start: lo, count: hi - lo + 1, tagIndexes: idx)
        }
        requests.replaceSubrange(i...i, with: parts)
        adjustments.append(
            "\(r) refused with exception 02: split into \(parts[0].start)..\(parts[0].end) and \(parts[1].start)..\(parts[1].end)"
        )
        return true
    }

    /// Notes a single-tag request the device refuses: the template maps a register the device does not have.
    public mutating func markUnreadable(_ i: Int, tagName: String) {
        let line =
            "\(requests[i]) (\(tagName)) refused with exception 02: the device has no such register; fix the template"
        if !adjustments.contains(line) { adjustments.append(line) }
    }
}
