import EdgeSystem
import EdgeTestSupport
import Foundation
import Testing

/// edged as a real process collecting a flow computer's EFM records (edgesim's Enron flow computer on loopback
/// TCP) and uploading them to the reference receiver: outages of the uplink and of the device are backfilled
/// with each record once at the receiver, and kill -9 at random points of a backfill loses and doubles nothing.
@Suite(.serialized) struct EFMDaemonTests {
    let edgectl = TestPaths.product("edgectl")
    static let start = "2026-11-01T00:00:00"

    /// `edgectl efm status --json` for efm-1; nil when edged does not answer.
    func efmStatus(_ pad: PadFixture) async -> [String: Any]? {
        guard
            let r = try? await runTool(
                edgectl, ["efm", "status", "--device", "efm-1", "--socket", pad.controlSocket, "--json"], timeout: 15),
            r.status == 0,
            let list = try? JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [[String: Any]]
        else { return nil }
        return list.first
    }

    /// Waits for `condition`; on a timeout records `explain()` (what stands) as the failure.
    func await_(
        _ timeout: Double, _ condition: () async throws -> Bool, explain: () async -> String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        if await eventually(timeout: timeout, { (try? await condition()) ?? false }) { return }
        Issue.record(Comment(rawValue: await explain()), sourceLocation: sourceLocation)
    }

    static func int(_ d: [String: Any]?, _ path: String...) -> Int {
        var o: Any? = d
        for p in path { o = (o as? [String: Any])?[p] }
        return (o as? NSNumber)?.intValue ?? -1
    }

    /// What the receiver holds of efm-1: records by kind (first copies), conflicts, gaps, and how many seqs
    /// carried each natural key (the gateway sending one record under two seqs would show here).
    struct AtReceiver {
        var byKind: [String: Int] = [:]
        var conflicts = 0
        var gaps = 0
        var seqsPerKey: [String: Int] = [:]
        var total: Int { byKind.values.reduce(0, +) }
    }

    func atReceiver(_ pad: PadFixture) async throws -> AtReceiver {
        var out = AtReceiver()
        let records = try await pad.adminGet("/efm/records?gateway=pad-gw&device=efm-1")["records"] as? [[String: Any]]
        for r in records ?? [] { out.byKind[r["kind"] as? String ?? "?", default: 0] += 1 }
        out.conflicts = (try await pad.adminGet("/efm/conflicts?gateway=pad-gw")["count"] as? NSNumber)?.intValue ?? -1
        out.gaps = (try await pad.adminGet("/efm/gaps?gateway=pad-gw")["count"] as? NSNumber)?.intValue ?? -1
        for r in try await pad.storedRecords() where r["kind"] as? String == "efm" {
            let body = r["record"] as? [String: Any] ?? [:]
            out.seqsPerKey["\(body["kind"] ?? "?")/\(body["key"] ?? "?")", default: 0] += 1
        }
        return out
    }

    /// edgesim's view of the flow computer: records ever written per archive (pointers, base 1, last written).
    func simWritten(_ pad: PadFixture) async throws -> (hourly: Int, daily: Int) {
        let words = try await pad.simCommand("efm efm-1 status").split(separator: " ").map(String.init)
        func after(_ w: String) -> Int { words.firstIndex(of: w).flatMap { Int(words[$0 + 2]) } ?? -1 }
        return (after("hourly"), after("daily"))
    }

    /// Over loopback TCP, and over a serial pty pair (RTU at 19200 baud).
    @Test(arguments: [false, true]) func anUplinkOutageThenADeviceOutageAreBackfilledOnceAtTheReceiver(serial: Bool)
        async throws
    {
        let pad = try PadFixture(
            efm: "{meter: PAD-M1, check: 1s}",
            flowComputer: "{profile: scanner2000, bus: pad-lan, unit: 20, historyHours: 240, clock: \"\(Self.start)\"}",
            efmOverSerial: serial)
        // Over 19200 baud a record is a ~50 ms exchange, taken only in efm-1's live polls' slack: minutes.
        let patience: Double = serial ? 300 : 60
        try await pad.startSimulator()
        // Ten days of hourly records on the device, and no uplink: all collected and held in the buffer.
        let edged = try pad.startEdged()
        defer { edged.terminate() }
        await await_(
            patience,
            {
                let s = await efmStatus(pad)
                return Self.int(s, "records", "hourly") == 240 && Self.int(s, "records", "daily") == 10
                    && Self.int(s, "queued") == 250
            }, explain: { "\(String(describing: await efmStatus(pad)))\n\(pad.log("edged.log"))" })
        // The uplink comes back: each record arrives once.
        try await pad.startReceiver()
        await await_(
            patience, { (try? await atReceiver(pad).total) == 250 },
            explain: { "\(String(describing: try? await atReceiver(pad)))\n\(pad.log("receiver.log").suffix(3000))" })
        // The device goes silent for two days of its own time: edged sees it away, and when it answers again the
        // 48 hourly and 2 daily records written meanwhile are collected after the stored ones.
        pad.sim?.terminate()
        #expect(
            await eventually(timeout: 30) {
                (await efmStatus(pad)?["collection"] as? [String: Any])?["lastError"] != nil
            })
        let profile = try String(contentsOfFile: pad.dir.file("profile.yaml"), encoding: .utf8)
            .replacingOccurrences(
                of: "historyHours: 240, clock: \"\(Self.start)\"",
                with: "historyHours: 288, clock: \"2026-11-03T00:00:00\"")
        try profile.write(toFile: pad.dir.file("profile.yaml"), atomically: true, encoding: .utf8)
        try await pad.startSimulator()
        await await_(
            patience, { (try? await atReceiver(pad).total) == 300 },
            explain: { "\(String(describing: try? await atReceiver(pad)))\n\(pad.log("edged.log").suffix(3000))" })
        let r = try await atReceiver(pad)
        #expect(r.byKind == ["hourly": 288, "daily": 12])
        #expect(r.conflicts == 0 && r.gaps == 0)
        #expect(r.seqsPerKey.count == 300 && r.seqsPerKey.values.allSatisfy { $0 == 1 }, "a record sent under two seqs")
        let s = await efmStatus(pad)
        #expect(Self.int(s, "queued") == 0 && Self.int(s, "uploaded") == 300, "\(String(describing: s))")
        // The stored records' CSV export: a header and one line per daily record, each ending in its raw bytes.
        let csv = try await runTool(
            edgectl, ["efm", "export", "efm-1", "--archive", "daily", "--socket", pad.controlSocket], timeout: 15)
        let lines = csv.output.split(separator: "\n")
        #expect(csv.status == 0 && lines.count == 13 && lines[0].hasPrefix("meter_id,archive"), "\(csv.output)")
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix("PAD-M1,daily,") })
    }

    /// kill -9 at random points of backfills (the flow computer on an emulated 9600-baud line, so a day of
    /// records takes seconds to read), while the uplink sends what was stored: afterwards every record and
    /// event the device wrote is at the receiver once, none is missing and none came under two seqs.
    @Test func killNineDuringBackfillsLosesAndDoublesNothing() async throws {
        let pad = try PadFixture(
            pollInterval: "2s", efm: "{meter: PAD-M1, check: 1s}",
            flowComputer:
                "{profile: scanner2000, bus: pad-lan, unit: 20, historyHours: 24, clock: \"\(Self.start)\", baud: 9600}"
        )
        try await pad.startReceiver()
        try await pad.startSimulator()
        var random = SplitMix64(seed: UInt64(SystemClock.wallMillis()))
        let seed = random.state
        for round in 1...20 {
            // A day more on the device, and an operator's change in its event log.
            _ = try await pad.simCommand("efm efm-1 advance 24")
            _ = try await pad.simCommand("efm efm-1 param 7110 \(2.0 + Double(round) / 8)")
            let edged = try pad.startEdged()
            let delay = 300 + Int(random.next() % 3000)
            try await Task.sleep(for: .milliseconds(delay))
            edged.signal(SIGKILL)
            #expect(await edged.wait(timeout: 10) != nil, "round \(round): edged did not die")
        }
        let written = try await simWritten(pad)
        #expect(written.hourly == 24 * 21 && written.daily == 21, "\(written)")
        let edged = try pad.startEdged()
        defer { edged.terminate() }
        let expected = written.hourly + written.daily + 20
        await await_(
            180, { (try? await atReceiver(pad).total) == expected },
            explain: {
                "seed \(seed): \(String(describing: try? await atReceiver(pad)))\n\(pad.log("edged.log").suffix(3000))"
            })
        let r = try await atReceiver(pad)
        #expect(r.byKind == ["hourly": written.hourly, "daily": written.daily, "event": 20], "seed \(seed)")
        #expect(r.conflicts == 0 && r.gaps == 0, "seed \(seed)")
        #expect(
            r.seqsPerKey.count == expected && r.seqsPerKey.values.allSatisfy { $0 == 1 },
            "seed \(seed): a record stored twice in the buffer and sent under two seqs")
        let s = await efmStatus(pad)
        #expect(
            Self.int(s, "records", "hourly") == written.hourly && Self.int(s, "records", "event") == 20,
            "seed \(seed): \(String(describing: s))")
    }

    /// The flow computer's own DP-high alarm, from its event log, raised and cleared at the receiver (kind
    /// device-alarm, in a version-2 batch) once edged stored the event records.
    @Test func aFlowComputersOwnAlarmIsRaisedAndClearedFromItsEventLog() async throws {
        let pad = try PadFixture(
            efm: "{meter: PAD-M1, check: 1s}",
            flowComputer: "{profile: scanner2000, bus: pad-lan, unit: 20, historyHours: 2, clock: \"\(Self.start)\"}",
            extraAlarms:
                "- {name: efm-1-dp-high, type: device-alarm, device: efm-1, register: 7101, limit: hi, priority: high}")
        try await pad.startReceiver()
        try await pad.startSimulator()
        let edged = try pad.startEdged()
        defer { edged.terminate() }
        func transitions() async -> [String] {
            ((try? await pad.storedRecords()) ?? []).compactMap { r -> String? in
                let body = r["record"] as? [String: Any] ?? [:]
                guard r["kind"] as? String == "alarm", body["alarm"] as? String == "efm-1-dp-high" else { return nil }
                return "\(body["kind"] ?? "?") \(body["transition"] ?? "?")"
            }
        }
        // Two hourly records and the daily record closed at midnight (contract hour 0).
        await await_(60, { (try? await atReceiver(pad).total) == 3 }, explain: { pad.log("edged.log") })
        // The DP alarm limit set below the flowing DP: the device logs an alarm-set record at the hour's close.
        _ = try await pad.simCommand("efm efm-1 param 7112 10")
        _ = try await pad.simCommand("efm efm-1 advance 1")
        await await_(
            60, { await transitions() == ["device-alarm raised"] },
            explain: { "\(await transitions())\n\(pad.log("edged.log").suffix(3000))" })
        _ = try await pad.simCommand("efm efm-1 param 7112 100")
        _ = try await pad.simCommand("efm efm-1 advance 1")
        await await_(
            60, { await transitions() == ["device-alarm raised", "device-alarm cleared"] },
            explain: { "\(await transitions())\n\(pad.log("edged.log").suffix(3000))" })
        let r = try await atReceiver(pad)
        #expect(r.byKind["event"] == 4, "two parameter changes and the alarm's set and clear: \(r.byKind)")
    }

    /// kill -9 between the commit of events and their acknowledge (the device does not answer the acknowledge
    /// while edged is killed): after the restart the events are read again, stored once, and acknowledged.
    @Test func eventsStoredButNotAcknowledgedAreReadAgainAndStoredOnce() async throws {
        let pad = try PadFixture(
            efm: "{meter: PAD-M1, check: 1s}",
            flowComputer: "{profile: scanner2000, bus: pad-lan, unit: 20, historyHours: 2, clock: \"\(Self.start)\"}")
        try await pad.startReceiver()
        try await pad.startSimulator()
        _ = try await pad.simCommand("efm efm-1 acks off")
        _ = try await pad.simCommand("efm efm-1 param 7110 2.25")
        _ = try await pad.simCommand("efm efm-1 param 7111 4.5")
        var edged = try pad.startEdged()
        // Stored (committed) and the acknowledge sent, unanswered: the device still holds both events.
        await await_(
            60,
            {
                let s = await efmStatus(pad)
                return Self.int(s, "records", "event") == 2 && (s?["collection"] as? [String: Any])?["lastError"] != nil
            }, explain: { "\(String(describing: await efmStatus(pad)))\n\(pad.log("edged.log").suffix(2000))" })
        #expect(try await pad.simCommand("efm efm-1 status").contains("events 2"))
        edged.signal(SIGKILL)
        _ = await edged.wait(timeout: 10)
        _ = try await pad.simCommand("efm efm-1 acks on")
        edged = try pad.startEdged()
        defer { edged.terminate() }
        // Read again, kept once (duplicates), acknowledged: the device's log empties.
        await await_(
            60, { (try? await pad.simCommand("efm efm-1 status").contains("events 0")) == true },
            explain: { "\(String(describing: await efmStatus(pad)))\n\(pad.log("edged.log").suffix(2000))" })
        await await_(60, { (try? await atReceiver(pad).byKind["event"]) == 2 }, explain: { pad.log("edged.log") })
        let r = try await atReceiver(pad)
        #expect(r.seqsPerKey.filter { $0.key.hasPrefix("event/") }.count == 2)
        #expect(r.seqsPerKey.values.allSatisfy { $0 == 1 }, "an event stored twice in the buffer")
        #expect(Self.int(await efmStatus(pad), "records", "event") == 2)
    }
}
