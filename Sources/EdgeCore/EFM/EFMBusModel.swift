/// The bus time a flow computer's EFM history collection takes on a bus it shares with live polling: what each
/// history request costs, what collection costs once caught up, and how long a backfill takes in the slack the
/// live polls leave (docs/efm.md, "Bus time of history reads").
///
/// What the model assumes — each of these is a place where the bus can be slower than modelled:
/// - A history request costs what `BusTiming` charges any transaction: `perTransaction` (turnaround,
///   inter-frame delay, silent intervals or round trip) plus the request and reply frames at the line's
///   character time. Enron replies carry 4 bytes per 32-bit register; an archive read's reply is one whole
///   record (8 + 4 × fields bytes) whatever its quantity field says; the FC 05 acknowledge's reply echoes
///   register and value (3 bytes beyond a read reply's framing).
/// - The collector's sequence (`EFMCollector`): each check reads the two archive pointers (one read when they
///   are adjacent registers of one width, else two), then per archive re-reads the record at its cursor before
///   reading newer ones, then reads the event log once. So each new record costs two record reads once caught
///   up. The event log is taken as empty at each check; a check that finds events adds 20 bytes per event to
///   its reply and one acknowledge.
/// - Live polls run on schedule: every device's first poll at time 0 (the scheduler staggers them by 1 ms),
///   each taking its read plan's `busSeconds`, back to back when several are due; no retries, timeouts or
///   offline devices. The schedule of the first hour (or of the first 100,000 polls, if fewer) repeats.
/// - The slack rule of `BusPoller`: a history request goes only while the next live poll is at least
///   `slackGuard` (the bus's response timeout + inter-frame delay) away, and as many go in one gap as the rule
///   lets. A request is taken never to delay a live poll (its bus time is below the guard).
/// - Store commits (the collector waits for one every 24 records) take no bus time and are not counted: a
///   backfill's wall time is somewhat longer than its bus time.
public struct EFMBusModel: Sendable, Equatable {
    /// One device's live polling on the bus: its poll interval and the bus time of one poll cycle.
    public struct LivePoll: Sendable, Equatable, Codable {
        public var device: String
        public var intervalSeconds: Double
        public var busSeconds: Double
        public init(device: String, intervalSeconds: Double, busSeconds: Double) {
            self.device = device; self.intervalSeconds = intervalSeconds; self.busSeconds = busSeconds
        }
    }

    /// The kinds of history request the collector sends.
    public enum Request: String, Sendable, Equatable, CaseIterable, Codable {
        /// All the reads of one check's archive pointers.
        case pointers
        case hourlyRecord
        case dailyRecord
        /// An event read answered with no events.
        case eventReadEmpty
        /// An event read answered with as many 20-byte events as fit one reply.
        case eventReadFull
        case acknowledge
    }

    public var profile: EFMProfile
    /// The cost of one transaction with the flow computer (the bus's timing with its turnaround).
    public var timing: BusTiming
    /// Seconds between pointer checks once caught up (`efm.check`).
    public var checkSeconds: Double
    /// Seconds that must remain before the next live poll for a history request to go.
    public var slackGuard: Double
    /// Every device polled live on the bus (the flow computer's own live tags included).
    public var live: [LivePoll]

    public init(profile: EFMProfile, timing: BusTiming, checkSeconds: Double, slackGuard: Double, live: [LivePoll]) {
        self.profile = profile; self.timing = timing; self.checkSeconds = checkSeconds
        self.slackGuard = slackGuard; self.live = live
    }

    // MARK: Per request

    /// Seconds of each pointer read of one check.
    public var pointerReadSeconds: [Double] {
        EFMCollector.pointerReads(for: profile).map { read in
            let width = EnronRegister.width(of: read.start) ?? .float32
            return timing.cost(replyDataBytes: EnronRegister.byteCount(width, count: read.count))
        }
    }

    /// Bus seconds of one request of `kind` (for `.pointers`, all of one check's pointer reads).
    public func seconds(_ kind: Request) -> Double {
        switch kind {
        case .pointers: pointerReadSeconds.reduce(0, +)
        case .hourlyRecord: timing.cost(replyDataBytes: profile.hourly.layout.recordSize)
        case .dailyRecord: timing.cost(replyDataBytes: profile.daily.layout.recordSize)
        case .eventReadEmpty: timing.cost(replyDataBytes: 0)
        case .eventReadFull:
            timing.cost(replyDataBytes: profile.maxReplyBytes.value / eventSize * eventSize)
        case .acknowledge: timing.cost(replyDataBytes: 3)
        }
    }

    private var eventSize: Int { profile.eventLayout.value.recordSize }

    // MARK: Caught up

    /// Bus seconds per hour once caught up: a pointer check and an (empty) event read every `checkSeconds`, two
    /// reads per new hourly record (the cursor's record, then the new one), two per new daily record per day.
    public var steadyStateSecondsPerHour: Double {
        let checks = 3600 / max(checkSeconds, 0.001)
        return checks * (seconds(.pointers) + seconds(.eventReadEmpty)) + 2 * seconds(.hourlyRecord)
            + 2 * seconds(.dailyRecord) / 24
    }

    /// The share of the bus's time collection takes once caught up (0.01 is 1 %).
    public var steadyStateShare: Double { steadyStateSecondsPerHour / 3600 }

    /// Bus seconds per second the live polls take (the planner's cycle time over each poll interval).
    public var liveLoad: Double { live.reduce(0) { $0 + $1.busSeconds / max($1.intervalSeconds, 0.001) } }

    // MARK: Backfill

    /// The requests that collect `hourly` and `daily` records missed during an outage, in the collector's order:
    /// the pointers, per archive the record at the cursor and then the missed ones, then the event log.
    public func backfillRequests(hourly: Int, daily: Int) -> [Double] {
        var out = pointerReadSeconds
        if hourly > 0 { out += Array(repeating: seconds(.hourlyRecord), count: hourly + 1) }
        if daily > 0 { out += Array(repeating: seconds(.dailyRecord), count: daily + 1) }
        out.append(seconds(.eventReadEmpty))
        return out
    }

    /// Seconds until a backfill of `hourly` and `daily` records is collected beside the live polls; nil when the
    /// live polls never leave a gap of `slackGuard` (the backfill would never progress).
    public func backfillSeconds(hourly: Int, daily: Int) -> Double? {
        drainSeconds(backfillRequests(hourly: hourly, daily: daily))
    }

    /// Seconds until history requests of these bus times, in order, have all gone in the live polls' slack;
    /// nil when no gap admits one.
    public func drainSeconds(_ requests: [Double]) -> Double? {
        if requests.isEmpty { return 0 }
        let schedule = liveSchedule()
        guard !live.isEmpty else { return requests.reduce(0, +) }
        let usable = schedule.gaps.filter { $0.end - $0.start >= slackGuard }
        guard !usable.isEmpty else { return nil }
        var next = 0
        var round = 0.0
        while true {
            for gap in usable {
                var now = gap.start
                while next < requests.count, gap.end - now >= slackGuard {
                    now += requests[next]
                    next += 1
                }
                if next == requests.count { return round + now }
            }
            round += schedule.window
        }
    }

    /// The idle stretches of the live schedule over one window that stands for every later one: each from the
    /// end of a poll (or run of polls due together) to the next poll's due time.
    public func liveSchedule() -> (window: Double, gaps: [(start: Double, end: Double)]) {
        let polls = live.filter { $0.intervalSeconds > 0 }
        guard !polls.isEmpty else { return (3600, [(0, 3600)]) }
        let rate = polls.reduce(0) { $0 + 1 / $1.intervalSeconds }
        let window = min(3600, 100_000 / rate)
        var due: [(at: Double, cost: Double, device: Int)] = []
        for (i, p) in polls.enumerated() {
            var k = 0.0
            while k * p.intervalSeconds < window {
                due.append((k * p.intervalSeconds, p.busSeconds, i))
                k += 1
            }
        }
        due.sort { ($0.at, $0.device) < ($1.at, $1.device) }
        var gaps: [(start: Double, end: Double)] = []
        var free = 0.0
        for d in due {
            if d.at > free { gaps.append((free, d.at)) }
            free = max(free, d.at) + d.cost
        }
        if window > free { gaps.append((free, window)) }
        return (window, gaps)
    }
}

extension EFMBusModel {
    /// The model for a device of `config` that collects EFM: the bus's timing with the device's turnaround, its
    /// `efm.check`, the bus's response timeout + inter-frame delay as the guard, and the read plans of every
    /// enabled device on the bus. Nil when the device collects nothing (no `efm`, `collect: false`, a template
    /// without an EFM profile) or its bus is unknown.
    public init?(device: DeviceConfig, in config: EdgeConfig) {
        guard let efm = device.efm, efm.collect, let bus = config.bus(named: device.bus),
            let profile = config.template(named: device.template)?.efmProfile
        else { return nil }
        let live = config.devices.filter { $0.bus == bus.name && $0.enabled }.map { d in
            let limits = config.effectiveLimits(of: d)
            let plan = ReadPlanner.plan(
                tags: config.effectiveTags(of: d), limits: limits,
                timing: BusTiming.of(bus, turnaround: limits.turnaround))
            return LivePoll(device: d.name, intervalSeconds: d.poll.seconds, busSeconds: plan.busSeconds)
        }
        self.init(
            profile: profile,
            timing: BusTiming.of(bus, turnaround: config.effectiveLimits(of: device).turnaround),
            checkSeconds: efm.check.seconds, slackGuard: bus.responseTimeout.seconds + bus.interFrameDelay.seconds,
            live: live)
    }
}
