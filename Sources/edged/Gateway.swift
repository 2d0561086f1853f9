import EdgeBuffer
import EdgeCore
import EdgeRuntime
import Foundation
import Logging
import ModbusPoller
import ServiceLifecycle
import Synchronization
import Uplink

/// The running gateway: configuration, buffer, alarm engine and the latest values. Poll reports arrive
/// from the bus threads through `reports`; everything that changes state goes through this actor.
actor Gateway {
    let logger: Logger
    private(set) var loaded: LoadedConfig
    var config: EdgeConfig { loaded.config }
    let store: BufferStore
    let polling: PollingSupervisor
    private var engine: AlarmEngine
    private var rbe: ReportByException
    /// Last reading of every device.tag, for `status`, `tail` and conditions.
    private(set) var latest: [String: Reading] = [:]
    /// Open alarm occurrences: alarm point id → occurrence id sent to the server.
    private var occurrences: [String: String]
    /// Poll reports from the bus threads, in arrival order; what it drops is counted as not stored.
    nonisolated let reports: PollReportQueue
    /// Readings the bus threads produced and readings the report queue dropped, counted where they happen
    /// (off this actor): with `stats` they account for every reading polled.
    nonisolated let intake: IntakeCounters
    /// Wakes the uplink when an alarm event is committed (the fast lane).
    let uplinkWake: AsyncStream<Void>.Continuation
    private let uplinkWakeStream: AsyncStream<Void>
    nonisolated let ingestService: IngestService
    nonisolated let uplinkService: UplinkService
    private(set) var stats = IngestStats()
    let startedWallMillis = PollClock.wallMillis()
    /// `storage.stuckAfter` in ms, readable without a hop onto this actor: the watchdog decides on in-memory
    /// state alone, whatever the actor is waiting for.
    nonisolated let writerStuckAfterMillis: Mutex<Int64>

    struct IngestStats: Sendable, Codable {
        var reports = 0
        /// Readings ingest took from the report queue.
        var readingsSeen = 0
        /// Of those, readings report-by-exception (or an unknown tag) kept out of the buffer.
        var readingsSuppressed = 0
        /// Readings the buffer committed, and readings it did not store (counted in a gap record).
        var readingsStored = 0
        var readingsNotStored = 0
        var alarmEvents = 0
        var storeErrors = 0
        var lastStoreError: String?
    }

    /// Readings polled by the bus threads and dropped before ingest.
    struct Intake: Sendable {
        var readingsPolled = 0
        var readingsDropped = 0
    }

    /// `Intake` behind its lock, shared by the bus threads' sink and the report queue.
    final class IntakeCounters: Sendable {
        private let counts = Mutex(Intake())
        func withLock<T>(_ body: (inout Intake) -> T) -> T { counts.withLock { body(&$0) } }
    }

    /// Reports that may wait for ingest: about 10 s of 1,000 devices polled every second.
    static let reportQueueCapacity = 10_000

    /// Persisted alarm engine state with the open occurrence ids, kept in the buffer file and written in the
    /// same transaction as the alarm events that changed it.
    struct AlarmState: Codable {
        var snapshot: AlarmSnapshot
        var occurrences: [String: String]
        /// Standing system alarms (buffer, uplink) → occurrence id.
        var system: [String: String]?
        static let key = "alarms"
    }

    private init(loaded: LoadedConfig, store: BufferStore, logger: Logger, engine: AlarmEngine, occurrences: [String: String],
                 systemOccurrences: [String: String]) {
        self.systemOccurrences = systemOccurrences
        self.loaded = loaded
        self.store = store
        self.logger = logger
        self.engine = engine
        self.occurrences = occurrences
        self.rbe = ReportByException(config: loaded.config)
        self.writerStuckAfterMillis = Mutex(loaded.config.storage.stuckAfter.milliseconds)
        let intake = IntakeCounters()
        self.intake = intake
        let reports = PollReportQueue(capacity: Self.reportQueueCapacity) { [store, logger] dropped in
            // Ingest fell this far behind: the readings are named by an io-error gap record (readings that
            // waited longer than the gateway's bound), never dropped silently.
            let first = intake.withLock { i -> Bool in
                defer { i.readingsDropped += dropped.readings.count }
                return i.readingsDropped == 0
            }
            store.countNotStored(dropped.readings, reason: .ioError)
            if first { logger.error("ingest is behind by \(Self.reportQueueCapacity) poll reports: the oldest are dropped and counted in a gap record") }
        }
        self.reports = reports
        self.polling = PollingSupervisor(logger: logger, sink: { report in
            intake.withLock { $0.readingsPolled += report.readings.count }
            reports.push(report)
        })
        let (wake, wakeCont) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.uplinkWake = wakeCont
        self.uplinkWakeStream = wake
        self.ingestService = IngestService(reports: reports)
        self.uplinkService = UplinkService(wake: wake, logger: logger)
    }

    /// Opens the buffer (quarantining a corrupt file), restores alarm state, and starts polling.
    static func start(loaded: LoadedConfig, logger: Logger) async throws -> Gateway {
        let c = loaded.config
        let dir = (c.storage.path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let (store, notes) = try BufferStore.open(path: c.storage.path, maxBytes: c.storage.maxBytes, logger: logger,
                                                  options: BufferOptions(retention: c.storage.retention))
        for n in notes { logger.warning("\(n)") }
        let now = PollClock.wallMillis()
        var engine = AlarmEngine(config: c, now: now)
        var occurrences: [String: String] = [:]
        var system: [String: String] = [:]
        var restored: [AlarmEvent] = []
        do {
            if let text = try store.state(AlarmState.key) {
                let state = try JSONDecoder().decode(AlarmState.self, from: Data(text.utf8))
                restored = engine.restore(state.snapshot)
                occurrences = state.occurrences
                system = state.system ?? [:]
                logger.info("alarm state restored: \(engine.active.count) active")
            }
        } catch {
            // Alarms start from scratch: what stands is raised again with a new occurrence.
            logger.error("alarm state in \(c.storage.path) unreadable (\(error)); alarms start from scratch")
        }
        let g = Gateway(loaded: loaded, store: store, logger: logger, engine: engine, occurrences: occurrences, systemOccurrences: system)
        g.uplinkService.attach(UplinkService.Source(
            config: { [weak g] in await g?.config ?? c }, store: store,
            alarm: { [weak g] change in
                await g?.raiseSystem(change.name, change.raised ? .raised : .cleared, priority: change.priority, reason: change.reason)
            },
            standing: { [weak g] in await g?.standingSystemAlarms ?? [] }))
        await g.ingestService.attach(g)
        await g.commitEvents(restored)
        // A corrupt file was moved aside: tell the operator and the server (the old epoch's data is kept).
        for n in notes where n.contains("moved") || n.contains("corrupt") {
            await g.raiseSystem("buffer-recovered", .raised, priority: .high, reason: n)
        }
        await g.polling.apply(c)
        return g
    }

    // MARK: ingest

    /// Takes one poll report: latest values, alarms, report-by-exception, and the readings into the
    /// buffer's queue. Never waits on the disk (alarm events and readings are queued for their commit in
    /// order), so a hung disk does not back up the report queue.
    func ingest(_ report: PollReport) {
        stats.reports += 1
        let now = PollClock.wallMillis()
        for r in report.readings { latest["\(r.device).\(r.tag)"] = r }
        var events: [AlarmEvent] = []
        if let t = report.transition {
            let online: Bool = if case .cameBack = t { true } else { false }
            events += engine.deviceComm(report.device, online: online, now: now)
        }
        events += engine.ingest(report.readings, now: now)
        commit(events)
        // Report-by-exception decides what is stored; every reading still counts as seen.
        let tags = config.device(named: report.device).map { config.effectiveTags(of: $0) } ?? []
        let byName = Dictionary(tags.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var keep: [Reading] = []
        // The readings were timed a few milliseconds ago: flag them if the clock is not synchronized now.
        let synchronized = ClockStatus.isSynchronized()
        for var r in report.readings {
            guard let tag = byName[r.tag] else { continue }
            r.clockSynchronized = synchronized
            if rbe.admit(r, tag: tag) { keep.append(r) }
        }
        stats.readingsSeen += report.readings.count
        stats.readingsSuppressed += report.readings.count - keep.count
        guard !keep.isEmpty else { return }
        // Queued, not awaited: the next report joins the same group commit.
        let n = keep.count
        store.enqueue(readings: keep, units: { _, t in byName[t]?.units }) { [weak self] result in
            Task { await self?.appended(n, result.map { _ in () }) }
        }
    }

    private func appended(_ n: Int, _ result: Result<Void, BufferError>) async {
        switch result {
        case .success: await stored(n)
        case .failure(let e):
            stats.readingsNotStored += n
            await storeFailed(e)
        }
    }

    private func stored(_ n: Int) async {
        stats.readingsStored += n
        if systemOccurrences["buffer-not-stored"] != nil {
            await raiseSystem("buffer-not-stored", .cleared, priority: .high, reason: "readings are stored again")
        }
    }
    private func storeFailed(_ e: any Error) async {
        stats.storeErrors += 1
        stats.lastStoreError = "\(e)"
        logger.error("buffer: \(e)")
        if systemOccurrences["buffer-not-stored"] == nil {
            await raiseSystem("buffer-not-stored", .raised, priority: .high,
                              reason: "readings could not be stored (\(e)); they are counted in a gap record")
        }
    }

    /// The gateway's own alarms (kind `system` in the sync protocol) that stand, with their occurrence ids:
    /// buffer health and the uplink's alarms. Kept with the alarm state, so a restart neither raises them
    /// twice nor forgets to clear them.
    private var systemOccurrences: [String: String]
    var standingSystemAlarms: Set<String> { Set(systemOccurrences.keys) }

    /// Stores a system alarm's transition in the alarm lane (with the alarm state, in one transaction) and
    /// wakes the uplink. A raise of a standing alarm, or a clear of one that does not stand, is ignored.
    func raiseSystem(_ name: String, _ transition: AlarmTransition, priority: AlarmPriority, reason: String) async {
        let standing = systemOccurrences[name]
        if transition == .raised && standing != nil || transition == .cleared && standing == nil { return }
        let occurrence = standing ?? UUID().uuidString.lowercased()
        systemOccurrences[name] = transition == .cleared ? nil : occurrence
        let record = AlarmEventRecord(alarm: name, occurrence: occurrence, kind: "system", device: config.gateway.id, tag: nil,
                                      transition: transition, priority: priority.rawValue, value: nil, limit: nil, reason: reason,
                                      wallMillis: PollClock.wallMillis(), by: "edged", clockSynchronized: ClockStatus.isSynchronized())
        logger.warning("system alarm \(name) \(transition.rawValue): \(reason)", metadata: ["alarm": "\(name)"])
        do {
            _ = try await store.append(alarms: [record], state: alarmState())
            uplinkWake.yield()
        } catch {
            logger.error("buffer: cannot store the \(name) alarm: \(error)")
        }
    }

    /// Alarm timers: on/off delays, stale values, shelving expiry.
    func tickAlarms() {
        commit(engine.tick(now: PollClock.wallMillis()))
    }

    /// Commits alarm events and waits until they are stored (or failed).
    func commitEvents(_ events: [AlarmEvent]) async {
        guard !events.isEmpty else { return }
        await withCheckedContinuation { c in commit(events) { c.resume() } }
    }

    /// Queues alarm events for an immediate commit to the alarm lane, with the engine state in the same
    /// transaction, without waiting for it; once committed the uplink is woken and `done` called. Queued in
    /// the order of the calls, so the state stored with each group matches its events.
    private func commit(_ events: [AlarmEvent], done: (@Sendable () -> Void)? = nil) {
        guard !events.isEmpty else { done?(); return }
        var records: [AlarmEventRecord] = []
        let synchronized = ClockStatus.isSynchronized()
        for e in events {
            let occurrence: String
            switch e.transition {
            case .raised:
                occurrence = UUID().uuidString.lowercased()
                occurrences[e.id] = occurrence
            default:
                occurrence = occurrences[e.id] ?? UUID().uuidString.lowercased()
                if e.transition == .cleared { occurrences[e.id] = nil }
            }
            records.append(AlarmEventRecord(
                alarm: e.alarm, occurrence: occurrence, kind: e.kind.rawValue, device: e.device, tag: e.tag, level: e.level?.rawValue,
                transition: e.transition,
                priority: e.priority.rawValue, value: e.value, limit: e.limit, reason: e.reason, wallMillis: e.wallMillis,
                by: e.by ?? "edged", until: e.transition == .shelved ? e.shelvedUntil : nil, clockSynchronized: synchronized))
            logger.notice("alarm \(e.alarm) \(e.transition.rawValue): \(e.reason)",
                          metadata: ["alarm": "\(e.alarm)", "device": "\(e.device)", "priority": "\(e.priority.rawValue)"])
        }
        let n = records.count
        store.enqueue(alarms: records, state: alarmState()) { [weak self, uplinkWake] result in
            uplinkWake.yield()
            Task {
                await self?.alarmsCommitted(n, result.map { _ in () })
                done?()
            }
        }
    }

    private func alarmsCommitted(_ n: Int, _ result: Result<Void, BufferError>) async {
        switch result {
        case .success: stats.alarmEvents += n
        case .failure(let e): await storeFailed(e)
        }
    }

    /// The alarm engine's state as stored in the buffer file.
    private func alarmState() -> StateEntry? {
        let state = AlarmState(snapshot: engine.snapshot, occurrences: occurrences, system: systemOccurrences)
        guard let data = try? JSONEncoder().encode(state) else { return nil }
        return StateEntry(key: AlarmState.key, value: String(decoding: data, as: UTF8.self))
    }

    /// Saves the alarm engine's state alone (timers and health move without events).
    private func saveAlarmState() async {
        do {
            _ = try await store.append(alarms: [], state: alarmState())
        } catch {
            logger.error("buffer: cannot save the alarm state: \(error)")
        }
    }

    // MARK: operator commands

    func acknowledge(_ id: String, by: String) async throws(AlarmCommandError) {
        let events = try engine.acknowledge(id, by: by, now: PollClock.wallMillis())
        await commitEvents(events)
    }
    func shelve(_ id: String, for span: TimeSpan, by: String) async throws(AlarmCommandError) {
        let events = try engine.shelve(id, for: span, by: by, now: PollClock.wallMillis())
        await commitEvents(events)
    }
    func unshelve(_ id: String, by: String) async throws(AlarmCommandError) {
        let events = try engine.unshelve(id, by: by, now: PollClock.wallMillis())
        await commitEvents(events)
    }

    var activeAlarms: [AlarmStatus] { engine.active }
    func alarmHealth() -> AlarmHealth { engine.health(now: PollClock.wallMillis()) }

    // MARK: reload

    /// Applies a new, already validated configuration with the least disruption: unchanged buses keep their
    /// threads and connections, the buffer is untouched, unchanged alarms keep their state.
    func reload(_ newLoaded: LoadedConfig) async {
        let snapshot = engine.snapshot
        let (old, new) = (config.storage, newLoaded.config.storage)
        if old.path != new.path || old.maxBytes != new.maxBytes || old.retention != new.retention {
            logger.warning("storage.path, maxBytes and retention take effect when edged restarts; the buffer keeps running as it was opened (\(old.path), \(old.maxBytes), retention \(old.retention))")
        }
        writerStuckAfterMillis.withLock { $0 = new.stuckAfter.milliseconds }
        loaded = newLoaded
        engine = AlarmEngine(config: newLoaded.config, now: PollClock.wallMillis())
        let events = engine.restore(snapshot)
        rbe = ReportByException(config: newLoaded.config)
        await polling.apply(newLoaded.config)
        commit(events)
        await saveAlarmState()
        // The uplink picks up the new configuration (and a replaced token) now, not after its backoff.
        uplinkWake.yield()
    }

    // MARK: status

    /// systemd's STATUS= line, from memory (the buffer's counts live there; no read of the file).
    func statusLine() -> String {
        let devices = polling.status()
        let online = devices.filter(\.online).count
        let b = store.rememberedStats().stats
        return "\(online)/\(devices.count) devices online, backlog \(b.alarmRecords + b.readingRecords), \(engine.active.count) active alarms"
    }

    /// Stops polling, ingests every report still queued (their readings and alarm events join the
    /// buffer's queue), saves the alarm state and closes the buffer, which commits all that is queued.
    func shutdown() async {
        await polling.stopAll()
        for report in reports.finish() { ingest(report) }
        uplinkWake.finish()
        await saveAlarmState()
        store.close()
    }
}

/// Feeds poll reports into the gateway, and ticks the alarm timers every second. On graceful shutdown it
/// stops taking reports; `Gateway.shutdown` ingests what is left once the bus threads have stopped.
final class IngestService: Service, @unchecked Sendable {
    private let reports: PollReportQueue
    private var gateway: Gateway?
    init(reports: PollReportQueue) { self.reports = reports }
    func attach(_ g: Gateway) async { gateway = g }

    func run() async throws {
        guard let gateway else { return }
        let reports = self.reports
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withGracefulShutdownHandler {
                    while let report = await reports.next() { await gateway.ingest(report) }
                } onGracefulShutdown: {
                    reports.stopWaiting()
                }
            }
            group.addTask {
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await Task.sleep(for: .seconds(1))
                    await gateway.tickAlarms()
                }
            }
            await group.next()
            group.cancelAll()
        }
    }
}
