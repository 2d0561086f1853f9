import EdgeRuntime
import EdgeTestSupport
import Foundation
import Testing

extension DaemonTests {
    /// Responses from all devices so far, from `edgectl devices`.
    func responses(_ pad: PadFixture) async -> Int? {
        guard let list = await edgectlJSON(pad, "devices") as? [[String: Any]] else { return nil }
        return list.reduce(0) { $0 + ((($1["counters"] as? [String: Any])?["responses"] as? NSNumber)?.intValue ?? 0) }
    }

    /// A disk that stops completing writes: the buffer writer hangs in its commit, edged stops its watchdog
    /// pings (systemd would restart it) while its buses keep stepping, says why in the log, and when the
    /// disk comes back the pings resume and every reading reaches the receiver once.
    @Test func aHungDiskStopsTheWatchdogPingsAndNothingIsLostWhenItComesBack() async throws {
        let fs = try await FreezableFilesystem.make()
        let pad = try PadFixture(bufferPath: fs.file("buffer.db"), storageSettings: "stuckAfter: 2s")
        try await pad.startReceiver()
        try await pad.startSimulator()
        let notify = try NotifyListener(path: pad.dir.file("notify.sock"))
        let watchdog = Duration.seconds(3)
        let edged = try pad.startEdged(notifySocket: notify.path, watchdogMicros: 3_000_000)
        defer { edged.terminate() }
        defer { fs.thaw() }  // runs before edged is terminated: a process stuck on a frozen disk cannot exit
        #expect(await eventually(timeout: 30) { notify.count("READY=1") >= 1 }, "\(pad.log("edged.log"))")
        #expect(await eventually(timeout: 20) { (try? await pad.receiverCounts().stored) ?? 0 > 0 })
        #expect(await eventually(timeout: 15) { notify.count("WATCHDOG=1") >= 2 })

        try await fs.freeze()
        // The writer's next commit hangs; once it has hung for storage.stuckAfter, the pings stop and the log
        // says why. systemd's own test: no ping for longer than WatchdogSec.
        #expect(
            await eventually(timeout: 30) { pad.log("edged.log").contains("buffer writer stuck") },
            "\(pad.log("edged.log").suffix(2000))")
        #expect(
            await eventually(timeout: 30) { (notify.sinceLast("WATCHDOG=1") ?? .zero) > watchdog },
            "pings went on: last \(String(describing: notify.sinceLast("WATCHDOG=1"))) ago")
        #expect(edged.isRunning)
        // The buses poll on meanwhile (their counters live in memory; `edgectl devices` answers from there).
        let responsesWhenHung = try #require(await responses(pad))
        #expect(await eventually(timeout: 15) { (await responses(pad) ?? 0) >= responsesWhenHung + 4 })
        // edgectl status answers (from memory where the disk would hang it) and tells the field tech why.
        let writer = try #require(await status(pad)?["writer"] as? [String: Any])
        #expect(((writer["stalledMillis"] as? NSNumber)?.int64Value ?? 0) >= 2000, "\(writer)")
        #expect((writer["stuckAfterMillis"] as? NSNumber)?.int64Value == 2000, "\(writer)")
        let human = try await runTool(edgectl, ["status", "--socket", pad.controlSocket], timeout: 15)
        #expect(
            human.status == 0 && human.output.contains("writer    in one commit for") && human.output.contains("STUCK"),
            "\(human.output)")
        let pingsWhileHung = notify.count("WATCHDOG=1")
        let storedWhileHung = try await pad.receiverCounts().stored

        fs.thaw()
        #expect(
            await eventually(timeout: 30) { notify.count("WATCHDOG=1") >= pingsWhileHung + 2 },
            "\(pad.log("edged.log").suffix(2000))")
        #expect(pad.log("edged.log").contains("buffer writer progressing again"))
        #expect(
            await eventually(timeout: 15) {
                ((await status(pad)?["writer"] as? [String: Any])?["stalledMillis"] as? NSNumber)?.int64Value ?? -1
                    < 1000
            })
        #expect(await eventually(timeout: 30) { (try? await pad.receiverCounts().stored) ?? 0 > storedWhileHung })

        // Nothing lost, nothing twice: stop polling, drain, stop, and account for every seq given out.
        #expect(await stopSimulatorAndAwaitQuiet(pad), "\(pad.log("edged.log").suffix(2000))")
        #expect(
            await eventually(timeout: 60) { await backlog(pad).map { $0.alarm == 0 && $0.reading == 0 } ?? false },
            "\(pad.log("edged.log").suffix(2000))")
        edged.signal(SIGTERM)
        #expect(await edged.wait(timeout: 25).map { ($0 >> 8) & 0xFF } == 0)
        let buffer = try queuedSeqs(fs.file("buffer.db"))
        let seqs = try await pad.storedSeqs()[buffer.epoch] ?? []
        #expect(seqs.count == Set(seqs).count, "stored twice: \(seqs.count - Set(seqs).count)")
        let accounted = Set(seqs).union(buffer.seqs)
        #expect(
            accounted == Set(1...buffer.lastSeq),
            "missing: \(Set(1...buffer.lastSeq).subtracting(accounted).sorted().prefix(20))")
        #expect(Set(seqs).isDisjoint(with: buffer.seqs), "acknowledged but still queued")
    }
}

extension DaemonTests {
    /// The control socket's `status`, asked directly (no edgectl process to start): the reply and how long
    /// edged took to give it.
    func timedStatus(_ pad: PadFixture) async -> (reply: [String: Any]?, seconds: Double) {
        let socket = pad.controlSocket
        let (data, seconds) = await Task.detached { () -> (Data?, Double) in
            let start = ContinuousClock.now
            let data = try? ControlClient.call(socket, ControlRequest(command: "status"), timeoutSeconds: 10)
            let elapsed = ContinuousClock.now - start
            return (data, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }.value
        let obj = data.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        return (obj?["result"] as? [String: Any], seconds)
    }

    /// Last time of a live value, from `edgectl tail --once --json` (edged's memory).
    func latestMillis(_ pad: PadFixture, _ device: String, _ tag: String) async -> Int64? {
        guard
            let r = try? await runTool(
                edgectl, ["tail", "--once", "--device", device, "--socket", pad.controlSocket, "--json"], timeout: 15),
            r.status == 0, let list = try? JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [[String: Any]]
        else { return nil }
        return (list.first { $0["tag"] as? String == tag }?["millis"] as? NSNumber)?.int64Value
    }

    func alarmState(_ pad: PadFixture, _ prefix: String) async -> String? {
        guard let list = await edgectlJSON(pad, "alarms") as? [[String: Any]] else { return nil }
        return list.first { ($0["id"] as? String)?.hasPrefix(prefix) == true }?["state"] as? String ?? "none"
    }

    /// A limit alarm raised and cleared while the disk hangs: ingest never waits for the alarm's commit (live
    /// values go on, the engine sees the clear), `status` answers from memory at once and `buffer` says it
    /// waits on the disk; after the thaw every reading the bus threads produced is accounted for — stored
    /// and delivered once, held back by report-by-exception, or counted in a gap record — and both alarm
    /// transitions reach the receiver.
    @Test func anAlarmRaisedAndClearedOnAHungDiskLosesNoPoll() async throws {
        let fs = try await FreezableFilesystem.make()
        // The watchdog is not under test here: stuckAfter at its maximum.
        let pad = try PadFixture(
            pollInterval: "200ms", bufferPath: fs.file("buffer.db"), storageSettings: "stuckAfter: 1h")
        try await pad.startReceiver()
        try await pad.startSimulator()
        let edged = try pad.startEdged()
        defer { edged.terminate() }
        defer { fs.thaw() }  // runs before edged is terminated: a process stuck on a frozen disk cannot exit
        #expect(
            await eventually(timeout: 30) { (try? await pad.receiverCounts().stored) ?? 0 > 0 },
            "\(pad.log("edged.log").suffix(2000))")

        try await fs.freeze()
        #expect(
            await eventually(timeout: 30) {
                ((await timedStatus(pad).reply?["writer"] as? [String: Any])?["stalledMillis"] as? NSNumber)?.int64Value
                    ?? 0 >= 1000
            }, "the writer did not hang on the frozen disk")

        // H is raised: its commit hangs like every other.
        #expect(try await pad.simCommand("set rpc-1.tubing_pressure 520").hasPrefix("ok"))
        #expect(await eventually(timeout: 15) { await alarmState(pad, "rpc-1-tubing") == "active" })
        // Ingest did not stop behind that commit: live values keep coming and the clear is seen.
        let raisedAt = try #require(await latestMillis(pad, "rpc-1", "casing_pressure"))
        #expect(
            await eventually(timeout: 15) {
                (await latestMillis(pad, "rpc-1", "casing_pressure") ?? 0) >= raisedAt + 1000
            },
            "live values stopped while the alarm's commit hung")
        #expect(try await pad.simCommand("set rpc-1.tubing_pressure 300").hasPrefix("ok"))
        // (Not acknowledged, so it stays listed as returned-unacknowledged.)
        #expect(
            await eventually(timeout: 15) {
                ["none", "returned-unacknowledged"].contains(await alarmState(pad, "rpc-1-tubing"))
            })

        // A field tech's look while the disk hangs: status from memory, at once; buffer says it is waiting.
        let (reply, seconds) = await timedStatus(pad)
        #expect(reply != nil && seconds < 2, "status took \(seconds) s")
        #expect((reply?["backlog"] as? [String: Any])?["reading"] != nil)
        // `buffer` reads the file: on a frozen filesystem that read may be served (pages in memory) or hang;
        // either way edged answers before edgectl's own 10 s timeout (in 4 s, from memory, if the read hangs).
        let buffer = try await runTool(edgectl, ["buffer", "--socket", pad.controlSocket], timeout: 15)
        #expect(buffer.status == 0 && buffer.output.contains("readings"), "\(buffer.output)")

        fs.thaw()
        #expect(await stopSimulatorAndAwaitQuiet(pad), "\(pad.log("edged.log").suffix(2000))")
        #expect(
            await eventually(timeout: 60) { await backlog(pad).map { $0.alarm == 0 && $0.reading == 0 } ?? false },
            "\(pad.log("edged.log").suffix(2000))")

        // Every reading polled is accounted for, in edged's own counts and at the receiver.
        var counts: [String: Int64] = [:]
        let balanced = await eventually(timeout: 30) {
            guard let b = await edgectlJSON(pad, "buffer") as? [String: Any] else { return false }
            for k in [
                "readingsPolled", "readingsDropped", "readingsSeen", "readingsSuppressed", "readingsStored",
                "readingsNotStored"
            ] {
                counts[k] = (b[k] as? NSNumber)?.int64Value ?? -1
            }
            return counts["readingsPolled"]! == counts["readingsSeen"]! + counts["readingsDropped"]!
                && counts["readingsSeen"]! == counts["readingsSuppressed"]! + counts["readingsStored"]! + counts[
                    "readingsNotStored"]!
        }
        #expect(balanced, "\(counts)")
        #expect(counts["readingsPolled"] ?? 0 > 0)
        let records = try await pad.storedRecords()
        let readings = records.filter { $0["kind"] as? String == "reading" }.count
        let gapped = records.filter { $0["kind"] as? String == "gap" }.reduce(Int64(0)) { total, g in
            let body = g["record"] as? [String: Any] ?? g
            let reason = body["reason"] as? String
            return total
                + (reason == "io-error" || reason == "disk-full" ? (body["count"] as? NSNumber)?.int64Value ?? 0 : 0)
        }
        #expect(
            Int64(readings) == counts["readingsStored"],
            "receiver has \(readings) readings; edged stored \(counts["readingsStored"] ?? -1)")
        #expect(
            gapped == (counts["readingsNotStored"] ?? 0) + (counts["readingsDropped"] ?? 0),
            "gap records name \(gapped)")
        #expect(try await pad.receiverCounts().duplicates == 0)
        let tubing = records.filter { r in
            let body = r["record"] as? [String: Any] ?? r
            return r["kind"] as? String == "alarm" && (body["alarm"] as? String) == "rpc-1-tubing"
        }.compactMap { (($0["record"] as? [String: Any] ?? $0)["transition"] as? String) }
        #expect(tubing.contains("raised") && tubing.contains("cleared"), "\(tubing)")
        edged.signal(SIGTERM)
        #expect(await edged.wait(timeout: 25).map { ($0 >> 8) & 0xFF } == 0)
    }
}
