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

    private var running: Bool { !Task.isShuttingDownGracefully && !Task.isCancelled }

    /// Batches of readings read at once while draining a backlog.
    static let readAhead = 2

    /// The lanes' next records, as read from the buffer for one turn of the loop.
    struct Round: Sendable {
        var epoch: String
        var alarms: [BufferedRecord]
        /// The next reading-lane records, in seq order; while a backlog drains, up to `readAhead` batches.
        var readings: [BufferedRecord]
        /// The readings batch, already encoded while the previous batch was in flight (nil: encode it now).
        var prepared: Prepared?
    }

    private func loop(_ gateway: Source) async {
        let store = gateway.store
        let books = Books(
            usage: await Self.loadUsage(store, logger: logger),
            published: await gateway.standing().filter { $0.hasPrefix("uplink-") })
        var session = Session(await gateway.config(), books: books)
        var mode = DataBudgetMode.normal
        // While a full batch of readings is in flight, the next one is read and encoded (a backlog drains at the
        // pace of the server, not of the server plus the buffer plus the encoder). Used only if that batch is
        // acknowledged: its read-ahead assumed the batch's records gone.
        var ahead: Task<Round?, Never>?
        update {
            $0.endpoint = session.config.uplink.endpoint; $0.state = "idle"
        }
        while running {
            // Pick up a reloaded configuration.
            let current = await gateway.config()
            if current != session.config {
                await session.pendingAck?.value
                session = session.reloaded(current, nowMillis: PollClock.monotonicMillis())
                ahead?.cancel(); ahead = nil
                let alarms = session.activeAlarms
                update {
                    $0.endpoint = current.uplink.endpoint; $0.alarms = alarms
                }
            }
            let limits = session.config.uplink.batch
            update { $0.batchRecordsLimit = session.readings.machine.batchRecords }
            // The month's data usage: save it now and then, and save data near the cap.
            let newMode = budget(&session)
            if newMode != mode {
                mode = newMode
                if mode == .saving { session.snapshots = HourlySnapshots() }
                await reconcileAlarms(&session, gateway, mode: mode)
            }
            await saveUsage(&session, store: store, force: false)
            // An operator acknowledged the dead letters: the rejected-batch alarm clears.
            if lock.withLock({ () -> Bool in
                defer { rejectedAcknowledged = false }; return rejectedAcknowledged
            }) {
                for action in session.alarms.machine.acknowledgeRejected()
                    + session.readings.machine.acknowledgeRejected()
                {
                    if case .clearAlarm(let a) = action {
                        logger.notice("uplink alarm \(a.rawValue) acknowledged by an operator")
                    }
                }
                await reconcileAlarms(&session, gateway, mode: mode)
                let alarms = session.activeAlarms
                update { $0.alarms = alarms }
            }
            // A refused token that has since been replaced (a field tech fixed it): retry now.
            if session.books.scheduler.tokenRefused, let token = try? TokenLoader.load(session.config.uplink.token),
                session.books.scheduler.tokenSeen(token, nowMillis: PollClock.monotonicMillis())
            {
                logger.notice("uplink: the token changed; retrying now")
            }
            // An alarm event came in: read the buffer afresh rather than use what was read ahead without it.
            if wake.takePending() { ahead?.cancel(); ahead = nil }
            var round = await ahead?.value
            ahead = nil
            // A read-ahead that found nothing is no proof the buffer is empty: read its head.
            if let r = round, r.alarms.isEmpty && r.readings.isEmpty { round = nil }
            if round == nil {
                await session.pendingAck?.value  // read from the head only once deletions are committed
                do {
                    // While saving, read deeper: most of what is read is dropped, not sent.
                    let depth =
                        mode == .saving ? max(1000, session.readings.machine.batchRecords) : session.readings.offer
                    round = try await Self.read(store, maxRecords: depth, after: nil)
                } catch {
                    if !running { break }
                    logger.error("uplink: reading the buffer failed: \(error)")
                    await wake.wait(timeout: .seconds(5))
                    continue
                }
            }
            guard let round, !(round.alarms.isEmpty && round.readings.isEmpty) else {
                update { $0.state = "idle" }
                await wake.wait(timeout: .seconds(max(1, limits.maxAge.seconds)))
                continue
            }
            // Near the data budget's cap: readings other than the hourly snapshots are dropped (with a gap
            // record), then the head of the lane is read again.
            if mode == .saving && !round.readings.isEmpty {
                let (_, drop) = session.snapshots.split(round.readings)
                if !drop.isEmpty {
                    ahead?.cancel(); ahead = nil
                    await session.pendingAck?.value
                    do {
                        if try await store.drop(drop, reason: .dataBudget) != nil {
                            update { $0.readingsDroppedForBudget += Int64(drop.count) }
                        }
                    } catch {
                        if !running { break }
                        logger.error("uplink: dropping readings for the data budget failed: \(error)")
                        await wake.wait(timeout: .seconds(5))
                    }
                    continue
                }
            }
            let now = PollClock.monotonicMillis()
            let batchRecords = session.readings.offer
            // A batch of readings that is neither full nor old enough waits to fill up (alarms never wait).
            // While saving data, a batch of hourly snapshots waits up to an hour.
            var readingsDue: Int64?
            if !round.readings.isEmpty {
                readingsDue = now
                let maxAge = mode == .saving ? max(limits.maxAge.milliseconds, 3_600_000) : limits.maxAge.milliseconds
                if round.readings.count < batchRecords,
                    let oldest = round.readings.compactMap({ $0.reading?.wallMillis }).min()
                {
                    let age = PollClock.wallMillis() - oldest
                    if age < maxAge, !bodyNearlyFull(round.readings, epoch: round.epoch, session: session) {
                        readingsDue = now + maxAge - age
                    }
                }
            }
            switch session.books.scheduler.next(
                nowMillis: now, alarmsWaiting: !round.alarms.isEmpty, readingsDueMillis: readingsDue)
            {
            case .idle:
                update { $0.state = "idle" }
                await wake.wait(timeout: .seconds(max(1, limits.maxAge.seconds)))
            case .sleepUntil(let t):
                let hold = session.books.scheduler.hold, gate = session.books.scheduler.notBeforeMillis
                update {
                    $0.state = hold?.rawValue ?? (mode == .saving ? "saving data" : "filling")
                    $0.nextAttemptMillis = hold == nil ? nil : PollClock.wallMillis() + max(0, gate - now)
                }
                // An alarm wake-up ends the wait; while the endpoint is held the scheduler sends it back to sleep.
                await wake.wait(timeout: .milliseconds(max(0, t - now)))
            case .send(.alarms):
                let records = Array(round.alarms.prefix(session.alarms.machine.batchRecords))
                let prepared = Self.prepare(
                    records, epoch: round.epoch, encoder: session.client.encoder, maxBytes: Int(limits.maxBytes.bytes))
                await send(prepared, lane: \.alarms, session: &session, store: store)
                await reconcileAlarms(&session, gateway, mode: mode)
            case .send(.readings):
                let prepared =
                    round.prepared
                    ?? Self.prepare(
                        Array(round.readings.prefix(batchRecords)), epoch: round.epoch,
                        encoder: session.client.encoder, maxBytes: Int(limits.maxBytes.bytes))
                session.readings.noteFit(prepared)
                let rest = Array(round.readings.dropFirst(prepared.batch.count))
                if round.readings.count >= batchRecords || !rest.isEmpty {
                    ahead = readAhead(
                        after: prepared, rest: rest, batchRecords: batchRecords, session: session, store: store)
                }
                if await !send(prepared, lane: \.readings, session: &session, store: store) {
                    ahead?.cancel(); ahead = nil
                }
                await reconcileAlarms(&session, gateway, mode: mode)
            }
        }
        ahead?.cancel()
        await session.pendingAck?.value
        await saveUsage(&session, store: store, force: true)
        update { $0.state = "stopped" }
    }

    /// While a backlog drains: reads and encodes the next batch while `prepared` is in flight. Its result is
    /// used only if that batch is acknowledged (it assumes the batch's records gone).
    private func readAhead(
        after prepared: Prepared, rest: [BufferedRecord], batchRecords: Int, session: Session,
        store: BufferStore
    ) -> Task<Round?, Never> {
        let last = prepared.batch.readingSeqs?.upperBound ?? 0
        let encoder = session.client.encoder, maxBytes = Int(session.config.uplink.batch.maxBytes.bytes),
            epoch = prepared.batch.epoch
        let deleting = session.pendingAck
        return Task {
            var next: Round
            if rest.count >= batchRecords {
                next = Round(epoch: epoch, alarms: [], readings: rest, prepared: nil)
            } else {
                // The previous batch must be gone from the head first, or it would take the places of the
                // records this read is for.
                await deleting?.value
                // The buffer is read from its head, so a read also returns the batch in flight: reading several
                // batches at once pays for that once per `readAhead` batches.
                let want = prepared.batch.count + Self.readAhead * batchRecords
                guard let fresh = try? await Self.read(store, maxRecords: want, after: last) else { return nil }
                next = fresh
            }
            if next.alarms.isEmpty && next.readings.count >= batchRecords {
                next.prepared = Self.prepare(
                    Array(next.readings.prefix(batchRecords)), epoch: epoch, encoder: encoder, maxBytes: maxBytes)
            }
            return next
        }
    }

    // MARK: - Data budget

    static func loadUsage(_ store: BufferStore, logger: Logger) async -> DataUsage {
        let month = DataUsage.month(ofWallMillis: PollClock.wallMillis())
        do {
            guard let text = try await store.state(usageKey) else { return DataUsage(month: month) }
            return try JSONDecoder().decode(DataUsage.self, from: Data(text.utf8))
        } catch {
            logger.error("uplink: this month's data usage is unreadable (\(error)); counting from zero")
            return DataUsage(month: month)
        }
    }

    /// Saves the month's usage in the buffer file when it changed, at most every 30 s unless `force`.
    private func saveUsage(_ session: inout Session, store: BufferStore, force: Bool) async {
        guard session.books.usageDirty, force || ContinuousClock.now - session.books.usageSavedAt >= .seconds(30) else {
            return
        }
        guard let data = try? JSONEncoder().encode(session.books.usage) else { return }
        do {
            _ = try await store.append(
                alarms: [], state: StateEntry(key: Self.usageKey, value: String(decoding: data, as: UTF8.self)))
            session.books.usageDirty = false
            session.books.usageSavedAt = .now
        } catch {
            logger.error("uplink: saving this month's data usage failed: \(error)")
        }
    }

    /// The data budget's mode now; updates the status.
    private func budget(_ session: inout Session) -> DataBudgetMode {
        let usage = session.books.usage.asOf(wallMillis: PollClock.wallMillis())
        let cap = session.config.uplink.monthlyBudget?.bytes
        let mode = DataBudgetMode.of(usage, budget: cap)
        update {
            $0.month = usage.month; $0.monthBytes = usage.bytes
            $0.monthlyBudget = cap; $0.dataBudgetMode = mode.rawValue
        }
        if mode == .saving {
            session.books.reasons[Self.dataBudgetAlarm] =
                "\(usage.bytes) of the \(cap ?? 0)-byte monthly data budget used in \(usage.month); "
                + "sending alarms and hourly snapshots only, other readings are dropped with data-budget gap records"
        }
        return mode
    }

    // MARK: - The uplink's own alarms as system alarm events

    /// Tells the gateway about uplink alarms raised or cleared since it was last told: the machines' alarms
    /// of both lanes, and the data budget's.
    private func reconcileAlarms(_ session: inout Session, _ gateway: Source, mode: DataBudgetMode) async {
        var desired = Set(session.activeAlarms)
        if mode == .saving { desired.insert(Self.dataBudgetAlarm) }
        let published = session.books.published
        guard desired != published else { return }
        for name in desired.subtracting(published).sorted() {
            await gateway.alarm(
                UplinkAlarmChange(
                    name: name, raised: true, priority: Self.priority(name),
                    reason: session.books.reasons[name] ?? name))
        }
        for name in published.subtracting(desired).sorted() {
            let reason =
                name == Self.dataBudgetAlarm
                ? "the data budget allows everything again (a new month, or a larger budget)"
                : "uploads go through again"
            await gateway.alarm(
                UplinkAlarmChange(name: name, raised: false, priority: Self.priority(name), reason: reason))
        }
        session.books.published = desired
    }

    static func priority(_ alarm: String) -> AlarmPriority {
        switch alarm {
        case UplinkAlarm.unauthorized.rawValue, UplinkAlarm.untrustedServer.rawValue,
            UplinkAlarm.wrongEndpoint.rawValue:
            .high
        case UplinkAlarm.rejectedBatch.rawValue: .medium
        default: .low
        }
    }

    /// The next records of both lanes, at most `maxRecords` in all; with `after`, reading-lane records up to
    /// that seq are left out (they are in flight).
    ///
    /// The byte bound is applied to the encoded body (`prepare`): the buffer's per-record estimate is several
    /// times what a reading costs in series form, so it is not used as the bound.
    static func read(_ store: BufferStore, maxRecords: Int, after: Int64?) async throws(BufferError) -> Round? {
        guard let batch = try await store.nextBatch(maxRecords: maxRecords, maxBytes: Int(Int32.max)) else {
            return nil
        }
        var round = Round(epoch: batch.epoch, alarms: [], readings: [], prepared: nil)
        round.readings.reserveCapacity(batch.count)
        let after = after ?? .min
        for r in batch.records {
            if r.lane == .alarm { round.alarms.append(r) } else if r.seq > after { round.readings.append(r) }
        }
        return round
    }

    /// Whether a not-yet-full batch of readings already fills 90 % of `batch.maxBytes` (then it goes now).
    private func bodyNearlyFull(_ records: [BufferedRecord], epoch: String, session: Session) -> Bool {
        let limit = Int(session.config.uplink.batch.maxBytes.bytes)
        // The estimate over-counts, so only an estimate past the limit needs the exact size.
        guard records.reduce(0, { $0 + $1.estimatedWireBytes }) >= limit * 9 / 10 else { return false }
        return session.client.encoder.encode(
            BufferBatch(epoch: epoch, records: records), sentAt: 0, clockSynchronized: false
        ).count >= limit * 9 / 10
    }

    public static func sender(_ c: EdgeConfig) -> BatchSender {
        BatchSender(
            gateway: c.gateway.id, tenant: c.gateway.tenant, site: c.gateway.site, software: EdgeCoreVersion.string)
    }
}
