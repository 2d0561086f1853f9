import EdgeBuffer
import EdgeCore
import EdgeRuntime
import Foundation
import Logging
import ModbusPoller
import ServiceLifecycle

/// The upload loop: what to read, whether to wait, which lane to send.
extension UplinkService {
    var running: Bool { !Task.isShuttingDownGracefully && !Task.isCancelled }

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

    func loop(_ gateway: Source) async {
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
            if takeRejectedAcknowledgement() {
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
    func readAhead(
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
    func bodyNearlyFull(_ records: [BufferedRecord], epoch: String, session: Session) -> Bool {
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
