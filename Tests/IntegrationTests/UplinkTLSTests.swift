import EdgeBuffer
import EdgeCore
import EdgeTestSupport
import Foundation
import Testing
import Uplink

/// The transport against the reference receiver: certificate verification, the public-key pin and mutual
/// TLS, through `SyncClient` (libcurl on the system OpenSSL) and through the upload loop.
@Suite(.serialized) struct UplinkTLSTests {
    /// A client for the harness's configuration, and the request for the first batch in its buffer.
    func firstRequest(_ h: UplinkHarness, client: SyncClient) async throws -> HTTPRequest {
        let batch = try #require(try await h.store.nextBatch(maxRecords: 100, maxBytes: 1 << 20))
        return client.request(
            for: batch, token: h.receiver.token, sentAt: Int64(Date().timeIntervalSince1970 * 1000),
            clockSynchronized: true)
    }

    func client(_ h: UplinkHarness) -> SyncClient {
        SyncClient(
            uplink: h.config.uplink,
            encoder: BatchEncoder(sender: UplinkService.sender(h.config), formats: BatchEncoder.formats(for: h.config)))
    }

    /// Sends and returns the transport error, or nil when an HTTP answer came back.
    func transportError(_ client: SyncClient, _ request: HTTPRequest) async -> TransportError? {
        do throws(TransportError) {
            _ = try await client.http.send(request)
            return nil
        } catch {
            return error
        }
    }

    @Test func aServerCertificateFromAnotherCAIsRefusedBeforeTheRequestIsSent() async throws {
        let rx = try ReferenceReceiver()
        let other = TempDir("edged-other-ca")
        let otherPKI = try TestPKI.make(in: other.file("pki"), gateway: rx.gateway)
        let h = try UplinkHarness(rx) { $0.tls = TLSSettings(caFile: otherPKI.caFile) }
        _ = try await h.appendReadings(50)

        let client = client(h)
        let error = await transportError(client, try await firstRequest(h, client: client))
        #expect(error?.kind == .tlsVerify, "\(String(describing: error))")
        #expect(
            error?.description.contains("TLS verification of 127.0.0.1 failed") == true, "\(String(describing: error))")

        // The upload loop keeps the records, says why, and raises the uplink's TLS alarm.
        let service = h.start()
        #expect(
            await eventually { service.status.alarms == [UplinkAlarm.untrustedServer.rawValue] }, "\(service.status)")
        // The gateway is told once (it stores a `system` alarm event), however many lanes and attempts fail.
        #expect(await eventually { h.alarmChanges.summary == ["+uplink-tls"] }, "\(h.alarmChanges.summary)")
        await h.stop()
        #expect(h.alarmChanges.all.first?.reason.contains("TLS verification of 127.0.0.1 failed") == true)
        #expect(service.status.lastError?.contains("TLS verification") == true, "\(service.status)")
        #expect(try h.bufferStats().readingRecords == 50)

        let s = try rx.stats()
        #expect(s.requests == 0 && s.batches == 0 && s.bodyBytes == 0, "no request reached the receiver: \(s.raw)")
        #expect(s.tlsHandshakeFailures >= 1)
    }

    @Test func aServerKeyThatDoesNotMatchThePinIsRefusedBeforeTheRequestIsSent() async throws {
        let rx = try ReferenceReceiver()
        let other = TempDir("edged-other-ca")
        let otherPKI = try TestPKI.make(in: other.file("pki"), gateway: rx.gateway)
        // The right CA (the certificate verifies), the pin of another key.
        let h = try UplinkHarness(rx) { $0.tls = TLSSettings(caFile: rx.pki.caFile, pinnedPublicKey: otherPKI.pin) }
        _ = try await h.appendReadings(50)

        let client = client(h)
        let error = await transportError(client, try await firstRequest(h, client: client))
        #expect(error?.kind == .pinMismatch, "\(String(describing: error))")

        let s = try rx.stats()
        #expect(s.requests == 0 && s.batches == 0 && s.bodyBytes == 0, "no request reached the receiver: \(s.raw)")

        // With the right pin the same client configuration gets through.
        let good = try UplinkHarness(rx) { $0.tls = TLSSettings(caFile: rx.pki.caFile, pinnedPublicKey: rx.pki.pin) }
        _ = try await good.appendReadings(10)
        let goodClient = self.client(good)
        let response = try await goodClient.http.send(try await firstRequest(good, client: goodClient))
        #expect(response.status == 200)
    }

    @Test func mutualTLSWorksWithTheClientCertificateAndFailsWithoutIt() async throws {
        let rx = try ReferenceReceiver(clientCertificates: true)
        let without = try UplinkHarness(rx)
        _ = try await without.appendReadings(20)
        let plain = client(without)
        let error = await transportError(plain, try await firstRequest(without, client: plain))
        // With TLS 1.3 the client learns of the refusal only when it uses the connection: a dropped connection.
        #expect(error?.kind == .dropped || error?.kind == .tls, "\(String(describing: error))")
        let refused = try rx.stats()
        #expect(
            refused.tlsHandshakeFailures >= 1 && refused.batches == 0,
            "the receiver refused the handshake: \(refused.raw)")
        #expect(try rx.stats().recordsStored == 0)

        let with = try UplinkHarness(rx) {
            $0.tls = TLSSettings(
                caFile: rx.pki.caFile, pinnedPublicKey: rx.pki.pin,
                clientCertificate: rx.pki.clientCertificate, clientKey: rx.pki.clientKey)
        }
        let seqs = try await with.appendReadings(200)
        with.start()
        #expect(await with.drained(), "buffer still holds \(with.queued); \(with.status)")
        await with.stop()
        #expect(try rx.storedSeqs(epoch: with.epoch).seqs == seqs)
        // The receiver saw the gateway's certificate (its access log names the certificate's CN).
        #expect(rx.log.contains("cn=\(rx.gateway)"))
    }
}
