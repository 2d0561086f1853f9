import EdgeBuffer
import EdgeCore
import EdgeRuntime
import EdgeSystem
import EdgeTestSupport
import Foundation
import Testing

/// edged as a real process: sd_notify on a test NOTIFY_SOCKET, reloads, SIGTERM, and kill -9 while polling
/// the simulator and uploading to a flapping receiver.
@Suite(.serialized) struct DaemonTests {
    let edgectl = TestPaths.product("edgectl")

    /// `edgectl COMMAND --json` against the pad's edged, parsed; nil when it fails.
    func edgectlJSON(_ pad: PadFixture, _ command: String) async -> Any? {
        guard let r = try? await runTool(edgectl, [command, "--socket", pad.controlSocket, "--json"], timeout: 15),
            r.status == 0
        else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(r.output.utf8))
    }

    func status(_ pad: PadFixture) async -> [String: Any]? { await edgectlJSON(pad, "status") as? [String: Any] }

    func backlog(_ pad: PadFixture) async -> (alarm: Int64, reading: Int64)? {
        guard let b = await status(pad)?["backlog"] as? [String: Any] else { return nil }
        return ((b["alarm"] as? NSNumber)?.int64Value ?? -1, (b["reading"] as? NSNumber)?.int64Value ?? -1)
    }

    /// Stops the simulator and waits until edged will record nothing more: both devices offline and the
    /// comm-loss alarm raised (its event is the last record). Then a drained backlog stays drained.
    func stopSimulatorAndAwaitQuiet(_ pad: PadFixture) async -> Bool {
        pad.sim?.terminate()
        return await eventually(timeout: 30) {
            guard (await status(pad)?["devicesOnline"] as? NSNumber)?.intValue == 0,
                let list = await edgectlJSON(pad, "alarms") as? [[String: Any]]
            else { return false }
            return list.contains {
                ($0["id"] as? String)?.hasPrefix("rpc-1-comm") == true && $0["state"] as? String == "active"
            }
        }
    }

    /// Every record still queued in a (closed) buffer file, by seq.
    func queuedSeqs(_ path: String) throws -> (epoch: String, lastSeq: Int64, seqs: Set<Int64>) {
        let (store, _) = try BufferStore.open(path: path, maxBytes: ByteCount(bytes: 64 << 20))
        defer { store.close() }
        let stats = try store.stats()
        let batch = try store.nextBatch(maxRecords: 10_000_000, maxBytes: Int.max / 2)
        return (store.epoch, stats.lastSeq, Set(batch?.records.map(\.seq) ?? []))
    }

    @Test func notifiesReadyStatusWatchdogAndStopping() async throws {
        let pad = try PadFixture()
        try await pad.startReceiver()
        try await pad.startSimulator()
        let notify = try NotifyListener(path: pad.dir.file("notify.sock"))
        let edged = try pad.startEdged(notifySocket: notify.path, watchdogMicros: 3_000_000)
        #expect(await eventually(timeout: 30) { notify.count("READY=1") >= 1 }, "\(pad.log("edged.log"))")
        // READY comes only once the config is valid and the database is open: the buffer file exists by then.
        #expect(FileManager.default.fileExists(atPath: pad.dir.file("buffer.db")))
        #expect(await eventually(timeout: 15) { notify.count("WATCHDOG=1") >= 3 })
        #expect(
            await eventually(timeout: 15) { notify.lines.contains { $0.hasPrefix("STATUS=2/2 devices online") } },
            "\(notify.lines)")
        #expect(await eventually(timeout: 20) { (try? await pad.receiverCounts().stored) ?? 0 > 0 })
        // Readings carry the clock's state when they were taken: on a box whose kernel says the clock is not
        // synchronized (many CI containers), every one is flagged; on a synchronized box, none.
        let synchronized = ClockStatus.isSynchronized()
        let epoch = try #require(try await pad.storedSeqs().keys.first)
        let page = try await pad.adminGet("/records?gateway=pad-gw&epoch=\(epoch)&after=0&limit=1000")
        let readings = (page["records"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String == "reading" }
        #expect(!readings.isEmpty)
        #expect(
            readings.allSatisfy { (($0["clockSynchronized"] as? Bool) ?? true) == synchronized },
            "clock synchronized: \(synchronized); \(readings.prefix(3))")
        // edgectl buffer: what is stored, and the memory SQLite holds (bounded page caches), as JSON and for people.
        let bufferJSON = try await runTool(edgectl, ["buffer", "--socket", pad.controlSocket, "--json"], timeout: 15)
        let buffer = try #require(
            (try? JSONSerialization.jsonObject(with: Data(bufferJSON.output.utf8))) as? [String: Any],
            "\(bufferJSON.output)")
        let sqlite = (buffer["sqliteMemoryBytes"] as? NSNumber)?.int64Value ?? 0
        let sqlitePeak = (buffer["sqliteMemoryPeakBytes"] as? NSNumber)?.int64Value ?? 0
        #expect((buffer["readingsStored"] as? NSNumber)?.intValue ?? 0 > 0)
        #expect(sqlite > 0 && sqlite <= sqlitePeak, "\(buffer)")
        let bufferText = try await runTool(edgectl, ["buffer", "--socket", pad.controlSocket], timeout: 15)
        #expect(bufferText.status == 0 && bufferText.output.contains("held by SQLite"), "\(bufferText.output)")
        // edgectl status: the heap as glibc counts it (live allocations within what it holds), SQLite's part.
        let memory = try #require(await status(pad)?["memory"] as? [String: Any])
        let inUse = (memory["heapInUseBytes"] as? NSNumber)?.int64Value ?? 0
        let held = (memory["heapHeldBytes"] as? NSNumber)?.int64Value ?? 0
        // (Under ThreadSanitizer its own allocator serves the process: glibc counts nothing.)
        #expect(TestEnvironment.sanitized || inUse > 0 && inUse <= held, "\(memory)")
        // At most two malloc arenas however many threads allocate (HeapUsage.limitArenas at start).
        #expect((1...2).contains((memory["heapArenas"] as? NSNumber)?.intValue ?? 0), "\(memory)")
        #expect((memory["sqliteBytes"] as? NSNumber)?.int64Value ?? 0 > 0, "\(memory)")

        edged.signal(SIGTERM)
        let exit = await edged.wait(timeout: 25)
        #expect(exit.map { ($0 >> 8) & 0xFF } == 0, "exit status \(String(describing: exit)); \(pad.log("edged.log"))")
        #expect(notify.count("STOPPING=1") == 1)
        #expect(pad.log("edged.log").contains("edged stopped"))
    }

    @Test func theWatchdogKeepsPingingWhileDevicesHang() async throws {
        // The whole simulator is frozen with SIGSTOP: its TCP connection stays open and silent, so the bus
        // thread waits out its response timeout again and again — but it still steps, so the watchdog must
        // keep pinging (only a bus thread stuck for good stops the pings), and the devices go offline.
        let pad = try PadFixture()
        try await pad.startReceiver()
        try await pad.startSimulator()
        let notify = try NotifyListener(path: pad.dir.file("notify.sock"))
        let edged = try pad.startEdged(notifySocket: notify.path, watchdogMicros: 3_000_000)
        defer { edged.terminate() }
        #expect(await eventually(timeout: 30) { notify.count("READY=1") >= 1 })
        pad.sim?.signal(SIGSTOP)
        defer { pad.sim?.signal(SIGCONT) }
        let before = notify.count("WATCHDOG=1")
        #expect(await eventually(timeout: 15) { notify.count("WATCHDOG=1") >= before + 3 })
        #expect(await eventually(timeout: 15) { (await status(pad)?["devicesOnline"] as? NSNumber)?.intValue == 0 })
    }

    @Test func aBrokenReloadKeepsTheOldConfigAndAGoodOneApplies() async throws {
        let pad = try PadFixture()
        try await pad.startReceiver()
        try await pad.startSimulator()
        let notify = try NotifyListener(path: pad.dir.file("notify.sock"))
        let edged = try pad.startEdged(notifySocket: notify.path)
        defer { edged.terminate() }
        #expect(await eventually(timeout: 30) { (await status(pad)?["devicesOnline"] as? NSNumber)?.intValue == 2 })
        let good = try String(contentsOfFile: pad.configPath, encoding: .utf8)

        // Broken: an unknown key and a unit id out of range. SIGHUP: refused, logged with file:line:column.
        try good.replacingOccurrences(of: "unit: 20,", with: "unit: 300,").appending("\nbogus: 1\n")
            .write(toFile: pad.configPath, atomically: true, encoding: .utf8)
        edged.signal(SIGHUP)
        #expect(await eventually(timeout: 15) { pad.log("edged.log").contains("reload (SIGHUP) refused") })
        let log = pad.log("edged.log")
        #expect(log.contains("edged.yaml:") && log.contains("devices[1].unit: 300 is out of range 0...255"))
        #expect(log.contains("unknown key 'bogus'"))
        #expect(edged.isRunning)
        #expect((await status(pad)?["devicesTotal"] as? NSNumber)?.intValue == 2)
        // The same through edgectl: exit 1 and the errors.
        let viaCtl = try await runTool(edgectl, ["reload", "--socket", pad.controlSocket])
        #expect(viaCtl.status == 1 && viaCtl.output.contains("configuration refused"), "\(viaCtl.output)")

        // Good: efm-1 removed. The change applies; the buffer and the other bus device keep going. The
        // writer's stall limit applies at once; a new buffer size only at restart, and the log says so.
        let storedBefore = try await pad.receiverCounts().stored
        try good.split(separator: "\n").filter { !$0.contains("name: efm-1") }.joined(separator: "\n")
            .replacingOccurrences(of: "maxBytes: 64MiB", with: "maxBytes: 32MiB, stuckAfter: 90s")
            .write(toFile: pad.configPath, atomically: true, encoding: .utf8)
        edged.signal(SIGHUP)
        #expect(await eventually(timeout: 15) { (await status(pad)?["devicesTotal"] as? NSNumber)?.intValue == 1 })
        #expect(notify.count("RELOADING=1") >= 2)
        #expect(await eventually(timeout: 20) { (try? await pad.receiverCounts().stored) ?? 0 > storedBefore })
        let writer = await status(pad)?["writer"] as? [String: Any]
        #expect((writer?["stuckAfterMillis"] as? NSNumber)?.int64Value == 90_000, "\(String(describing: writer))")
        #expect(pad.log("edged.log").contains("storage.path, maxBytes and retention take effect when edged restarts"))
    }

    @Test func sigtermLosesNothingAndARestartCarriesOn() async throws {
        let pad = try PadFixture()
        try await pad.startSimulator()
        // No receiver yet: everything stays in the buffer.
        var edged = try pad.startEdged()
        #expect(await eventually(timeout: 30) { (await backlog(pad)?.reading ?? 0) > 50 })
        edged.signal(SIGTERM)
        #expect(await edged.wait(timeout: 25).map { ($0 >> 8) & 0xFF } == 0)
        let first = try queuedSeqs(pad.dir.file("buffer.db"))
        #expect(first.seqs.count > 50 && first.seqs == Set(1...first.lastSeq), "every seq given out is still queued")

        try await pad.startReceiver()
        edged = try pad.startEdged()
        #expect(
            await eventually(timeout: 40) { (try? await pad.storedSeqs()[first.epoch]?.count) ?? 0 >= first.seqs.count }
        )
        pad.sim?.terminate()
        edged.signal(SIGTERM)
        #expect(await edged.wait(timeout: 25).map { ($0 >> 8) & 0xFF } == 0)
        let after = try queuedSeqs(pad.dir.file("buffer.db"))
        #expect(after.epoch == first.epoch)
        let atReceiver = Set(try await pad.storedSeqs()[first.epoch] ?? [])
        // Nothing lost: every seq ever given out is at the receiver or still queued.
        #expect(atReceiver.union(after.seqs) == Set(1...after.lastSeq))
        #expect(atReceiver.isSuperset(of: first.seqs))
    }

    @Test func aCorruptBufferIsMovedAsideAndTheOperatorIsTold() async throws {
        let pad = try PadFixture()
        try await pad.startReceiver()
        try await pad.startSimulator()
        let garbage = Data((0..<65536).map { UInt8(truncatingIfNeeded: $0 &* 7919) })
        try garbage.write(to: URL(fileURLWithPath: pad.dir.file("buffer.db")))
        let edged = try pad.startEdged()
        defer { edged.terminate() }
        // It keeps polling and uploading with a new file; the corrupt one is kept, and a system alarm says so.
        #expect(
            await eventually(timeout: 30) { (try? await pad.receiverCounts().stored) ?? 0 > 0 },
            "\(pad.log("edged.log"))")
        let kept = try FileManager.default.contentsOfDirectory(atPath: pad.dir.path).filter {
            $0.hasPrefix("buffer.db") && $0.contains("corrupt")
        }
        #expect(!kept.isEmpty, "\((try? FileManager.default.contentsOfDirectory(atPath: pad.dir.path)) ?? [])")
        #expect(pad.log("edged.log").contains("system alarm buffer-recovered raised"))
        #expect(
            await eventually(timeout: 20) {
                let recs = (try? await pad.adminGet("/stats"))?["store"] as? [String: Any]
                let epochs = recs?["byEpoch"] as? [[String: Any]] ?? []
                return epochs.contains { (($0["alarms"] as? NSNumber)?.intValue ?? 0) > 0 }
            })
    }

    @Test func killNineLoopWithAFlappingReceiverLosesAndDuplicatesNothing() async throws {
        let pad = try PadFixture(pollInterval: "300ms", batchMaxAge: "1s")
        try await pad.startReceiver()
        try await pad.startSimulator()
        // The receiver flaps: normal, 503, and answers lost after it stored the batch.
        let flapping = FlagBox()
        flapping.on = true
        let flapper = Task {
            let modes = [
                "{\"mode\":\"none\"}", "{\"mode\":\"status\",\"code\":503,\"retryAfter\":1}",
                "{\"mode\":\"drop-response-after-store\"}"
            ]
            var i = 0
            while flapping.on {
                try? await pad.setFault(modes[i % modes.count])
                i += 1
                try? await Task.sleep(for: .milliseconds(400))
            }
        }
        var kills = 0
        for round in 0..<20 {
            let edged = try pad.startEdged()
            // Alternate between killing soon after start and after it has been polling and uploading a while.
            let life = round % 2 == 0 ? Double.random(in: 0.2...0.8) : Double.random(in: 1.0...2.5)
            try await Task.sleep(for: .milliseconds(Int64(life * 1000)))
            edged.signal(SIGKILL)
            #expect(await edged.wait(timeout: 10) != nil)
            kills += 1
        }
        flapping.on = false
        await flapper.value
        try await pad.setFault("{\"mode\":\"none\"}")
        #expect(kills == 20)

        // A last run drains everything; the simulator stops first so the backlog can reach zero.
        let edged = try pad.startEdged()
        #expect(await eventually(timeout: 30) { await status(pad) != nil })
        #expect(await stopSimulatorAndAwaitQuiet(pad), "\(pad.log("edged.log").suffix(2000))")
        #expect(
            await eventually(timeout: 60) { await backlog(pad).map { $0.alarm == 0 && $0.reading == 0 } ?? false },
            "\(pad.log("edged.log").suffix(2000))")
        edged.signal(SIGTERM)
        #expect(await edged.wait(timeout: 25).map { ($0 >> 8) & 0xFF } == 0)

        let buffer = try queuedSeqs(pad.dir.file("buffer.db"))
        let stored = try await pad.storedSeqs()
        #expect(stored.keys.sorted() == [buffer.epoch], "one buffer file, one epoch, across 20 kills")
        let seqs = stored[buffer.epoch] ?? []
        // Each record stored once (the list has no repeats) and none missing: exactly 1...lastSeq.
        #expect(seqs.count == Set(seqs).count)
        #expect(
            Set(seqs) == Set(1...buffer.lastSeq),
            "missing: \(Set(1...buffer.lastSeq).subtracting(seqs).sorted().prefix(20))")
        #expect(buffer.seqs.isEmpty)
    }
}

final class FlagBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var on: Bool {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
