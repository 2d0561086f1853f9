import EdgeBuffer
import EdgeCore
import EdgeTestSupport
import Foundation
import Testing
import Uplink

/// The upload loop (`UplinkService`) draining a real buffer to the reference receiver over TLS on loopback,
/// with the receiver's faults standing in for what networks and servers do (docs/sync-protocol.md §7).
/// Every test checks what an operator would: what the receiver stored (each seq once), and what the buffer
/// still holds.
@Suite(.serialized) struct UplinkDeliveryTests {
    @Test func drainsTheBacklogAndTheReceiverStoresEveryRecordOnce() async throws {
        let rx = try ReferenceReceiver()
        let h = try UplinkHarness(rx, maxRecords: 100)
        let readings = try await h.appendReadings(1000, bad: [5, 500])
        let alarm = try await h.appendAlarm()
        h.start()
        #expect(await h.drained(), "buffer still holds \(h.queued); \(h.status)")
        await h.stop()

        #expect(try rx.storedSeqs(epoch: h.epoch).seqs == (readings + [alarm]).sorted())
        let s = try rx.stats()
        #expect(s.recordsStored == 1001 && s.duplicates == 0)
        #expect(s.batches == 11, "ten batches of readings and the alarm event in a request of its own")
        #expect(h.status.recordsAcknowledged == 1001 && h.status.lastError == nil && h.status.alarms.isEmpty)

        // What arrived is what was stored at the gateway: device, tag, units, time, value, quality.
        var checked = 0
        for r in try rx.records(epoch: h.epoch, limit: 2000) {
            guard let seq = (r["seq"] as? NSNumber)?.int64Value else { continue }
            if seq == alarm {
                let body = r["record"] as? [String: Any]
                #expect(body?["alarm"] as? String == "rpc-1-tubing" && body?["transition"] as? String == "raised")
                continue
            }
            let want = try #require(h.appended[seq])
            #expect(r["device"] as? String == want.device && r["tag"] as? String == want.tag)
            #expect(r["units"] as? String == h.units(want.device, want.tag))
            #expect((r["t"] as? NSNumber)?.int64Value == want.wallMillis)
            // float32 registers travel as their shortest Float text: equal as Float, not as Double.
            let got = (r["v"] as? NSNumber)?.doubleValue
            let float32 = h.tag(want.device, want.tag).map { NumberFormat.of($0) == .float32 } ?? false
            #expect(
                float32 ? got.map(Float.init) == want.value?.number.map(Float.init) : got == want.value?.number,
                "seq \(seq)")
            #expect(r["q"] as? String == (want.quality.isGood ? "good" : "timeout"))
            checked += 1
        }
        #expect(checked == 1000)
    }

    @Test func responseLostAfterTheServerStoredTheBatchIsRetriedAndStoredOnce() async throws {
        let rx = try ReferenceReceiver()
        let h = try UplinkHarness(rx, maxRecords: 100)
        let seqs = try await h.appendReadings(300)
        try rx.setFault(#"{"mode": "drop-response-after-store", "count": 1}"#)
        h.start()
        #expect(await h.drained(), "buffer still holds \(h.queued); \(h.status)")
        await h.stop()

        let s = try rx.stats()
        #expect(s.duplicates == 100, "the retried batch is all duplicates at the receiver")
        #expect(s.recordsStored == 300)
        #expect(try rx.storedSeqs(epoch: h.epoch).seqs == seqs)
        // The retry came after a backoff drawn from 0…1 s (the first step of the exponential backoff).
        #expect(h.draws.all.first == 0...1000)
    }

    @Test func retryAfterIsHonouredInSecondsAndAsAnHTTPDate() async throws {
        let rx = try ReferenceReceiver()
        let h = try UplinkHarness(rx, maxRecords: 100)
        let seqs = try await h.appendReadings(200)
        try rx.setFault(#"{"mode": "status", "code": 429, "retryAfter": 2, "count": 1}"#)
        h.start()
        #expect(try await eventually { try rx.stats().answered(429) == 1 })
        // While the gateway waits out the 2 s, the next answer becomes a 503 with an HTTP-date 2 s ahead.
        try rx.setFault(#"{"mode": "status", "code": 503, "retryAfterDateIn": 2, "count": 1}"#)
        #expect(await h.drained(), "buffer still holds \(h.queued); \(h.status)")
        await h.stop()

        // The receiver's access log: 429, then 503, then the batches stored.
        let log = rx.requestLog()
        let t429 = try #require(log.first { $0.line.hasPrefix("429 ") }?.time)
        let t503 = try #require(log.first { $0.line.hasPrefix("503 ") }?.time)
        let t200 = try #require(log.first { $0.line.hasPrefix("200 ") }?.time)
        // The backoff alone would have retried at once (the injected draw is the lower bound, 0).
        #expect(h.draws.all.prefix(2).allSatisfy { $0.lowerBound == 0 })
        #expect(
            t503.timeIntervalSince(t429) >= 2.0,
            "the next attempt came \(t503.timeIntervalSince(t429)) s after 'Retry-After: 2'")
        // An HTTP-date has whole seconds: "2 s ahead" is 1 to 2 s ahead.
        #expect(
            t200.timeIntervalSince(t503) >= 1.0,
            "the next attempt came \(t200.timeIntervalSince(t503)) s after a date 2 s ahead")
        #expect(try rx.storedSeqs(epoch: h.epoch).seqs == seqs)
    }

    @Test func serverErrorsBackOffExponentiallyThenTheBatchGoesThrough() async throws {
        let rx = try ReferenceReceiver()
        let h = try UplinkHarness(rx, maxRecords: 100)
        var seqs = try await h.appendReadings(200)
        try rx.setFault(#"{"mode": "status", "code": 500, "count": 3}"#)
        h.start()
        #expect(await h.drained(), "buffer still holds \(h.queued); \(h.status)")
        #expect(h.draws.all == [0...1000, 0...2000, 0...4000], "full-jitter ceilings 1 s, 2 s, 4 s")
        #expect(try rx.stats().answered(500) == 3)
        #expect(h.status.lastError == nil && h.status.state != "backing off")

        // After a success the backoff starts again from its base.
        try rx.setFault(#"{"mode": "status", "code": 502, "count": 1}"#)
        seqs += try await h.appendReadings(50)
        h.service?.wake.signal()
        #expect(await h.drained(), "buffer still holds \(h.queued); \(h.status)")
        await h.stop()
        #expect(h.draws.all.last == 0...1000)
        let s = try rx.stats()
        #expect(s.recordsStored == 250 && s.duplicates == 0)
        #expect(try rx.storedSeqs(epoch: h.epoch).seqs == seqs)
    }

    @Test func batchesAreBoundedByRecordsAndByTheirEncodedSize() async throws {
        // batch.maxBytes bounds the JSON body, not a per-record guess: 1000 readings of the example pad are
        // about 20 KiB of JSON, so with 64 KiB allowed the record limit decides.
        let rx = try ReferenceReceiver()
        let h = try UplinkHarness(rx, maxRecords: 1000) { $0.batch.maxBytes = ByteCount(bytes: 64 << 10) }
        var seqs = try await h.appendReadings(2000)
        h.start()
        #expect(await h.drained(), "buffer still holds \(h.queued); \(h.status)")
        await h.stop()
        #expect(try rx.stats().batches == 2, "two batches of 1000")

        // With 4 KiB allowed, the size decides: every body stays within it. (400 readings make a dozen
        // batches; each acknowledgement is an fsync, which the rest of a parallel suite can make slow.)
        let small = try UplinkHarness(rx, maxRecords: 1000) { $0.batch.maxBytes = ByteCount(bytes: 4 << 10) }
        seqs = try await small.appendReadings(400)
        let before = try rx.stats()
        small.start()
        #expect(await small.drained(timeout: 60), "buffer still holds \(small.queued); \(small.status)")
        await small.stop()
        let after = try rx.stats()
        let batches = after.batches - before.batches,
            inflated = after.int("inflatedBytes") - before.int("inflatedBytes")
        #expect(batches > 2 && inflated <= batches * 4096, "\(batches) batches, \(inflated) bytes of JSON")
        #expect(((after.raw["lastBatch"] as? [String: Any])?["inflatedBytes"] as? NSNumber)?.intValue ?? .max <= 4096)
        #expect(try rx.storedSeqs(epoch: small.epoch).seqs == seqs)
    }

    @Test func tooLargeBatchesAreSplitAndEverythingArrives() async throws {
        let rx = try ReferenceReceiver(arguments: ["--max-body", "2KiB"])
        let h = try UplinkHarness(rx, maxRecords: 2000)
        let seqs = try await h.appendReadings(3000)
        h.start()
        #expect(await h.drained(timeout: 40), "buffer still holds \(h.queued); \(h.status)")
        await h.stop()

        let s = try rx.stats()
        #expect(s.answered(413) >= 1)
        #expect(s.recordsStored == 3000 && s.duplicates == 0)
        #expect(try rx.storedSeqs(epoch: h.epoch).seqs == seqs)
        #expect(
            try h.bufferStats().deadLetterRecords == 0, "nothing was set aside: a split batch is not a rejected one")
    }

    @Test func aRejectedBatchGoesToTheDeadLetterLaneAndTheRestContinues() async throws {
        let rx = try ReferenceReceiver()
        let h = try UplinkHarness(rx, maxRecords: 100)
        // Reading 150 has a tag name the protocol does not allow (§4.1: [A-Za-z_][A-Za-z0-9_]*): the receiver
        // answers 400 to the batch holding it, records 100…199.
        let seqs = try await h.appendReadings(400, tagNamed: { $0 == 150 ? "tubing pressure" : nil })
        let service = h.start()
        #expect(await h.drained(), "buffer still holds \(h.queued); \(h.status)")
        #expect(await eventually { service.status.alarms == [UplinkAlarm.rejectedBatch.rawValue] }, "\(service.status)")
        // The alarm stands until an operator acknowledges the dead letters (`edgectl uplink ack-rejected`);
        // before, nothing called for it and it cleared only with a reload or a restart.
        #expect(service.acknowledgeRejected())
        #expect(await eventually { service.status.alarms.isEmpty }, "\(service.status)")
        #expect(
            await eventually { h.alarmChanges.summary == ["+uplink-rejected-batch", "-uplink-rejected-batch"] },
            "\(h.alarmChanges.summary)")
        await h.stop()

        let rejected = Array(seqs[100..<200])
        #expect(try rx.storedSeqs(epoch: h.epoch).seqs == Array(seqs[0..<100] + seqs[200...]))
        #expect(try rx.stats().answered(400) == 1)
        let buffer = try h.bufferStats()
        #expect(buffer.deadLetterRecords == 100 && buffer.deadLetterBatches == 1)
        let dead = try h.store.deadLetterBatches()
        #expect(dead.first?.firstSeq == rejected.first && dead.first?.lastSeq == rejected.last)
        #expect(dead.first?.reason.contains("400") == true, "\(dead)")
        #expect(try h.store.deadLetters(maxRecords: 1000).map(\.seq) == rejected)
        #expect(h.status.deadLetterBatches == 1)
    }

    /// A refused token holds the endpoint for both lanes (one 401, not one per lane), keeps everything, and
    /// retries after 30 s — and at once when the token source holds another token (before, the next try was
    /// 5 to 10 minutes away even when the server took the token again a second later).
    @Test func aRefusedTokenKeepsEverythingRaisesTheUplinkAlarmAndARepairedTokenGoesAtOnce() async throws {
        let rx = try ReferenceReceiver()
        let wrong = rx.dir.file("wrong-token")
        _ = FileManager.default.createFile(
            atPath: wrong, contents: Data("not-the-token".utf8), attributes: [.posixPermissions: 0o600])
        let h = try UplinkHarness(rx, maxRecords: 100) { $0.token = .file(wrong) }
        let seqs = try await h.appendReadings(150)
        let alarm = try await h.appendAlarm()
        let service = h.start()
        #expect(await eventually { service.status.alarms == [UplinkAlarm.unauthorized.rawValue] }, "\(service.status)")
        #expect(await eventually { service.status.state == "token refused" }, "\(service.status)")
        let status = service.status
        #expect(try rx.stats().answered(401) == 1, "the endpoint is held for both lanes")
        #expect(status.lastError?.contains("401") == true, "\(status)")
        // The next attempt: 30 s away (the first step of the slow retry).
        let wait = (status.nextAttemptMillis ?? 0) - Int64(Date().timeIntervalSince1970 * 1000)
        #expect(wait > 20_000 && wait <= 30_000, "next attempt in \(wait) ms")
        let buffer = try h.bufferStats()
        #expect(
            buffer.readingRecords == 150 && buffer.alarmRecords == 1 && buffer.deadLetterRecords == 0,
            "nothing deleted or set aside")
        #expect(try rx.stats().recordsStored == 0)

        // A field tech puts the right token in place: the loop sees it at its next look and sends at once.
        try Data(contentsOf: URL(fileURLWithPath: rx.tokenFile)).write(to: URL(fileURLWithPath: wrong))
        let fixed = ContinuousClock.now
        service.wake.signal()
        #expect(await h.drained(timeout: 10), "buffer still holds \(h.queued); \(h.status)")
        #expect(ContinuousClock.now - fixed < .seconds(10))
        #expect(await eventually { service.status.alarms.isEmpty }, "\(service.status)")
        await h.stop()
        #expect(try rx.storedSeqs(epoch: h.epoch).seqs == (seqs + [alarm]).sorted())
        #expect(try rx.stats().answered(401) == 1)
    }

    @Test func anAlarmEventOvertakesALargeBacklog() async throws {
        let rx = try ReferenceReceiver()
        let h = try UplinkHarness(rx, maxRecords: 500)
        let readings = try await h.appendReadings(20_000)
        try rx.setFault(#"{"mode": "delay", "ms": 150}"#)  // every request takes a while: the drain lasts seconds
        h.start()
        #expect(try await eventually { try rx.stats().batches >= 2 })
        let raised = ContinuousClock.now
        let alarm = try await h.appendAlarm()
        let arrived = try await eventually(timeout: 2) { try rx.storedSeqs(epoch: h.epoch).seqs.contains(alarm) }
        let took = ContinuousClock.now - raised
        #expect(arrived, "alarm event not stored within 2 s (\(took))")
        #expect(try h.bufferStats().readingRecords > 5000, "the backlog was still draining")
        // It went in a request of its own.
        #expect(rx.requestLog().contains { $0.line.contains("seq=\(alarm)-\(alarm) records=1 ") })
        try rx.setFault(#"{"mode": "none"}"#)
        #expect(await h.drained(), "buffer still holds \(h.queued); \(h.status)")
        await h.stop()
        #expect(try rx.storedSeqs(epoch: h.epoch).seqs == (readings + [alarm]).sorted())
        #expect(try rx.stats().duplicates == 0)
    }

    /// The endpoint, not the lane, owns Retry-After: after a 503 with `Retry-After: 3`, no request of
    /// either lane goes before it expires (each lane honoured it on its own before: two requests, 60 ms apart,
    /// every time); then the alarm event raised meanwhile goes first, in a request of its own.
    @Test func afterA503WithRetryAfterNothingGoesUntilItExpiresThenAlarmsFirst() async throws {
        let rx = try ReferenceReceiver()
        let h = try UplinkHarness(rx, maxRecords: 100)
        let readings = try await h.appendReadings(200)
        try rx.setFault(#"{"mode": "status", "code": 503, "retryAfter": 3, "count": 1}"#)
        h.start()
        #expect(try await eventually { try rx.stats().answered(503) == 1 })
        let alarm = try await h.appendAlarm()
        #expect(await h.drained(), "buffer still holds \(h.queued); \(h.status)")
        await h.stop()

        let log = rx.requestLog()
        let i503 = try #require(log.firstIndex { $0.line.hasPrefix("503 ") })
        let next = try #require(log.dropFirst(i503 + 1).first)
        #expect(
            next.time.timeIntervalSince(log[i503].time) >= 3.0,
            "the next request came \(next.time.timeIntervalSince(log[i503].time)) s after 'Retry-After: 3'")
        #expect(next.line.contains("seq=\(alarm)-\(alarm) records=1 "), "the alarm event goes first: \(next.line)")
        #expect(try rx.storedSeqs(epoch: h.epoch).seqs == (readings + [alarm]).sorted())
        #expect(try rx.stats().duplicates == 0)
    }

    @Test func readingsAndAlarmsTimedWithAnUnsynchronizedClockAreFlaggedAtTheReceiver() async throws {
        let rx = try ReferenceReceiver()
        let h = try UplinkHarness(rx, maxRecords: 100)
        // A box that booted without a network: its first readings were timed before NTP synchronized.
        var readings = UplinkHarness.examplePadReadings(
            h.config, count: 250, startMillis: Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000)
        for i in readings.indices where i < 120 || (200..<210).contains(i) { readings[i].clockSynchronized = false }
        let seqs = Array(try #require(try await h.store.append(readings: readings, units: h.units)))
        var alarm = AlarmEventRecord(
            alarm: "rpc-1-tubing", occurrence: "o-1", kind: "limit", device: "rpc-1", tag: "tubing_pressure",
            level: "h", transition: .raised, priority: "high", value: 460, limit: 450,
            reason: "tubing_pressure 460 psi >= H 450 psi",
            wallMillis: Int64(Date().timeIntervalSince1970 * 1000), clockSynchronized: false)
        let alarmSeq = try await h.store.append(alarm: alarm)
        alarm.clockSynchronized = nil
        _ = try await h.store.append(alarm: alarm)

        h.start()
        #expect(await h.drained(), "\(h.status)")
        await h.stop()
        let records = try rx.records(epoch: h.epoch, limit: 10_000)
        let flagged = Set(
            records.filter { ($0["clockSynchronized"] as? Bool) == false }.compactMap {
                ($0["seq"] as? NSNumber)?.int64Value
            })
        let expected = Set(zip(seqs, readings).filter { !$0.1.clockSynchronized }.map(\.0) + [alarmSeq])
        #expect(records.count == 252)
        #expect(flagged == expected, "flagged \(flagged.count), expected \(expected.count)")
    }
}
