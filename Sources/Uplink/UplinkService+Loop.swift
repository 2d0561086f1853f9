import EdgeBuffer
import EdgeCore
import EdgeRuntime
import EdgeSystem
import Foundation
import Logging
import ServiceLifecycle

/// The upload loop: does what the `UplinkScheduler` answers, and tells it what came of it.
extension UplinkService {
    var running: Bool { !Task.isShuttingDownGracefully && !Task.isCancelled }

    /// Batches of readings read at once while draining a backlog.
    static let readAhead = 2

    /// The lanes' next records, as read from the buffer.
    struct Round: Sendable {
        var epoch: String
        var alarms: [BufferedRecord]
        /// The next reading-lane records, in seq order; while a backlog drains, up to `readAhead` batches.
        var readings: [BufferedRecord]
        /// The readings batch, already encoded while the previous batch was in flight (nil: encode it now).
        var prepared: Prepared?
    }

    /// What the shell holds besides the scheduler: the configuration and client in force, the deletion still
    /// committing, and the read-ahead.
    struct Shell {
        var config: EdgeConfig
        var client: SyncClient
        /// The deletion of the last acknowledged readings batch, still committing. The buffer is read from
        /// its head only once it is committed.
        var pendingAck: Task<Void, Never>?
        /// While a full batch of readings is in flight, the next one is read and encoded (a backlog drains at
        /// the pace of the server, not of the server plus the buffer plus the encoder). Used only if that
        /// batch is acknowledged: its read-ahead assumed the batch's records gone.
        var ahead: Task<Round?, Never>?
        /// The readings batch the last read-ahead encoded.
        var prepared: Prepared?

        init(_ config: EdgeConfig) {
            self.config = config
            client = SyncClient(
                uplink: config.uplink,
                encoder: BatchEncoder(sender: UplinkService.sender(config), formats: BatchEncoder.formats(for: config)))
        }

        mutating func dropAhead() {
            ahead?.cancel()
            ahead = nil
            prepared = nil
        }
    }

    static func now() -> UplinkScheduler.Now {
        UplinkScheduler.Now(monotonic: SystemClock.monotonicMillis(), wall: SystemClock.wallMillis())
    }

    func loop(_ gateway: Source) async {
        let store = gateway.store
        var shell = Shell(await gateway.config())
        var scheduler = UplinkScheduler(shell.config.uplink, encoder: shell.client.encoder, random: random)
        let usage = await Self.loadUsage(store, logger: logger)
        let standing = await gateway.standing().filter { $0.hasPrefix("uplink-") }
        var step = scheduler.handle(.start(usage: usage, standing: standing), now: Self.now())
        update {
            $0.endpoint = shell.config.uplink.endpoint; $0.state = "idle"
        }
        while running {
            await perform(step.effects, shell: &shell, gateway: gateway, scheduler: &scheduler)
            publish(scheduler)
            // What happened between steps: a reloaded configuration, an operator's acknowledgement.
            let current = await gateway.config()
            if current != shell.config {
                await shell.pendingAck?.value
                shell.dropAhead()
                let pending = shell.pendingAck
                shell = Shell(current)
                shell.pendingAck = pending
                update { $0.endpoint = current.uplink.endpoint }
                step = scheduler.handle(.configChanged(current.uplink, encoder: shell.client.encoder), now: Self.now())
                continue
            }
            if takeRejectedAcknowledgement() {
                step = scheduler.handle(.rejectedAcknowledged, now: Self.now())
                continue
            }
            guard let event = await carryOut(step.next, shell: &shell, scheduler: scheduler, store: store) else {
                break
            }
            step = scheduler.handle(event, now: Self.now())
        }
        shell.dropAhead()
        await shell.pendingAck?.value
        if let usage = scheduler.unsavedUsage(), await !saveUsage(usage, store: store) { scheduler.usageNotSaved() }
        update { $0.state = "stopped" }
    }

    /// Carries out the scheduler's next step; returns what came of it (nil: shutdown began meanwhile).
    func carryOut(_ next: UplinkScheduler.Next, shell: inout Shell, scheduler: UplinkScheduler, store: BufferStore)
        async -> UplinkScheduler.Event?
    {
        switch next {
        case .read(let maxRecords, let prefetched):
            // An alarm event came in: read the buffer afresh rather than use what was read ahead without it.
            if !prefetched || wake.takePending() { shell.dropAhead() }
            var round = await shell.ahead?.value
            shell.ahead = nil
            // A read-ahead that found nothing is no proof the buffer is empty: read its head.
            if let r = round, r.alarms.isEmpty && r.readings.isEmpty { round = nil }
            if round == nil {
                await shell.pendingAck?.value
                do { round = try await Self.read(store, maxRecords: maxRecords, after: nil) } catch {
                    return running ? .readFailed(error.description) : nil
                }
            }
            shell.prepared = round?.prepared
            return .read(epoch: round?.epoch ?? "", alarms: round?.alarms ?? [], readings: round?.readings ?? [])
        case .send(let lane, let records, let epoch, let readAhead):
            let maxBytes = Int(shell.config.uplink.batch.maxBytes.bytes)
            // The batch the read-ahead encoded, if it is the one asked for.
            let ready = shell.prepared.flatMap {
                lane == .readings && $0.offered == records.count && $0.batch.records.first?.seq == records.first?.seq
                    ? $0 : nil
            }
            shell.prepared = nil
            let prepared =
                ready ?? Self.prepare(records, epoch: epoch, encoder: shell.client.encoder, maxBytes: maxBytes)
            if lane == .readings, readAhead != nil || prepared.batch.count < records.count {
                let rest = Array(records.dropFirst(prepared.batch.count)) + (readAhead ?? [])
                shell.ahead = self.readAhead(
                    after: prepared, rest: rest, batchRecords: records.count, shell: shell, store: store)
            }
            let event = await send(prepared, lane: lane, shell: shell)
            if case .sent(_, _, _, let outcome, _, _) = event, outcome == .stored {} else { shell.dropAhead() }
            return event
        case .drop(let records):
            shell.dropAhead()
            await shell.pendingAck?.value
            do {
                let dropped = try await store.drop(records, reason: .dataBudget) != nil ? records.count : 0
                return .dropped(count: dropped, error: nil)
            } catch {
                return running ? .dropped(count: 0, error: error.description) : nil
            }
        case .sleep(let until):
            let now = SystemClock.monotonicMillis()
            // An alarm wake-up ends the wait; while the endpoint is held the scheduler sends it back to sleep.
            await wake.wait(timeout: .milliseconds(max(0, until - now)))
            if !running { return nil }
            return .woke(token: scheduler.wantsToken ? try? TokenLoader.load(shell.config.uplink.token) : nil)
        }
    }

    /// Carries out the scheduler's side effects.
    func perform(
        _ effects: [UplinkScheduler.Effect], shell: inout Shell, gateway: Source, scheduler: inout UplinkScheduler
    ) async {
        for effect in effects {
            switch effect {
            case .acknowledge(let lane, let batch):
                update {
                    $0.lastSuccessMillis = SystemClock.wallMillis(); $0.nextAttemptMillis = nil
                }
                // In the readings lane the deletion commits while the next batch is in flight (the read-ahead
                // already leaves these records out).
                let previous = shell.pendingAck
                let ack = Task { [store = gateway.store, logger] in
                    await previous?.value
                    do {
                        try await store.acknowledge(batch)
                        self.update {
                            $0.batchesSent += 1; $0.recordsAcknowledged += batch.count
                        }
                    } catch {
                        logger.error(
                            "uplink: acknowledging \(batch.count) records failed: \(error) (they will be sent again; the server deduplicates)"
                        )
                    }
                }
                if lane == .readings { shell.pendingAck = ack } else { await ack.value }
            case .deadLetter(let batch, let reason):
                do {
                    try await gateway.store.deadLetter(batch, reason: reason)
                    update { $0.deadLetterBatches += 1 }
                } catch {
                    logger.error("uplink: moving a rejected batch aside failed: \(error)")
                }
                logger.error(
                    "uplink: batch of \(batch.count) records rejected (\(reason)); kept in the dead-letter lane")
            case .alarm(let change):
                await gateway.alarm(change)
            case .saveUsage(let usage):
                if await !saveUsage(usage, store: gateway.store) { scheduler.usageNotSaved() }
            case .log(let level, let message):
                switch level {
                case .notice: logger.notice("\(message)")
                case .warning: logger.warning("\(message)")
                case .error: logger.error("\(message)")
                }
            }
        }
    }

    /// Shows the scheduler's state in `edgectl uplink`.
    func publish(_ s: UplinkScheduler) {
        let wall = SystemClock.wallMillis(), now = SystemClock.monotonicMillis()
        let usage = s.usage(asOfWallMillis: wall)
        let next = s.heldUntil(nowMillis: now).map { wall + $0 - now }
        update {
            $0.state = s.state
            $0.alarms = s.activeAlarms
            $0.batchRecordsLimit = s.readingLane.machine.batchRecords
            $0.lastError = s.lastError
            $0.month = usage.month; $0.monthBytes = usage.bytes
            $0.monthlyBudget = s.config.monthlyBudget?.bytes
            $0.dataBudgetMode = s.mode.rawValue
            $0.readingsDroppedForBudget = s.droppedForBudget
            $0.nextAttemptMillis = next
        }
    }

    /// While a backlog drains: reads and encodes the next batch while `prepared` is in flight. Its result is
    /// used only if that batch is acknowledged (it assumes the batch's records gone).
    func readAhead(
        after prepared: Prepared, rest: [BufferedRecord], batchRecords: Int, shell: Shell, store: BufferStore
    ) -> Task<Round?, Never> {
        let last = prepared.batch.readingSeqs?.upperBound ?? 0
        let encoder = shell.client.encoder, maxBytes = Int(shell.config.uplink.batch.maxBytes.bytes),
            epoch = prepared.batch.epoch
        let deleting = shell.pendingAck
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
            // EFM records travel with the alarm events, ahead of the readings backlog.
            if r.lane == .alarm || r.lane == .efm {
                round.alarms.append(r)
            } else if r.seq > after {
                round.readings.append(r)
            }
        }
        return round
    }

    public static func sender(_ c: EdgeConfig) -> BatchSender {
        BatchSender(
            gateway: c.gateway.id, tenant: c.gateway.tenant, site: c.gateway.site, software: EdgeCoreVersion.string)
    }
}
