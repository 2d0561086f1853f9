import EdgeBuffer
import EdgeCore
import EdgeRuntime
import Foundation
import Logging
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
    /// Requests sent (batches, not probes) and those answered 2xx, since edged started; the last round trip.
    public var attempts = 0
    public var attemptsStored = 0
    public var lastRoundTripMillis: Int64?
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

/// The upload loop's I/O shell: it reads the buffer, sends batches, deletes and dead-letters, and sleeps —
/// each time as the `UplinkScheduler` (EdgeCore) answers the last thing that happened. Records are deleted
/// only after a 2xx.
///
/// What the scheduler decides (sync protocol §7):
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
    public static let dataBudgetAlarm = UplinkScheduler.dataBudgetAlarm
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
}
