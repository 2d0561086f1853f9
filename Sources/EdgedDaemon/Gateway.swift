import EdgeBuffer
import EdgeCore
import EdgeRuntime
import EdgeSystem
import Foundation
import Logging
import ModbusPoller

/// The running gateway's state: configuration, alarm engine, report-by-exception and the latest values.
/// Poll reports reach it through `reports` (IngestService); everything that changes this state goes through
/// the actor, and nothing on it waits on the disk or a bus (appends are queued, buses stop on the
/// supervisor's thread). Its services — buffer, polling, ingest, uplink, notify, reload, control — are
/// built around it in `EdgedCommand` and run in one ServiceGroup.
actor Gateway {
    let logger: Logger
    var loaded: LoadedConfig
    var config: EdgeConfig { loaded.config }
    let store: BufferStore
    nonisolated let polling: PollingSupervisor
    var engine: AlarmEngine
    var rbe: ReportByException
    /// Last reading of every device.tag, for `status`, `tail` and conditions.
    var latest: [String: Reading] = [:]
    /// Open alarm occurrences: alarm point id → occurrence id sent to the server.
    var occurrences: [AlarmID: String]
    /// The gateway's own alarms (kind `system` in the sync protocol) that stand, with their occurrence ids:
    /// buffer health and the uplink's alarms. Kept with the alarm state, so a restart neither raises them
    /// twice nor forgets to clear them.
    var systemOccurrences: [AlarmID: String]
    /// Poll reports from the bus threads, in arrival order; what it drops is counted as not stored.
    nonisolated let reports: PollReportQueue
    /// Readings the bus threads produced and readings the report queue dropped, counted where they happen
    /// (off this actor): with `stats` they account for every reading polled.
    nonisolated let intake: Locked<Intake>
    /// Wakes the uplink when an alarm event is committed (the fast lane), and the stream it waits on.
    nonisolated let uplinkWake: AsyncStream<Void>.Continuation
    nonisolated let uplinkWakeStream: AsyncStream<Void>
    var stats = IngestStats()
    nonisolated let startedWallMillis = SystemClock.wallMillis()
    /// `storage.stuckAfter` in ms, readable without a hop onto this actor: the watchdog decides on in-memory
    /// state alone, whatever the actor is waiting for.
    nonisolated let writerStuckAfterMillis: Locked<Int64>

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

    /// Reports that may wait for ingest: about 10 s of 1,000 devices polled every second.
    static let reportQueueCapacity = 10_000
    /// The system alarm raised while readings cannot be stored.
    static let notStoredAlarm = AlarmID(rule: "buffer-not-stored")

    /// Persisted alarm engine state with the open occurrence ids, kept in the buffer file and written in the
    /// same transaction as the alarm events that changed it.
    struct AlarmState: Codable {
        var snapshot: AlarmSnapshot
        var occurrences: [AlarmID: String]
        /// Standing system alarms (buffer, uplink) → occurrence id.
        var system: [AlarmID: String]?
        static let key = "alarms"
    }

    /// The gateway over an open buffer, with the alarm state read from it (`restored`; nil: none, or
    /// unreadable). Returns it with the events the restored engine owes (timers that ran out meanwhile),
    /// to be committed before polling starts. Polling starts with `PollingService`.
    static func make(loaded: LoadedConfig, store: BufferStore, restored: AlarmState?, logger: Logger) -> (
        Gateway, [AlarmEvent]
    ) {
        var engine = AlarmEngine(config: loaded.config, now: SystemClock.wallMillis())
        var owed: [AlarmEvent] = []
        if let restored {
            owed = engine.restore(restored.snapshot)
            logger.info("alarm state restored: \(engine.active.count) active")
        }
        let g = Gateway(
            loaded: loaded, store: store, logger: logger, engine: engine, occurrences: restored?.occurrences ?? [:],
            systemOccurrences: restored?.system ?? [:])
        g.polling.efmEvents.withLock { sink in
            sink = { [weak g] device, records in Task { await g?.deviceEvents(device, records) } }
        }
        return (g, owed)
    }

    /// Reads the alarm state kept in the buffer file (blocking SQLite: call it on a worker thread). An
    /// unreadable state is logged: alarms then start from scratch, and what stands is raised again.
    static func readAlarmState(_ store: BufferStore, logger: Logger) -> AlarmState? {
        do {
            guard let text = try store.state(AlarmState.key) else { return nil }
            return try JSONDecoder().decode(AlarmState.self, from: Data(text.utf8))
        } catch {
            logger.error("alarm state in \(store.path) unreadable (\(error)); alarms start from scratch")
            return nil
        }
    }

    private init(
        loaded: LoadedConfig, store: BufferStore, logger: Logger, engine: AlarmEngine, occurrences: [AlarmID: String],
        systemOccurrences: [AlarmID: String]
    ) {
        self.systemOccurrences = systemOccurrences
        self.loaded = loaded
        self.store = store
        self.logger = logger
        self.engine = engine
        self.occurrences = occurrences
        self.rbe = ReportByException(config: loaded.config)
        self.writerStuckAfterMillis = Locked(loaded.config.storage.stuckAfter.milliseconds)
        let intake = Locked(Intake())
        self.intake = intake
        let reports = PollReportQueue(capacity: Self.reportQueueCapacity) { [store, logger] dropped in
            // Ingest fell this far behind: the readings are named by an io-error gap record (readings that
            // waited longer than the gateway's bound), never dropped silently.
            let first = intake.withLock { i -> Bool in
                defer { i.readingsDropped += dropped.readings.count }
                return i.readingsDropped == 0
            }
            store.countNotStored(dropped.readings, reason: .ioError)
            if first {
                logger.error(
                    "ingest is behind by \(Self.reportQueueCapacity) poll reports: the oldest are dropped and counted in a gap record"
                )
            }
        }
        self.reports = reports
        let (wakeStream, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (uplinkWakeStream, uplinkWake) = (wakeStream, wake)
        self.polling = PollingSupervisor(
            logger: logger, store: store, efmStored: { wake.yield() },
            sink: { report in
                intake.withLock { $0.readingsPolled += report.readings.count }
                reports.push(report)
            })
    }
}
