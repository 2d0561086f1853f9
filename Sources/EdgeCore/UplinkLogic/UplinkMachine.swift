/// What came back for one batch.
public enum UplinkOutcome: Sendable, Equatable {
    /// 2xx: every record of the batch is durably stored at the server.
    case stored
    /// 401/403: the token was refused.
    case unauthorized(Int)
    /// 404/405: the configured URL is not the sync endpoint (a configuration fault, not the batch's).
    case wrongEndpoint(Int)
    /// No answer because the server failed TLS verification or the public-key pin: retried like a
    /// network error, but an operator has to look.
    case untrusted(reason: String)
    /// 413: the batch is too large for the server.
    case tooLarge
    /// 408, 429, 5xx, or no answer: try again later (`retryAfterMillis` from the server, if it said).
    case retry(status: Int?, retryAfterMillis: Int64?, reason: String)
    /// Any other 4xx: the server will never take this batch as it is.
    case rejected(status: Int, reason: String)

    /// Classifies an HTTP status and its `Retry-After` header.
    public static func classify(status: Int, retryAfter: String?, body: String, nowWallMillis: Int64) -> UplinkOutcome {
        switch status {
        case 200...299: return .stored
        case 401, 403: return .unauthorized(status)
        case 404, 405: return .wrongEndpoint(status)
        case 413: return .tooLarge
        case 408, 429, 500...599:
            return .retry(
                status: status,
                retryAfterMillis: retryAfter.flatMap { RetryAfter.millis($0, nowWallMillis: nowWallMillis) },
                reason: "HTTP \(status)")
        default:
            let snippet = body.prefix(300)
            return .rejected(status: status, reason: "HTTP \(status)\(snippet.isEmpty ? "" : ": \(snippet)")")
        }
    }
}

/// What the uplink's I/O shell does next.
public enum UplinkAction: Sendable, Equatable {
    /// Delete the batch's records from the buffer.
    case acknowledge
    /// Keep the batch; send it again in smaller pieces (the batch limit was lowered).
    case resendSmaller
    /// Move the batch to the dead-letter lane (kept, counted, visible) and go on with the rest.
    case deadLetter(reason: String)
    case raiseAlarm(UplinkAlarm, message: String)
    case clearAlarm(UplinkAlarm)
}

/// The uplink's own alarms.
public enum UplinkAlarm: String, Sendable, Codable, CaseIterable {
    /// The server refuses the token (401/403).
    case unauthorized = "uplink-unauthorized"
    /// The server rejected a batch as malformed; it went to the dead-letter lane.
    case rejectedBatch = "uplink-rejected-batch"
    /// The endpoint URL answers 404/405: the configuration points somewhere else.
    case wrongEndpoint = "uplink-endpoint"
    /// The server's certificate is not trusted or its key does not match the pin.
    case untrustedServer = "uplink-tls"
}

/// One lane's acknowledgement rules as a state machine: it is told how each batch ended and answers with
/// actions — delete, resend smaller, dead-letter, the uplink's alarms. When the endpoint may be tried again
/// is the `UplinkScheduler`'s, for both lanes. Nothing here does I/O or reads a clock.
public struct UplinkMachine: Sendable {
    /// Records per batch now (lowered after 413, grown back after successes), and the configured ceiling.
    public private(set) var batchRecords: Int
    public let maxBatchRecords: Int
    public private(set) var activeAlarms: Set<UplinkAlarm> = []
    public private(set) var consecutiveFailures = 0
    /// The last failure, for `edgectl uplink`.
    public private(set) var lastError: String?

    public init(maxBatchRecords: Int) {
        self.maxBatchRecords = max(1, maxBatchRecords)
        self.batchRecords = self.maxBatchRecords
    }

    /// The batch of `records` records ended with `outcome`.
    public mutating func handle(_ outcome: UplinkOutcome, records: Int) -> [UplinkAction] {
        var actions: [UplinkAction] = []
        switch outcome {
        case .stored:
            actions.append(.acknowledge)
            consecutiveFailures = 0
            lastError = nil
            for alarm in [UplinkAlarm.unauthorized, .wrongEndpoint, .untrustedServer]
            where activeAlarms.remove(alarm) != nil {
                actions.append(.clearAlarm(alarm))
            }
            // Grow back toward the configured size after a 413 forced smaller batches.
            if batchRecords < maxBatchRecords { batchRecords = min(maxBatchRecords, batchRecords * 2) }
        case .unauthorized(let status):
            consecutiveFailures += 1
            lastError = "HTTP \(status): the server refused the gateway's token"
            if activeAlarms.insert(.unauthorized).inserted {
                actions.append(
                    .raiseAlarm(
                        .unauthorized, message: "sync endpoint answered \(status): token refused; buffering continues"))
            }
        case .wrongEndpoint(let status):
            consecutiveFailures += 1
            lastError = "HTTP \(status): the endpoint URL is not a sync endpoint"
            if activeAlarms.insert(.wrongEndpoint).inserted {
                actions.append(
                    .raiseAlarm(
                        .wrongEndpoint,
                        message: "sync endpoint answered \(status): check uplink.endpoint; buffering continues"))
            }
        case .untrusted(let reason):
            consecutiveFailures += 1
            lastError = reason
            if activeAlarms.insert(.untrustedServer).inserted {
                actions.append(.raiseAlarm(.untrustedServer, message: "\(reason); buffering continues"))
            }
        case .tooLarge:
            lastError = "HTTP 413: batch of \(records) records too large"
            if records > 1 {
                batchRecords = max(1, min(batchRecords, records) / 2)
                actions.append(.resendSmaller)
            } else {
                actions.append(.deadLetter(reason: "HTTP 413 for a single record"))
                if activeAlarms.insert(.rejectedBatch).inserted {
                    actions.append(
                        .raiseAlarm(
                            .rejectedBatch,
                            message: "a record too large for the server was moved to the dead-letter lane"))
                }
            }
        case .retry(_, _, let reason):
            consecutiveFailures += 1
            lastError = reason
        case .rejected(_, let reason):
            lastError = reason
            actions.append(.deadLetter(reason: reason))
            if activeAlarms.insert(.rejectedBatch).inserted {
                actions.append(
                    .raiseAlarm(
                        .rejectedBatch,
                        message: "sync endpoint rejected a batch (\(reason)); it is kept in the dead-letter lane"))
            }
        }
        return actions
    }

    /// An operator looked at the dead letters: the rejected-batch alarm may clear.
    public mutating func acknowledgeRejected() -> [UplinkAction] {
        activeAlarms.remove(.rejectedBatch) != nil ? [.clearAlarm(.rejectedBatch)] : []
    }
}
