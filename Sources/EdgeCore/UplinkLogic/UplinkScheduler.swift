/// The upload loop as one state machine: the I/O shell (`UplinkService`) tells it what happened — the buffer
/// was read, a batch was sent and how it ended, a wake-up or a timer, the token looked at, the configuration
/// reloaded, an operator acknowledged the dead letters — and it answers with what to do: side effects
/// (delete, dead-letter, raise or clear an uplink alarm, save the month's usage, log) and the one next step
/// (read the buffer, send a batch, drop readings for the data budget, or sleep until a moment). It reads no
/// clock and does no I/O: time comes in with each event, randomness is injected.
///
/// It holds the parts that decide:
/// - the `EndpointGate`: when the endpoint may be tried, for both lanes (`Retry-After`, 5xx backoff, a
///   refused token), alarm events first;
/// - one `UplinkMachine` per lane: batch size after 413, dead letters, the uplink's alarms;
/// - when a batch of readings is due: full, its body nearly `batch.maxBytes`, or its oldest reading
///   `batch.maxAge` old (an hour while the data budget saves);
/// - the data budget: the month's usage, the saving mode, the hourly snapshots kept while saving;
/// - which uplink alarms the gateway has been told of (raised as system alarm events, cleared once).
public struct UplinkScheduler: Sendable {
    public typealias Lane = EndpointGate.Lane

    /// The system alarm raised while the data budget saves.
    public static let dataBudgetAlarm = "uplink-data-budget"

    public let policy: Policy
    public private(set) var config: UplinkConfig
    private var encoder: BatchEncoder
    public private(set) var gate: EndpointGate
    public private(set) var alarmLane: UplinkLane
    public private(set) var readingLane: UplinkLane
    public private(set) var mode: DataBudgetMode = .normal
    private var snapshots = HourlySnapshots()
    public private(set) var usage: DataUsage
    private var usageDirty = false
    private var usageSavedAt: Int64 = .min
    /// Uplink alarms raised as system alarm events and not cleared yet.
    public private(set) var published: Set<String> = []
    /// The latest reason given for each alarm raised.
    private var reasons: [String: String] = [:]
    /// What the loop is doing, for `edgectl uplink`.
    public private(set) var state = "idle"
    /// Readings dropped for the data budget since the start.
    public private(set) var droppedForBudget: Int64 = 0
    private let random: @Sendable (ClosedRange<Int64>) -> Int64

    public init(
        _ config: UplinkConfig, encoder: BatchEncoder, policy: Policy = Policy(),
        random: @escaping @Sendable (ClosedRange<Int64>) -> Int64 = { Int64.random(in: $0) }
    ) {
        self.policy = policy
        self.config = config
        self.encoder = encoder
        self.random = random
        gate = EndpointGate(policy: policy.gate)
        alarmLane = UplinkLane(maxRecords: config.batch.maxRecords)
        readingLane = UplinkLane(maxRecords: config.batch.maxRecords)
        usage = DataUsage(month: "")
    }

    /// The uplink's own alarms active now, sorted (the data budget's included).
    public var activeAlarms: [String] { desiredAlarms.sorted() }

    /// While the server refuses the token, the loop looks at the token source when it wakes.
    public var wantsToken: Bool { gate.tokenRefused }

    /// The failure the lanes saw last (nil after a success).
    public var lastError: String? { readingLane.machine.lastError ?? alarmLane.machine.lastError }

    public mutating func handle(_ event: Event, now: Now) -> Step {
        var effects: [Effect] = []
        updateMode(now)
        let next: Next
        switch event {
        case .start(let saved, let standing):
            usage = saved.asOf(wallMillis: now.wall)
            published = standing
            usageSavedAt = now.monotonic
            next = readHead(prefetched: false)
        case .read(let epoch, let alarms, let readings):
            next = decide(epoch: epoch, alarms: alarms, readings: readings, now: now)
        case .readFailed(let why):
            effects.append(.log(.error, "uplink: reading the buffer failed: \(why)"))
            next = .sleep(untilMillis: now.monotonic + policy.bufferRetry.milliseconds)
        case .dropped(let count, let error):
            if let error {
                effects.append(.log(.error, "uplink: dropping readings for the data budget failed: \(error)"))
                next = .sleep(untilMillis: now.monotonic + policy.bufferRetry.milliseconds)
            } else {
                droppedForBudget += Int64(count)
                next = readHead(prefetched: false)
            }
        case .sent(let lane, let batch, let offered, let outcome, let token, let wireBytes):
            next = sent(lane, batch, offered: offered, outcome, token: token, wireBytes: wireBytes, now, &effects)
        case .noToken(let why):
            state = "no token"
            gate.noToken(nowMillis: now.monotonic)
            effects.append(.log(.error, "uplink: \(why)"))
            next = readHead(prefetched: false)
        case .woke(let token):
            if let token, gate.tokenRefused, gate.tokenSeen(token, nowMillis: now.monotonic) {
                effects.append(.log(.notice, "uplink: the token changed; retrying now"))
            }
            next = readHead(prefetched: false)
        case .configChanged(let new, let encoder):
            reload(new, encoder: encoder, now: now)
            next = readHead(prefetched: false)
        case .rejectedAcknowledged:
            for action in alarmLane.machine.acknowledgeRejected() + readingLane.machine.acknowledgeRejected() {
                if case .clearAlarm(let a) = action {
                    effects.append(.log(.notice, "uplink alarm \(a.rawValue) acknowledged by an operator"))
                }
            }
            next = readHead(prefetched: false)
        }
        updateMode(now)
        reconcileAlarms(&effects)
        if usageDirty, now.monotonic - usageSavedAt >= policy.usageSaveEvery.milliseconds {
            effects.append(.saveUsage(usage))
            usageDirty = false
            usageSavedAt = now.monotonic
        }
        return Step(effects: effects, next: next)
    }

    /// The month's usage, if it changed since it was last saved (the loop saves it on its way out).
    public mutating func unsavedUsage() -> DataUsage? {
        guard usageDirty else { return nil }
        usageDirty = false
        return usage
    }

    /// Saving the usage failed: it is saved again at the next occasion.
    public mutating func usageNotSaved() { usageDirty = true }

    /// When the endpoint may be tried next, in monotonic ms, while it is held (nil: not held).
    public func heldUntil(nowMillis now: Int64) -> Int64? {
        gate.hold == nil ? nil : max(now, gate.notBeforeMillis)
    }

    // MARK: - Decisions

    private func readHead(prefetched: Bool) -> Next {
        let depth = mode == .saving ? max(policy.savingReadDepth, readingLane.machine.batchRecords) : readingLane.offer
        return .read(maxRecords: depth, prefetched: prefetched)
    }

    private mutating func decide(epoch: String, alarms: [BufferedRecord], readings: [BufferedRecord], now: Now)
        -> Next
    {
        let idle = Next.sleep(untilMillis: now.monotonic + max(1000, config.batch.maxAge.milliseconds))
        guard !(alarms.isEmpty && readings.isEmpty) else {
            state = "idle"
            return idle
        }
        // Near the data budget's cap: readings other than the hourly snapshots are dropped (with a gap record),
        // then the head of the lane is read again.
        if mode == .saving && !readings.isEmpty {
            let drop = snapshots.split(readings).drop
            if !drop.isEmpty { return .drop(drop) }
        }
        let batchRecords = readingLane.offer
        // A batch of readings that is neither full nor old enough waits to fill up (alarms never wait). While
        // saving data, a batch of hourly snapshots waits up to an hour.
        var due: Int64?
        if !readings.isEmpty {
            due = now.monotonic
            let maxAge =
                mode == .saving
                ? max(config.batch.maxAge.milliseconds, policy.savingMaxAge.milliseconds)
                : config.batch.maxAge.milliseconds
            if readings.count < batchRecords, let oldest = readings.compactMap({ $0.reading?.wallMillis }).min() {
                let age = now.wall - oldest
                if age < maxAge, !bodyNearlyFull(readings, epoch: epoch) { due = now.monotonic + maxAge - age }
            }
        }
        switch gate.next(nowMillis: now.monotonic, alarmsWaiting: !alarms.isEmpty, readingsDueMillis: due) {
        case .idle:
            state = "idle"
            return idle
        case .sleepUntil(let t):
            state = gate.hold?.rawValue ?? (mode == .saving ? "saving data" : "filling")
            return .sleep(untilMillis: t)
        case .send(.alarms):
            state = "sending"
            return .send(
                .alarms, records: Array(alarms.prefix(alarmLane.machine.batchRecords)), epoch: epoch, readAhead: nil)
        case .send(.readings):
            state = "sending"
            let offered = Array(readings.prefix(batchRecords))
            return .send(
                .readings, records: offered, epoch: epoch,
                readAhead: readings.count >= batchRecords ? Array(readings.dropFirst(batchRecords)) : nil)
        }
    }

    /// Whether a not-yet-full batch of readings already fills 90 % of `batch.maxBytes` (then it goes now).
    private func bodyNearlyFull(_ records: [BufferedRecord], epoch: String) -> Bool {
        let limit = Int(config.batch.maxBytes.bytes)
        // The estimate over-counts, so only an estimate past the limit needs the exact size.
        guard records.reduce(0, { $0 + $1.estimatedWireBytes }) >= limit * 9 / 10 else { return false }
        return encoder.encode(BufferBatch(epoch: epoch, records: records), sentAt: 0, clockSynchronized: false).count
            >= limit * 9 / 10
    }

    private mutating func sent(
        _ lane: Lane, _ batch: BufferBatch, offered: Int, _ outcome: UplinkOutcome, token: String, wireBytes: Int64,
        _ now: Now, _ effects: inout [Effect]
    ) -> Next {
        if wireBytes > 0 {
            usage.add(wireBytes, atWallMillis: now.wall)
            usageDirty = true
        }
        let name = lane == .alarms ? "alarm lane" : "readings"
        if lane == .readings { readingLane.noteFit(offered: offered, kept: batch.count) }
        let actions =
            lane == .alarms
            ? alarmLane.machine.handle(outcome, records: batch.count)
            : readingLane.machine.handle(outcome, records: batch.count)
        let machine = lane == .alarms ? alarmLane.machine : readingLane.machine
        // When the endpoint may be tried again, for both lanes.
        if let ms = gate.sent(outcome, token: token, nowMillis: now.monotonic, random: random) {
            state = gate.hold?.rawValue ?? "backing off"
            effects.append(
                .log(
                    .warning,
                    "uplink (\(name)): \(machine.lastError ?? "failed"); next attempt in \(TimeSpan(milliseconds: ms))")
            )
        }
        var stored = false
        for action in actions {
            switch action {
            case .acknowledge:
                stored = true
                state = "online"
                effects.append(.acknowledge(lane, batch))
            case .resendSmaller:
                effects.append(
                    .log(
                        .warning,
                        "uplink: 413 for \(batch.count) records (\(name)); sending \(machine.batchRecords) at a time"))
            case .deadLetter(let reason):
                effects.append(.deadLetter(batch, reason: reason))
            case .raiseAlarm(let alarm, let message):
                reasons[alarm.rawValue] = message
                effects.append(.log(.error, "uplink alarm \(alarm.rawValue): \(message)"))
            case .clearAlarm(let alarm):
                effects.append(.log(.notice, "uplink alarm \(alarm.rawValue) cleared"))
            }
        }
        // After an acknowledged batch of readings, what was read ahead meanwhile may be used.
        return readHead(prefetched: stored && lane == .readings)
    }

    /// A new endpoint or token starts the gate and the lanes afresh; otherwise they keep their state (a
    /// changed batch size restarts the lanes).
    private mutating func reload(_ new: UplinkConfig, encoder: BatchEncoder, now: Now) {
        let same = new.endpoint == config.endpoint && new.token == config.token
        gate.reloaded(endpointOrTokenChanged: !same, nowMillis: now.monotonic)
        if !same || new.batch.maxRecords != config.batch.maxRecords {
            alarmLane = UplinkLane(maxRecords: new.batch.maxRecords)
            readingLane = UplinkLane(maxRecords: new.batch.maxRecords)
        }
        config = new
        self.encoder = encoder
        updateMode(now)
    }

    private mutating func updateMode(_ now: Now) {
        if usage.month.isEmpty { usage = DataUsage(month: DataUsage.month(ofWallMillis: now.wall)) }
        let current = usage.asOf(wallMillis: now.wall)
        let cap = config.monthlyBudget?.bytes
        let newMode = DataBudgetMode.of(current, budget: cap)
        if newMode == .saving {
            reasons[Self.dataBudgetAlarm] =
                "\(current.bytes) of the \(cap ?? 0)-byte monthly data budget used in \(current.month); "
                + "sending alarms and hourly snapshots only, other readings are dropped with data-budget gap records"
            if mode != .saving { snapshots = HourlySnapshots() }
        }
        mode = newMode
    }

    /// The current month's usage as of `wall`.
    public func usage(asOfWallMillis wall: Int64) -> DataUsage { usage.asOf(wallMillis: wall) }

    private var desiredAlarms: Set<String> {
        var desired = Set(alarmLane.machine.activeAlarms.union(readingLane.machine.activeAlarms).map(\.rawValue))
        if mode == .saving { desired.insert(Self.dataBudgetAlarm) }
        return desired
    }

    /// Tells the gateway about uplink alarms raised or cleared since it was last told.
    private mutating func reconcileAlarms(_ effects: inout [Effect]) {
        let desired = desiredAlarms
        guard desired != published else { return }
        for name in desired.subtracting(published).sorted() {
            effects.append(
                .alarm(
                    UplinkAlarmChange(name, .raised, priority: Self.priority(name), reason: reasons[name] ?? name)))
        }
        for name in published.subtracting(desired).sorted() {
            let reason =
                name == Self.dataBudgetAlarm
                ? "the data budget allows everything again (a new month, or a larger budget)"
                : "uploads go through again"
            effects.append(
                .alarm(UplinkAlarmChange(name, .cleared, priority: Self.priority(name), reason: reason)))
        }
        published = desired
    }

    public static func priority(_ alarm: String) -> AlarmPriority {
        switch alarm {
        case UplinkAlarm.unauthorized.rawValue, UplinkAlarm.untrustedServer.rawValue,
            UplinkAlarm.wrongEndpoint.rawValue:
            .high
        case UplinkAlarm.rejectedBatch.rawValue: .medium
        default: .low
        }
    }
}
