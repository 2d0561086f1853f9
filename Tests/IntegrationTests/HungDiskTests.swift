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
        #expect(await eventually(timeout: 30) { pad.log("edged.log").contains("buffer writer stuck") }, "\(pad.log("edged.log").suffix(2000))")
        #expect(await eventually(timeout: 30) { (notify.sinceLast("WATCHDOG=1") ?? .zero) > watchdog },
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
        #expect(human.status == 0 && human.output.contains("writer    in one commit for") && human.output.contains("STUCK"), "\(human.output)")
        let pingsWhileHung = notify.count("WATCHDOG=1")
        let storedWhileHung = try await pad.receiverCounts().stored

        fs.thaw()
        #expect(await eventually(timeout: 30) { notify.count("WATCHDOG=1") >= pingsWhileHung + 2 }, "\(pad.log("edged.log").suffix(2000))")
        #expect(pad.log("edged.log").contains("buffer writer progressing again"))
        #expect(await eventually(timeout: 15) {
            ((await status(pad)?["writer"] as? [String: Any])?["stalledMillis"] as? NSNumber)?.int64Value ?? -1 < 1000
        })
        #expect(await eventually(timeout: 30) { (try? await pad.receiverCounts().stored) ?? 0 > storedWhileHung })

        // Nothing lost, nothing twice: stop polling, drain, stop, and account for every seq given out.
        #expect(await stopSimulatorAndAwaitQuiet(pad), "\(pad.log("edged.log").suffix(2000))")
        #expect(await eventually(timeout: 60) { await backlog(pad).map { $0.alarm == 0 && $0.reading == 0 } ?? false },
                "\(pad.log("edged.log").suffix(2000))")
        edged.signal(SIGTERM)
        #expect(await edged.wait(timeout: 25).map { ($0 >> 8) & 0xFF } == 0)
        let buffer = try queuedSeqs(fs.file("buffer.db"))
        let seqs = try await pad.storedSeqs()[buffer.epoch] ?? []
        #expect(seqs.count == Set(seqs).count, "stored twice: \(seqs.count - Set(seqs).count)")
        let accounted = Set(seqs).union(buffer.seqs)
        #expect(accounted == Set(1...buffer.lastSeq), "missing: \(Set(1...buffer.lastSeq).subtracting(accounted).sorted().prefix(20))")
        #expect(Set(seqs).isDisjoint(with: buffer.seqs), "acknowledged but still queued")
    }
}
