import EdgeBuffer
import EdgeCore
import EdgeRuntime
import Foundation
import Logging
import ModbusPoller

/// Sending one batch of one lane, and doing what the lane's `UplinkMachine` answers.
extension UplinkService {
    /// A batch ready to go: its records (possibly fewer than asked for) and its gzip'd body.
    struct Prepared: Sendable {
        var batch: BufferBatch
        var body: [UInt8]
        /// How many records were offered (more than `batch.count` when `batch.maxBytes` decided).
        var offered: Int
    }

    /// Encodes `records` (a prefix of a lane, in lane order) and gzips them. When the JSON body passes
    /// `batch.maxBytes`, keeps a shorter prefix instead (the rest goes in the next batch).
    static func prepare(_ records: [BufferedRecord], epoch: String, encoder: BatchEncoder, maxBytes: Int) -> Prepared {
        let sentAt = PollClock.wallMillis(), synchronized = ClockStatus.isSynchronized()
        var batch = BufferBatch(epoch: epoch, records: records)
        var json = encoder.encode(batch, sentAt: sentAt, clockSynchronized: synchronized)
        while json.count > maxBytes && batch.count > 1 {
            let keep = max(1, min(batch.count - 1, batch.count * maxBytes / json.count * 95 / 100))
            batch = BufferBatch(epoch: epoch, records: Array(batch.records.prefix(keep)))
            json = encoder.encode(batch, sentAt: sentAt, clockSynchronized: synchronized)
        }
        return Prepared(batch: batch, body: Gzip.compress(json), offered: records.count)
    }

    /// Sends a batch of one lane and does what the lane's machine says with the answer; true when the server
    /// stored it (in the readings lane the deletion may still be committing: `session.pendingAck`).
    @discardableResult
    func send(_ prepared: Prepared, lane: WritableKeyPath<Session, Lane>, session: inout Session, store: BufferStore)
        async -> Bool
    {
        let config = session.config
        let token: String
        do { token = try TokenLoader.load(config.uplink.token) } catch {
            update {
                $0.state = "no token"; $0.lastError = error.description
            }
            logger.error("uplink: \(error)")
            session.books.scheduler.noToken(nowMillis: PollClock.monotonicMillis())
            return false
        }
        update {
            $0.state = "sending"; $0.lastAttemptMillis = PollClock.wallMillis()
        }
        let request = session.client.request(for: prepared.batch, gzippedBody: prepared.body, token: token)
        let batch = prepared.batch
        let outcome: UplinkOutcome
        do throws(TransportError) {
            let response = try await session.client.http.send(request)
            update {
                $0.bytesSent += response.bytesSent; $0.bytesReceived += response.bytesReceived
            }
            session.books.usage.add(response.bytesSent + response.bytesReceived, atWallMillis: PollClock.wallMillis())
            session.books.usageDirty = true
            outcome = UplinkOutcome.classify(
                status: response.status, retryAfter: response.headers["retry-after"],
                body: String(decoding: response.body.prefix(400), as: UTF8.self), nowWallMillis: PollClock.wallMillis())
        } catch {
            switch error.kind {
            case .tlsVerify, .pinMismatch: outcome = .untrusted(reason: error.description)
            default: outcome = .retry(status: nil, retryAfterMillis: nil, reason: error.description)
            }
        }
        let name = session[keyPath: lane].name
        let actions = session[keyPath: lane].machine.handle(outcome, records: batch.count)
        let machine = session[keyPath: lane].machine
        // When the endpoint may be tried again, for both lanes.
        if let ms = session.books.scheduler.sent(
            outcome, token: token, nowMillis: PollClock.monotonicMillis(), random: random)
        {
            let hold = session.books.scheduler.hold?.rawValue ?? "backing off"
            update {
                $0.state = hold; $0.nextAttemptMillis = PollClock.wallMillis() + ms
            }
            logger.warning(
                "uplink (\(name)): \(machine.lastError ?? "failed"); next attempt in \(TimeSpan(milliseconds: ms))")
        }
        var acknowledged = false
        for action in actions {
            switch action {
            case .acknowledge:
                // The server holds the batch: delete it. In the readings lane the deletion commits while the next
                // batch is in flight (the read-ahead already leaves these records out); the loop waits for it
                // before it reads the buffer from its head again.
                acknowledged = true
                update {
                    $0.state = "online"; $0.lastSuccessMillis = PollClock.wallMillis(); $0.lastError = nil;
                    $0.nextAttemptMillis = nil
                }
                let previous = session.pendingAck
                let ack = Task { [store, logger] in
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
                if lane == \Session.readings { session.pendingAck = ack } else { await ack.value }
            case .resendSmaller:
                logger.warning(
                    "uplink: 413 for \(batch.count) records (\(name)); sending \(machine.batchRecords) at a time")
            case .deadLetter(let reason):
                do {
                    try await store.deadLetter(batch, reason: reason)
                    update { $0.deadLetterBatches += 1 }
                } catch {
                    logger.error("uplink: moving a rejected batch aside failed: \(error)")
                }
                logger.error(
                    "uplink: batch of \(batch.count) records rejected (\(reason)); kept in the dead-letter lane")
            case .raiseAlarm(let alarm, let message):
                session.books.reasons[alarm.rawValue] = message
                logger.error("uplink alarm \(alarm.rawValue): \(message)", metadata: ["alarm": "\(alarm.rawValue)"])
            case .clearAlarm(let alarm):
                logger.notice("uplink alarm \(alarm.rawValue) cleared", metadata: ["alarm": "\(alarm.rawValue)"])
            }
        }
        let alarms = session.activeAlarms
        update {
            $0.alarms = alarms
            if outcome != .stored { $0.lastError = machine.lastError }
        }
        return acknowledged
    }
}
