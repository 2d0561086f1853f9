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
    public init() {}
}

/// The upload loop: takes the next batch from the buffer, sends it, and does what the `UplinkMachine` says
/// with the answer. Records are deleted only after a 2xx.
///
/// Two lanes, each with its own `UplinkMachine` (backoff, batch size, alarms), as the sync protocol §7 asks:
/// - alarm events go at once, in requests of their own, and keep going while the readings lane waits out a
///   backoff (an alarm wake-up ends any wait);
/// - readings wait up to `batch.maxAge` to fill a batch of `batch.maxRecords` records whose JSON body stays
///   within `batch.maxBytes`;
/// - while a backlog drains, the next batch is read and encoded while the current one is in flight, and the
///   acknowledged one is deleted meanwhile too, so the drain goes at the server's pace.
public final class UplinkService: Service, @unchecked Sendable {
    /// The configuration in force (it changes on reload) and the buffer to drain.
    public struct Source: Sendable {
        public var config: @Sendable () async -> EdgeConfig
        public var store: BufferStore
        public init(config: @escaping @Sendable () async -> EdgeConfig, store: BufferStore) { self.config = config; self.store = store }
    }
    private let wakeStream: AsyncStream<Void>
    let logger: Logger
    private let lock = NSLock()
    private var source: Source?
    /// Wakes the loop early: an alarm event was committed, or shutdown began.
    public let wake = WakeSignal()
    private var _status = UplinkStatus()
    public var status: UplinkStatus { lock.withLock { _status } }
    func update(_ f: (inout UplinkStatus) -> Void) { lock.withLock { f(&_status) } }
    /// Waits are drawn from here (tests inject a fixed one).
    let random: @Sendable (ClosedRange<Int64>) -> Int64

    public init(wake: AsyncStream<Void>, logger: Logger, random: @escaping @Sendable (ClosedRange<Int64>) -> Int64 = { Int64.random(in: $0) }) {
        self.wakeStream = wake
        self.logger = logger
        self.random = random
    }
    public func attach(_ s: Source) { lock.withLock { source = s } }

    public func run() async throws {
        guard let gateway = lock.withLock({ source }) else { return }
        // Forward alarm wake-ups into the signal the loop waits on.
        let forward = Task { [wake, wakeStream] in for await _ in wakeStream { wake.signal() } }
        defer { forward.cancel() }
        await withGracefulShutdownHandler {
            await loop(gateway)
        } onGracefulShutdown: { [wake] in
            wake.signal()
        }
    }

    /// One lane's retry state.
    struct Lane {
        let name: String
        var machine: UplinkMachine
        /// No attempt before this (a backoff, a Retry-After, a slow retry after 401).
        var notBefore = ContinuousClock.now
        init(_ name: String, maxRecords: Int) { self.name = name; machine = UplinkMachine(maxBatchRecords: maxRecords) }
    }

    /// What the loop carries from one batch to the next; replaced when the configuration changes.
    struct Session {
        var config: EdgeConfig
        var client: SyncClient
        var alarms: Lane
        var readings: Lane
        /// The deletion of the last acknowledged readings batch, still committing.
        var pendingAck: Task<Void, Never>?
        init(_ config: EdgeConfig) {
            self.config = config
            client = SyncClient(uplink: config.uplink, encoder: BatchEncoder(sender: UplinkService.sender(config), formats: BatchEncoder.formats(for: config)))
            alarms = Lane("alarm lane", maxRecords: config.uplink.batch.maxRecords)
            readings = Lane("readings", maxRecords: config.uplink.batch.maxRecords)
        }
        var activeAlarms: [String] { alarms.machine.activeAlarms.union(readings.machine.activeAlarms).map(\.rawValue).sorted() }
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
        var session = Session(await gateway.config())
        let store = gateway.store
        // While a full batch of readings is in flight, the next one is read and encoded (a backlog drains at the
        // pace of the server, not of the server plus the buffer plus the encoder). Used only if that batch is
        // acknowledged: its read-ahead assumed the batch's records gone.
        var ahead: Task<Round?, Never>?
        update { $0.endpoint = session.config.uplink.endpoint; $0.state = "idle" }
        while running {
            // Pick up a reloaded configuration.
            let current = await gateway.config()
            if current != session.config {
                await session.pendingAck?.value
                session = Session(current)
                ahead?.cancel(); ahead = nil
                update { $0.endpoint = current.uplink.endpoint; $0.alarms = [] }
            }
            let limits = session.config.uplink.batch
            update { $0.batchRecordsLimit = session.readings.machine.batchRecords }
            // An alarm event came in: read the buffer afresh rather than use what was read ahead without it.
            if wake.takePending() { ahead?.cancel(); ahead = nil }
            var round = await ahead?.value
            ahead = nil
            // A read-ahead that found nothing is no proof the buffer is empty: read its head.
            if let r = round, r.alarms.isEmpty && r.readings.isEmpty { round = nil }
            if round == nil {
                await session.pendingAck?.value   // read from the head only once deletions are committed
                do {
                    round = try await Self.read(store, maxRecords: session.readings.machine.batchRecords, after: nil)
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
            let now = ContinuousClock.now
            if !round.alarms.isEmpty && now >= session.alarms.notBefore {
                let records = Array(round.alarms.prefix(session.alarms.machine.batchRecords))
                let prepared = Self.prepare(records, epoch: round.epoch, encoder: session.client.encoder, maxBytes: Int(limits.maxBytes.bytes))
                await send(prepared, lane: \.alarms, session: &session, store: store)
                continue
            }
            // The next moment a lane that has records may send.
            var nextTry = round.alarms.isEmpty ? nil : session.alarms.notBefore
            if !round.readings.isEmpty && now >= session.readings.notBefore {
                let batchRecords = session.readings.machine.batchRecords
                // A batch of readings that is neither full nor old enough waits to fill up (alarms never wait).
                if round.readings.count < batchRecords, let oldest = round.readings.compactMap({ $0.reading?.wallMillis }).min() {
                    let age = PollClock.wallMillis() - oldest
                    if age < limits.maxAge.milliseconds, !bodyNearlyFull(round.readings, epoch: round.epoch, session: session) {
                        update { $0.state = "filling" }
                        let filled = now + .milliseconds(limits.maxAge.milliseconds - age)
                        await wake.wait(timeout: min(filled, nextTry ?? filled) - now)
                        continue
                    }
                }
                let prepared = round.prepared ?? Self.prepare(Array(round.readings.prefix(batchRecords)), epoch: round.epoch,
                                                              encoder: session.client.encoder, maxBytes: Int(limits.maxBytes.bytes))
                let rest = Array(round.readings.dropFirst(prepared.batch.count))
                if round.readings.count >= batchRecords || !rest.isEmpty {
                    // A backlog: take the next batch in hand while this one is in flight.
                    let last = prepared.batch.readingSeqs?.upperBound ?? 0
                    let encoder = session.client.encoder, maxBytes = Int(limits.maxBytes.bytes), epoch = round.epoch
                    let deleting = session.pendingAck
                    ahead = Task {
                        var next: Round
                        if rest.count >= batchRecords {
                            next = Round(epoch: epoch, alarms: [], readings: rest, prepared: nil)
                        } else {
                            // The previous batch must be gone from the head first, or it would take the places
                            // of the records this read is for.
                            await deleting?.value
                            // The buffer is read from its head, so a read also returns the batch in flight:
                            // reading several batches at once pays for that once per `readAhead` batches.
                            let want = prepared.batch.count + Self.readAhead * batchRecords
                            guard let fresh = try? await Self.read(store, maxRecords: want, after: last) else { return nil }
                            next = fresh
                        }
                        if next.alarms.isEmpty && next.readings.count >= batchRecords {
                            next.prepared = Self.prepare(Array(next.readings.prefix(batchRecords)), epoch: epoch, encoder: encoder, maxBytes: maxBytes)
                        }
                        return next
                    }
                }
                if await !send(prepared, lane: \.readings, session: &session, store: store) {
                    ahead?.cancel(); ahead = nil
                }
                continue
            }
            if !round.readings.isEmpty { nextTry = min(session.readings.notBefore, nextTry ?? session.readings.notBefore) }
            // Every lane with records is backing off: sleep until the first may send, or an alarm event arrives.
            update { $0.state = "backing off" }
            await wake.wait(timeout: (nextTry ?? now + .seconds(1)) - now)
        }
        ahead?.cancel()
        await session.pendingAck?.value
        update { $0.state = "stopped" }
    }

    /// The next records of both lanes, at most `maxRecords` in all; with `after`, reading-lane records up to
    /// that seq are left out (they are in flight).
    ///
    /// The byte bound is applied to the encoded body (`prepare`): the buffer's per-record estimate is several
    /// times what a reading costs in series form, so it is not used as the bound.
    static func read(_ store: BufferStore, maxRecords: Int, after: Int64?) async throws(BufferError) -> Round? {
        guard let batch = try await store.nextBatch(maxRecords: maxRecords, maxBytes: Int(Int32.max)) else { return nil }
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
        return session.client.encoder.encode(BufferBatch(epoch: epoch, records: records), sentAt: 0, clockSynchronized: false).count >= limit * 9 / 10
    }

    public static func sender(_ c: EdgeConfig) -> BatchSender {
        BatchSender(gateway: c.gateway.id, tenant: c.gateway.tenant, site: c.gateway.site, software: EdgeCoreVersion.string)
    }
}
