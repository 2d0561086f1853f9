import EdgeCore
import Foundation

/// Sends batches and probes to the sync endpoint: encoding, gzip, headers, and the HTTP exchange.
// Guard: immutable after init: only `let`s of Sendable types (`http`, a `CurlClient`, has its own guard).
public final class SyncClient: @unchecked Sendable {
    public let uplink: UplinkConfig
    public let encoder: BatchEncoder
    public let http: CurlClient
    public let userAgent = "edged/\(EdgeCoreVersion.string)"

    public init(uplink: UplinkConfig, encoder: BatchEncoder) {
        self.uplink = uplink
        self.encoder = encoder
        self.http = CurlClient(
            tls: uplink.tls, connectTimeout: uplink.connectTimeout, requestTimeout: uplink.requestTimeout,
            proxy: uplink.proxy)
    }

    /// The request for a batch: JSON body gzip'd, bearer token, idempotency key.
    public func request(for batch: BufferBatch, token: String, sentAt: Int64, clockSynchronized: Bool) -> HTTPRequest {
        request(
            for: batch,
            gzippedBody: Gzip.compress(encoder.encode(batch, sentAt: sentAt, clockSynchronized: clockSynchronized)),
            token: token)
    }

    /// The request for a batch whose body (`encoder.encode(batch, …)`, gzip'd) is already made.
    public func request(for batch: BufferBatch, gzippedBody body: [UInt8], token: String) -> HTTPRequest {
        HTTPRequest(
            url: uplink.endpoint,
            headers: [
                ("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                ("Authorization", "Bearer \(token)"),
                ("Idempotency-Key", encoder.idempotencyKey(batch)), ("User-Agent", userAgent)
            ], body: body)
    }

    /// A probe (`edgectl uplink test`): authenticated, schema-checked, nothing stored.
    public func probeRequest(token: String, epoch: String, sentAt: Int64, clockSynchronized: Bool) -> HTTPRequest {
        HTTPRequest(
            url: uplink.endpoint,
            headers: [
                ("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                ("Authorization", "Bearer \(token)"),
                ("User-Agent", userAgent), ("X-Edged-Probe", "1")
            ], body: Gzip.compress(encoder.probe(epoch: epoch, sentAt: sentAt, clockSynchronized: clockSynchronized)))
    }
}
