import EdgeBuffer
import EdgeCore
import EdgeRuntime
import EdgeSystem
import Foundation
import Logging

/// Encoding and sending one batch of one lane.
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
        let sentAt = SystemClock.wallMillis(), synchronized = ClockStatus.isSynchronized()
        var batch = BufferBatch(epoch: epoch, records: records)
        var json = encoder.encode(batch, sentAt: sentAt, clockSynchronized: synchronized)
        while json.count > maxBytes && batch.count > 1 {
            let keep = max(1, min(batch.count - 1, batch.count * maxBytes / json.count * 95 / 100))
            batch = BufferBatch(epoch: epoch, records: Array(batch.records.prefix(keep)))
            json = encoder.encode(batch, sentAt: sentAt, clockSynchronized: synchronized)
        }
        return Prepared(batch: batch, body: Gzip.compress(json), offered: records.count)
    }

    /// Sends a batch and says how it ended (or that no token could be read, so nothing was sent).
    func send(_ prepared: Prepared, lane: UplinkScheduler.Lane, shell: Shell) async -> UplinkScheduler.Event {
        let token: String
        do { token = try TokenLoader.load(shell.config.uplink.token) } catch {
            update { $0.lastError = error.description }
            return .noToken(error.description)
        }
        update {
            $0.state = "sending"; $0.lastAttemptMillis = SystemClock.wallMillis()
        }
        let request = shell.client.request(for: prepared.batch, gzippedBody: prepared.body, token: token)
        let outcome: UplinkOutcome
        var wireBytes: Int64 = 0
        let started = SystemClock.monotonicMillis()
        do throws(TransportError) {
            let response = try await shell.client.http.send(request)
            let roundTrip = SystemClock.monotonicMillis() - started
            update {
                $0.bytesSent += response.bytesSent; $0.bytesReceived += response.bytesReceived
                $0.attempts += 1; $0.lastRoundTripMillis = roundTrip
                if (200..<300).contains(response.status) { $0.attemptsStored += 1 }
            }
            wireBytes = response.bytesSent + response.bytesReceived
            outcome = UplinkOutcome.classify(
                status: response.status, retryAfter: response.headers["retry-after"],
                body: String(decoding: response.body.prefix(400), as: UTF8.self),
                nowWallMillis: SystemClock.wallMillis())
        } catch {
            update { $0.attempts += 1 }
            switch error.kind {
            case .tlsVerify, .pinMismatch: outcome = .untrusted(reason: error.description)
            default: outcome = .retry(status: nil, retryAfterMillis: nil, reason: error.description)
            }
        }
        return .sent(
            lane, prepared.batch, offered: prepared.offered, outcome: outcome, token: token, wireBytes: wireBytes)
    }
}
