import EdgeCore
import EdgeSystem
import Foundation
import Logging

/// What a bus thread reports after each poll of a device.
public struct PollReport: Sendable {
    public var bus: String
    public var device: String
    public var readings: [Reading]
    public var transition: PollScheduler.Transition?
    public var online: Bool
    public var errors: [ModbusError]

    public init(
        bus: String, device: String, readings: [Reading], transition: PollScheduler.Transition?, online: Bool,
        errors: [ModbusError]
    ) {
        self.bus = bus; self.device = device; self.readings = readings; self.transition = transition
        self.online = online; self.errors = errors
    }
}

/// The comm state of one device, for status displays.
public struct DeviceStatus: Sendable, Codable, Equatable {
    public var name: String
    public var bus: String
    public var unit: Int
    public var online: Bool
    /// Wall-clock ms since when the device has been offline.
    public var offlineSinceWallMillis: Int64?
    public var counters: DeviceCounters
    public var lastError: String?
    public var planAdjustments: [String]
}

/// Polls the devices of one bus on a dedicated thread: one libmodbus context, one transaction at a time,
/// the device with the nearest deadline first. Blocking calls never touch Swift's cooperative pool;
/// results leave through `report`, which must not block.
// Guard: `condition` protects every stored `var`; the link lives only on the bus thread (`run()`); the rest is
// immutable after init.
public final class BusPoller: @unchecked Sendable {
    public let bus: BusConfig
    private let makeLink: @Sendable () throws(ModbusError) -> any ModbusLink
    private let report: @Sendable (PollReport) -> Void
    private let logger: Logger
    private let condition = MonotonicCondition()
    // Guarded by `condition`:
    private var devices: [DevicePoller]
    private var scheduler: PollScheduler
    private var offlineSinceWall: [Int: Int64] = [:]
    private var stopping = false
    private var finished = false
    private var lastProgressMillis: Int64
    /// Flow computers whose EFM history is collected on this bus, between live polls (bus thread only).
    private let efm: [EFMCollection]
    /// When each collection may send its next request (monotonic ms; nil: waiting for its store).
    private var efmDue: [Int64?]

    /// - Parameter efm: EFM collections on this bus. A history request goes only when the next live poll is at
    ///   least a response timeout away, one request at a time, so the live cadence holds while a backfill of
    ///   weeks drains (reference §3.1: collectors interleave one history request between live polls).
    public init(
        bus: BusConfig, devices: [DevicePoller], efm: [EFMCollection] = [], logger: Logger,
        makeLink: @escaping @Sendable () throws(ModbusError) -> any ModbusLink,
        report: @escaping @Sendable (PollReport) -> Void
    ) {
        self.bus = bus
        self.devices = devices
        self.efm = efm
        self.efmDue = efm.map { _ in .min }
        self.makeLink = makeLink
        self.report = report
        self.logger = logger
        let now = SystemClock.monotonicMillis()
        self.lastProgressMillis = now
        self.scheduler = PollScheduler(
            devices: devices.map {
                (
                    name: $0.config.name, interval: $0.config.poll, offlineAfter: $0.config.offlineAfter,
                    maxBackoff: $0.config.maxBackoff
                )
            }, now: now)
        for (i, c) in efm.enumerated() {
            c.setWake { [weak self] in self?.efmStored(i) }
        }
    }

    /// A collection's store answered: it may go on (the bus thread may be waiting for the next live poll).
    private func efmStored(_ i: Int) {
        condition.withLock {
            efmDue[i] = .min
            condition.broadcast()
        }
    }

    /// The EFM collection to serve now, if one is due and `slack` allows a history request before the next live
    /// poll (under `condition`).
    private func dueCollection(now: Int64, slack: Int64) -> Int? {
        guard slack >= bus.responseTimeout.milliseconds + bus.interFrameDelay.milliseconds else { return nil }
        return efmDue.indices.first { i in efmDue[i].map { $0 <= now } ?? false }
    }

    /// One history request of collection `i`, outside the lock (the bus thread's link).
    private func serveEFM(_ i: Int, link: inout (any ModbusLink)?) {
        guard let link = connected(&link) else {
            condition.withLock { efmDue[i] = SystemClock.monotonicMillis() + 1000 }
            return
        }
        condition.withLock { efmDue[i] = nil }
        let next = efm[i].step(link: link, nowMillis: SystemClock.monotonicMillis())
        Self.pause(bus.interFrameDelay)
        condition.withLock {
            // A store answered meanwhile: it already set `.min`.
            if efmDue[i] == nil { efmDue[i] = next }
        }
    }

    /// Starts the bus thread.
    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "bus-\(bus.name)"
        thread.start()
    }

    /// Asks the thread to stop after the transaction in flight, and waits until it has.
    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    /// Monotonic ms when the thread last moved: each loop step, and between the transactions of a poll. A
    /// watchdog sees a hung bus thread when this stops moving for longer than `progressAllowanceMillis`.
    public var lastProgress: Int64 { condition.withLock { lastProgressMillis } }

    /// The longest the thread may legitimately go without moving: one exchange on this bus — connecting
    /// (TCP), the response timeout, then the largest read (125 registers) on the wire at the bus's speed
    /// with its inter-frame delay — or its idle wait (capped at 1 s).
    public var progressAllowanceMillis: Int64 {
        let largestRead = BusTiming.of(bus, turnaround: TimeSpan(milliseconds: 0)).cost(table: .holding, count: 125)
        return max(
            1_000,
            (bus.endpoint?.connectTimeout.milliseconds ?? 0) + bus.responseTimeout.milliseconds
                + Int64((largestRead * 1000).rounded(.up)))
    }

    private func markProgress() { condition.withLock { lastProgressMillis = SystemClock.monotonicMillis() } }

    public func status() -> [DeviceStatus] {
        condition.withLock {
            devices.enumerated().map { i, d in
                DeviceStatus(
                    name: d.config.name, bus: bus.name, unit: d.config.unit, online: scheduler.devices[i].online,
                    offlineSinceWallMillis: offlineSinceWall[i], counters: d.counters, lastError: d.lastError,
                    planAdjustments: d.plan.adjustments)
            }
        }
    }

    private func run() {
        var link: (any ModbusLink)?
        defer {
            link?.close()
            condition.withLock {
                finished = true; condition.broadcast()
            }
        }
        while true {
            condition.lock()
            lastProgressMillis = SystemClock.monotonicMillis()
            if stopping { condition.unlock(); return }
            let action = scheduler.next(now: lastProgressMillis)
            switch action {
            case .idle:
                if let i = dueCollection(now: lastProgressMillis, slack: .max) {
                    condition.unlock()
                    serveEFM(i, link: &link)
                    continue
                }
                condition.wait(forNanos: UInt64(min(1000, efmWaitMillis(now: lastProgressMillis))) * 1_000_000)
                condition.unlock()
                continue
            case .sleep(let until):
                if let i = dueCollection(now: lastProgressMillis, slack: until - lastProgressMillis) {
                    condition.unlock()
                    serveEFM(i, link: &link)
                    continue
                }
                // A collection due now but without the slack for a request waits for the live poll, not in a spin.
                let efmWait = efmWaitMillis(now: lastProgressMillis)
                let waitMillis = max(0, min(until - lastProgressMillis, 1000, efmWait == 0 ? .max : efmWait))
                condition.wait(forNanos: UInt64(waitMillis) * 1_000_000)
                condition.unlock()
                continue
            case .poll(let i), .probe(let i):
                var device = devices[i]
                condition.unlock()
                let outcome: DevicePoller.Outcome
                if let link = connected(&link) {
                    var probe = false
                    if case .probe = action { probe = true }
                    outcome = device.poll(
                        over: link, bus: bus, probe: probe,
                        pause: { [self] t in
                            markProgress(); Self.pause(t)
                        })
                    if let note = (link as? LibmodbusLink)?.takeRS485Note() {
                        logger.warning("\(bus.device ?? bus.name): \(note)", metadata: ["bus": "\(bus.name)"])
                    }
                    Self.pause(bus.interFrameDelay)
                } else {
                    outcome = DevicePoller.Outcome(readings: [], answered: false, errors: [])
                }
                condition.lock()
                devices[i] = device
                let transition = scheduler.completed(i, answered: outcome.answered, now: SystemClock.monotonicMillis())
                let online = scheduler.devices[i].online
                switch transition {
                case .wentOffline: offlineSinceWall[i] = SystemClock.wallMillis()
                case .cameBack: offlineSinceWall[i] = nil
                case nil: break
                }
                condition.unlock()
                log(device, outcome, transition)
                report(
                    PollReport(
                        bus: bus.name, device: device.config.name, readings: outcome.readings,
                        transition: transition, online: online, errors: outcome.errors))
            }
        }
    }

    /// The bus thread's link, made if there is none yet (nil, logged, when it cannot be made).
    private func connected(_ link: inout (any ModbusLink)?) -> (any ModbusLink)? {
        if link == nil {
            do { link = try makeLink() } catch { logger.error("\(error)", metadata: ["bus": "\(bus.name)"]) }
        }
        return link
    }

    /// How long until a collection is due (under `condition`).
    private func efmWaitMillis(now: Int64) -> Int64 {
        efmDue.compactMap { $0 }.map { $0 <= now ? 0 : $0 - now }.min() ?? .max
    }

    private func log(_ d: DevicePoller, _ o: DevicePoller.Outcome, _ t: PollScheduler.Transition?) {
        let meta: Logger.Metadata = ["bus": "\(bus.name)", "device": "\(d.config.name)", "unit": "\(d.config.unit)"]
        switch t {
        case .wentOffline:
            logger.warning(
                "\(d.config.name) offline after \(d.config.offlineAfter) failed polls: \(o.errors.last.map { "\($0)" } ?? "no link")",
                metadata: meta)
        case .cameBack:
            logger.notice("\(d.config.name) answering again", metadata: meta)
        case nil:
            // Repeated errors of an online device are logged at debug; the transitions above carry the news.
            for e in o.errors { logger.debug("\(e)", metadata: meta) }
        }
    }

    static func pause(_ t: TimeSpan) {
        guard t.milliseconds > 0 else { return }
        var ts = timespec(tv_sec: Int(t.milliseconds / 1000), tv_nsec: Int((t.milliseconds % 1000) * 1_000_000))
        var rest = timespec()
        while nanosleep(&ts, &rest) != 0 && errno == EINTR { ts = rest }
    }
}
