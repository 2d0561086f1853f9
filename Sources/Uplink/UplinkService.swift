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
}

/// The upload loop: takes the next batch from the buffer (alarm lane first), sends it, and does what the
/// `UplinkMachine` says with the answer. Readings wait up to `batch.maxAge` to fill a batch; alarm events go
/// at once. Records are deleted only after a 2xx.
public final class UplinkService: Service, @unchecked Sendable {
    /// The configuration in force (it changes on reload) and the buffer to drain.
    public struct Source: Sendable {
        public var config: @Sendable () async -> EdgeConfig
        public var store: BufferStore
        public init(config: @escaping @Sendable () async -> EdgeConfig, store: BufferStore) { self.config = config; self.store = store }
    }
    private let wakeStream: AsyncStream<Void>
    private let logger: Logger
    private let lock = NSLock()
    private var source: Source?
    /// Wakes the loop early: an alarm event was committed, or shutdown began.
    public let wake = WakeSignal()
    private var _status = UplinkStatus()
    public var status: UplinkStatus { lock.withLock { _status } }
    private func update(_ f: (inout UplinkStatus) -> Void) { lock.withLock { f(&_status) } }
    /// Waits are drawn from here (tests inject a fixed one).
    private let random: @Sendable (ClosedRange<Int64>) -> Int64

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

    private func loop(_ gateway: Source) async {
        var config = await gateway.config()
        var client = SyncClient(uplink: config.uplink, encoder: BatchEncoder(sender: Self.sender(config), formats: BatchEncoder.formats(for: config)))
        var machine = UplinkMachine(maxBatchRecords: config.uplink.batch.maxRecords)
        let store = gateway.store
        update { $0.endpoint = config.uplink.endpoint; $0.state = "idle" }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // Pick up a reloaded configuration.
            let current = await gateway.config()
            if current != config {
                config = current
                client = SyncClient(uplink: config.uplink, encoder: BatchEncoder(sender: Self.sender(config), formats: BatchEncoder.formats(for: config)))
                machine = UplinkMachine(maxBatchRecords: config.uplink.batch.maxRecords)
                update { $0.endpoint = config.uplink.endpoint }
            }
            update { $0.batchRecordsLimit = machine.batchRecords }
            let batch: BufferBatch?
            do {
                batch = try await store.nextBatch(maxRecords: machine.batchRecords, maxBytes: Int(config.uplink.batch.maxBytes.bytes))
            } catch {
                logger.error("uplink: reading the buffer failed: \(error)")
                await wake.wait(timeout: .seconds(5))
                continue
            }
            guard let batch, !batch.records.isEmpty else {
                update { $0.state = "idle" }
                await wake.wait(timeout: .seconds(max(1, config.uplink.batch.maxAge.seconds)))
                continue
            }
            // A batch of readings that is neither full nor old enough waits to fill up (alarms never wait).
            if batch.alarmSeqs == nil, batch.count < machine.batchRecords,
               let oldest = batch.records.compactMap({ $0.reading?.wallMillis }).min() {
                let age = PollClock.wallMillis() - oldest
                let maxAge = config.uplink.batch.maxAge.milliseconds
                if age < maxAge, batch.estimatedBytes < Int(config.uplink.batch.maxBytes.bytes) * 9 / 10 {
                    update { $0.state = "filling" }
                    await wake.wait(timeout: .milliseconds(maxAge - age))
                    continue
                }
            }
            await send(batch, client: client, config: config, machine: &machine, store: store)
        }
        update { $0.state = "stopped" }
    }

    private func send(_ batch: BufferBatch, client: SyncClient, config: EdgeConfig, machine: inout UplinkMachine,
                      store: BufferStore) async {
        let token: String
        do { token = try TokenLoader.load(config.uplink.token) } catch {
            update { $0.state = "no token"; $0.lastError = error.description }
            logger.error("uplink: \(error)")
            await wake.wait(timeout: .seconds(30))
            return
        }
        let now = PollClock.wallMillis()
        update { $0.state = "sending"; $0.lastAttemptMillis = now }
        let request = client.request(for: batch, token: token, sentAt: now, clockSynchronized: ClockStatus.isSynchronized())
        let outcome: UplinkOutcome
        do throws(TransportError) {
            let response = try await client.http.send(request)
            update { $0.bytesSent += response.bytesSent; $0.bytesReceived += response.bytesReceived }
            outcome = UplinkOutcome.classify(status: response.status, retryAfter: response.headers["retry-after"],
                                             body: String(decoding: response.body.prefix(400), as: UTF8.self), nowWallMillis: PollClock.wallMillis())
        } catch {
            outcome = .retry(status: nil, retryAfterMillis: nil, reason: error.description)
        }
        let actions = machine.handle(outcome, records: batch.count, random: random)
        for action in actions {
            switch action {
            case .acknowledge:
                do {
                    try await store.acknowledge(batch)
                    update {
                        $0.state = "online"; $0.lastSuccessMillis = PollClock.wallMillis(); $0.lastError = nil
                        $0.batchesSent += 1; $0.recordsAcknowledged += batch.count; $0.nextAttemptMillis = nil
                    }
                } catch {
                    logger.error("uplink: acknowledging \(batch.count) records failed: \(error) (they will be sent again; the server deduplicates)")
                }
            case .resendSmaller:
                logger.warning("uplink: 413 for \(batch.count) records; sending \(machine.batchRecords) at a time")
            case .deadLetter(let reason):
                do {
                    try await store.deadLetter(batch, reason: reason)
                    update { $0.deadLetterBatches += 1 }
                } catch {
                    logger.error("uplink: moving a rejected batch aside failed: \(error)")
                }
                logger.error("uplink: batch of \(batch.count) records rejected (\(reason)); kept in the dead-letter lane")
            case .raiseAlarm(let alarm, let message):
                logger.error("uplink alarm \(alarm.rawValue): \(message)", metadata: ["alarm": "\(alarm.rawValue)"])
            case .clearAlarm(let alarm):
                logger.notice("uplink alarm \(alarm.rawValue) cleared", metadata: ["alarm": "\(alarm.rawValue)"])
            case .wait(let ms):
                update { $0.state = "backing off"; $0.lastError = machine.lastError; $0.nextAttemptMillis = PollClock.wallMillis() + ms }
                logger.warning("uplink: \(machine.lastError ?? "failed"); next attempt in \(TimeSpan(milliseconds: ms))")
                await sleepUnlessShuttingDown(.milliseconds(ms))
            }
        }
    }

    private func sleepUnlessShuttingDown(_ d: Duration) async {
        // The wake signal also ends a backoff early on shutdown; alarm wake-ups do not shorten a backoff.
        let deadline = ContinuousClock.now + d
        while ContinuousClock.now < deadline && !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: min(.milliseconds(250), deadline - ContinuousClock.now))
        }
    }

    public static func sender(_ c: EdgeConfig) -> BatchSender {
        BatchSender(gateway: c.gateway.id, tenant: c.gateway.tenant, site: c.gateway.site, software: EdgeCoreVersion.string)
    }
}
