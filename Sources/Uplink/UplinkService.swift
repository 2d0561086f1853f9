import EdgeBuffer
import EdgeCore
import EdgeRuntime
import Foundation
import Logging
import ModbusPoller
import ServiceLifecycle

/// What `edgectl uplink` shows.
public struct UplinkStatus: Sendable, Codable {
    public var state = "starting"
    public var endpoint = ""
    public var lastSuccessMillis: Int64?
    public var lastAttemptMillis: Int64?
    public var lastError: String?
    public var batchesSent = 0
    public var recordsAcknowledged = 0
    public var bytesSent: Int64 = 0
    public var bytesReceived: Int64 = 0
    public var deadLetterBatches = 0
    public var nextAttemptMillis: Int64?
    public var batchRecordsLimit = 0
    /// The uplink's own alarms that are active now (`uplink-unauthorized`, `uplink-tls`, …), sorted.
    public var alarms: [String] = []
    /// The calendar month (UTC, `YYYY-MM`) and the bytes spent on the wire in it (requests and responses of
    /// every attempt, as libcurl counts them: headers and bodies, not TLS framing).
    public var month = ""
    public var monthBytes: Int64 = 0
    /// `uplink.monthlyBudget` in bytes, if set.
    public var monthlyBudget: Int64?
    /// `normal`, or `saving` near the budget's cap (alarms, gaps and hourly snapshots only).
    public var dataBudgetMode = DataBudgetMode.normal.rawValue
    /// Readings dropped this run to stay under the data budget (each drop leaves a `data-budget` gap record).
    public var readingsDroppedForBudget: Int64 = 0
    public init() {}
}

/// A change of one of the uplink's own alarms, for the gateway to store as a `system` alarm event.
public struct UplinkAlarmChange: Sendable, Equatable {
    public var name: String
    public var raised: Bool
    public var priority: AlarmPriority
    public var reason: String
}

/// The upload loop: takes the next batch from the buffer, sends it, and does what the `UplinkMachine` says
/// with the answer. Records are deleted only after a 2xx.
///
/// Two lanes, each with its own `UplinkMachine` (batch size, dead letters, alarms); when the endpoint may be
/// tried is the `UplinkScheduler`'s, for both (sync protocol §7):
/// - alarm events go at once, in requests of their own, first whenever the endpoint may be tried (an
///   alarm wake-up ends any wait that is not the endpoint's own backoff or Retry-After);
/// - readings wait up to `batch.maxAge` to fill a batch of `batch.maxRecords` records whose JSON body stays
///   within `batch.maxBytes`;
/// - while a backlog drains, the next batch is read and encoded while the current one is in flight, and the
///   acknowledged one is deleted meanwhile too, so the drain goes at the server's pace.
// Guard: `lock` protects `_status` and `rejectedAcknowledged`; the rest is immutable after init.
public final class UplinkService: Service, @unchecked Sendable {
    /// The configuration in force (it changes on reload) and the buffer to drain.
    public struct Source: Sendable {
        public var config: @Sendable () async -> EdgeConfig
        public var store: BufferStore
        /// Stores a change of the uplink's own alarms as a `system` alarm event (the alarm lane).
        public var alarm: @Sendable (UplinkAlarmChange) async -> Void
        /// The uplink alarms that stand from before a restart (their clears are still owed).
        public var standing: @Sendable () async -> Set<String>
        public init(
            config: @escaping @Sendable () async -> EdgeConfig, store: BufferStore,
            alarm: @escaping @Sendable (UplinkAlarmChange) async -> Void = { _ in },
            standing: @escaping @Sendable () async -> Set<String> = { [] }
        ) {
            self.config = config; self.store = store; self.alarm = alarm; self.standing = standing
        }
    }
    /// The buffer-file state key of the month's data usage.
    static let usageKey = "uplink-usage"
    /// The system alarm raised while the data budget is saving.
    public static let dataBudgetAlarm = "uplink-data-budget"
    private let wakeStream: AsyncStream<Void>
    let logger: Logger
    // Guard: `lock` protects `_status` and `rejectedAcknowledged`.
    private let lock = NSLock()
    private let source: Source
    /// Wakes the loop early: an alarm event was committed, or shutdown began.
    public let wake = WakeSignal()
    private var _status = UplinkStatus()
    public var status: UplinkStatus { lock.withLock { _status } }
    func update(_ f: (inout UplinkStatus) -> Void) { lock.withLock { f(&_status) } }
    /// Waits are drawn from here (tests inject a fixed one).
    let random: @Sendable (ClosedRange<Int64>) -> Int64

    public init(
        source: Source, wake: AsyncStream<Void>, logger: Logger,
        random: @escaping @Sendable (ClosedRange<Int64>) -> Int64 = { Int64.random(in: $0) }
    ) {
        self.source = source
        self.wakeStream = wake
        self.logger = logger
        self.random = random
    }

    /// An operator has looked at the dead letters (`edgectl uplink ack-rejected`): the
    /// `uplink-rejected-batch` alarm clears (it is raised again by the next rejected batch). Returns whether
    /// it was standing.
    @discardableResult
    public func acknowledgeRejected() -> Bool {
        let standing = lock.withLock { () -> Bool in
            rejectedAcknowledged = true
            return _status.alarms.contains(UplinkAlarm.rejectedBatch.rawValue)
        }
        wake.signal()
        return standing
    }
    private var rejectedAcknowledged = false

    /// Whether an operator acknowledged the dead letters since the loop last asked.
    func takeRejectedAcknowledgement() -> Bool {
        lock.withLock {
            defer { rejectedAcknowledged = false }
            return rejectedAcknowledged
        }
    }

    public func run() async throws {
        let gateway = source
        // Forward alarm wake-ups into the signal the loop waits on.
        let forward = Task { [wake, wakeStream] in for await _ in wakeStream { wake.signal() } }
        defer { forward.cancel() }
        await withGracefulShutdownHandler {
            await loop(gateway)
        } onGracefulShutdown: { [wake] in
            wake.signal()
        }
    }

    /// One lane's batch size, dead letters and alarms.
    struct Lane {
        let name: String
        var machine: UplinkMachine
        /// How many records fitted in `batch.maxBytes` the last time that bound decided (nil: the record
        /// limit decides). Without it every batch would read and encode `batchRecords` records to keep a few.
        var bodyFit: Int?
        init(_ name: String, maxRecords: Int) { self.name = name; machine = UplinkMachine(maxBatchRecords: maxRecords) }

        /// Records to offer for the next batch: the record limit, or a little more than fitted last time.
        var offer: Int { min(machine.batchRecords, bodyFit.map { $0 + $0 / 4 + 1 } ?? .max) }

        /// Learns from a prepared batch whether the body bound decided.
        mutating func noteFit(_ p: Prepared) {
            if p.batch.count < p.offered {
                bodyFit = p.batch.count
            } else if let f = bodyFit, p.batch.count >= f {
                bodyFit = p.batch.count * 2 >= machine.batchRecords ? nil : p.batch.count * 2
            }
        }
    }

    /// What the loop carries from one batch to the next; replaced when the configuration changes.
    struct Session {
        var config: EdgeConfig
        var client: SyncClient
        var alarms: Lane
        var readings: Lane
        /// The deletion of the last acknowledged readings batch, still committing.
        var pendingAck: Task<Void, Never>?
        /// While the data budget saves: which readings are hourly snapshots.
        var snapshots = HourlySnapshots()
        var books: Books
        init(_ config: EdgeConfig, books: Books) {
            self.books = books
            self.config = config
            client = SyncClient(
                uplink: config.uplink,
                encoder: BatchEncoder(sender: UplinkService.sender(config), formats: BatchEncoder.formats(for: config)))
            alarms = Lane("alarm lane", maxRecords: config.uplink.batch.maxRecords)
            readings = Lane("readings", maxRecords: config.uplink.batch.maxRecords)
        }

        /// The session for a reloaded configuration. When the endpoint and the token stay, the lanes keep
        /// their batch size and alarms (unless the batch size changed) and the scheduler its backoff.
        func reloaded(_ new: EdgeConfig, nowMillis: Int64) -> Session {
            var next = Session(new, books: books)
            let same = new.uplink.endpoint == config.uplink.endpoint && new.uplink.token == config.uplink.token
            next.books.scheduler.reloaded(endpointOrTokenChanged: !same, nowMillis: nowMillis)
            if same && new.uplink.batch.maxRecords == config.uplink.batch.maxRecords {
                next.alarms = alarms
                next.readings = readings
            }
            return next
        }
        var activeAlarms: [String] {
            alarms.machine.activeAlarms.union(readings.machine.activeAlarms).map(\.rawValue).sorted()
        }
    }

    /// What the loop keeps across configuration changes: the month's data usage and the alarms it has
    /// reported to the gateway.
    struct Books {
        var usage: DataUsage
        var usageSavedAt = ContinuousClock.now
        var usageDirty = false
        /// Uplink alarms raised as system alarm events and not cleared yet.
        var published: Set<String>
        /// The latest reason given for each alarm the machines raised.
        var reasons: [String: String] = [:]
        /// When the endpoint may be tried, for both lanes; kept across reloads that keep endpoint and token.
        var scheduler = UplinkScheduler()
    }
}
