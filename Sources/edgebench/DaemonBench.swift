import ArgumentParser
import CBenchRaw
import EdgeBuffer
import EdgeCore
import EdgeSystem
import Foundation

/// The daemon as a process: time to READY with a large backlog, resident memory and CPU while polling
/// the example pad ×10 from edgesim, each beside a reference measured in the same run.
struct DaemonBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon", abstract: "edged start-up, memory and CPU as a process.")
    @Option(help: "Records in the backlog for the start-up figure.") var backlog: Int = 1_000_000
    @Option(help: "Seconds of polling for the memory and CPU figures.") var seconds: Int = 60
    @Option(
        help:
            "Also print edged's memory (RssAnon, USS, VmRSS, heap, SQLite) every this many seconds (0: only the summary)."
    )
    var trace: Int = 0
    @Option(
        help:
            "Directory with edged as packaged (scripts/build-packaged.sh): its memory, where it goes, and the floor under it."
    )
    var packaged: String?

    func run() throws {
        Report.section("edged as a process (release build, edgesim on loopback)")
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edgebench-daemon-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: "config/templates", toPath: "\(dir)/templates")
        let port = 20_000 + Int(getpid() % 10_000)

        // Start-up with an empty buffer, then with a large backlog.
        let empty = try padConfig(dir: dir, name: "empty", port: port, copies: 1)
        let emptyReady = try timeToReady(bin: bin, config: empty, dir: dir)
        let full = try padConfig(dir: dir, name: "full", port: port, copies: 1)
        try fillBuffer(path: "\(dir)/full.db", records: backlog)
        let fullReady = try timeToReady(bin: bin, config: full, dir: dir)
        Report.figure(
            "start to READY, \(backlog) records queued", fullReady * 1000, "ms",
            reference: ("empty buffer", emptyReady * 1000), higherIsBetter: false)

        // The example pad ×10 (90 devices, 1040 tags) polled over loopback TCP for `seconds`.
        let big = try padConfig(dir: dir, name: "pad10", port: port, copies: 10)
        let idle = try padConfig(dir: dir, name: "idle", port: port, copies: 0)
        let sim = try spawn(bin.appendingPathComponent("edgesim").path, ["--config", big], log: "\(dir)/sim.log")
        defer { kill(sim, SIGTERM); var s: Int32 = 0; waitpid(sim, &s, 0) }
        Thread.sleep(forTimeInterval: 1)
        let edged = bin.appendingPathComponent("edged").path
        let idleRun = try sample(edged: edged, bin: bin, config: idle, dir: dir, seconds: 5, sim: sim)
        let run = try sample(edged: edged, bin: bin, config: big, dir: dir, seconds: seconds, sim: sim)
        // VmRSS counts the pages of the binary and the shared libraries it has touched (clean, file-backed,
        // shared with every other process using them, dropped first under memory pressure). USS is what no
        // other process shares — here edgesim and edgebench map the same Swift runtime, so on a box where
        // edged is the only Swift process its footprint lies between USS and VmRSS. RssAnon is the heap,
        // stacks and SQLite's caches: the part that could grow.
        Report.figure(
            "resident memory (VmRSS), example pad ×10 (peak)", Double(run.peakRSS) / 1048576, "MiB",
            reference: ("edged with no devices", Double(idleRun.peakRSS) / 1048576), higherIsBetter: false)
        Report.figure(
            "private memory (USS), example pad ×10 (peak)", Double(run.peakPrivate) / 1048576, "MiB",
            reference: ("edged with no devices", Double(idleRun.peakPrivate) / 1048576), higherIsBetter: false)
        Report.figure(
            "own memory (RssAnon), example pad ×10 (peak)", Double(run.peakAnon) / 1048576, "MiB",
            reference: ("edged with no devices", Double(idleRun.peakAnon) / 1048576), higherIsBetter: false)
        Report.figure(
            "own memory growth, last half of \(seconds) s", Double(run.lateGrowth) / 1024, "KiB",
            reference: ("first half", Double(run.earlyGrowth) / 1024), higherIsBetter: false)
        if run.heapInUse.count == 3 {
            let h = run.heapInUse, q = run.sqliteInUse
            Report.figure(
                "live heap growth, last half", Double(h[2] - h[1]) / 1024, "KiB",
                reference: ("first half", Double(h[1] - h[0]) / 1024), higherIsBetter: false)
            Report.figure(
                "  of which outside SQLite's caches", Double((h[2] - q[2]) - (h[1] - q[1])) / 1024, "KiB",
                reference: ("first half", Double((h[1] - q[1]) - (h[0] - q[0])) / 1024), higherIsBetter: false)
        }
        Report.figure(
            "SQLite's share of it at the end (peak)", Double(run.sqlite.peak) / 1048576, "MiB",
            reference: ("edged with no devices", Double(idleRun.sqlite.peak) / 1048576), higherIsBetter: false)
        let tagsPerSecond = run.tagsPerSecond
        Report.figure(
            "CPU per 10,000 tags/s (\(Int(tagsPerSecond)) tags/s)", run.cpuFraction / tagsPerSecond * 10_000 * 100,
            "% of a core",
            reference: ("edgesim serving them", run.simCPUFraction(sim) / tagsPerSecond * 10_000 * 100),
            higherIsBetter: false)
        if let packaged {
            try packagedMemory(dir: packaged, bin: bin, big: big, idle: idle, work: dir, port: port, sim: sim)
        }
    }

    /// edged as the .deb installs it (standard library and Foundation static, packed relocations): its resident
    /// memory polling the example pad ×10, split by where the pages come from, beside a C program that loads
    /// the same system libraries and uses them the same way (the floor no daemon on them goes under), and
    /// what it touches again once the kernel has taken back every page it could (its working set).
    func packagedMemory(dir: String, bin: URL, big: String, idle: String, work: String, port: Int, sim: pid_t) throws {
        let edged = URL(fileURLWithPath: dir).appendingPathComponent("edged").resolvingSymlinksInPath().path
        let idleRun = try sample(edged: edged, bin: bin, config: idle, dir: work, seconds: 5, sim: sim, split: true)
        let settle = 20
        let run = try sample(
            edged: edged, bin: bin, config: big, dir: work, seconds: seconds, sim: sim, split: true, settle: settle)
        let floor = try floorMemory(bin: bin, work: work, port: port)
        let mib = 1048576.0
        Report.figure(
            "as packaged: VmRSS, example pad ×10 (peak)", Double(run.peakRSS) / mib, "MiB",
            reference: ("edged with no devices", Double(idleRun.peakRSS) / mib), higherIsBetter: false)
        Report.figure(
            "  pages of edged's binary", Double(run.split.binary) / mib, "MiB",
            reference: ("edged with no devices", Double(idleRun.split.binary) / mib), higherIsBetter: false)
        Report.figure(
            "  pages of the system libraries", Double(run.split.libraries) / mib, "MiB",
            reference: ("C program on the same libraries", Double(floor.split.libraries) / mib), higherIsBetter: false)
        Report.figure(
            "  own memory (anonymous: heap, stacks, data)", Double(run.split.own) / mib, "MiB",
            reference: ("C program on the same libraries", Double(floor.split.own) / mib), higherIsBetter: false)
        Report.figure(
            "C program on the same libraries: VmRSS (peak)", Double(floor.peakRSS) / mib, "MiB",
            reference: ("edged as packaged, pad ×10", Double(run.peakRSS) / mib), higherIsBetter: false)
        if let again = run.afterPageOut {
            Report.figure(
                "as packaged: VmRSS \(settle) s after its pages were dropped", Double(again) / mib, "MiB",
                reference: ("before, at the end of the run", Double(run.endRSS) / mib), higherIsBetter: false)
        } else {
            print("  (working set not measured: process_madvise needs CAP_SYS_NICE)")
        }
    }

    /// The floor: edgebench-floor (C, same libraries) polled by nothing but itself, sampled like edged.
    func floorMemory(bin: URL, work: String, port: Int) throws -> (peakRSS: Int64, split: Split) {
        let pid = try spawn(
            bin.appendingPathComponent("edgebench-floor").path, [work, String(port)], log: "\(work)/floor.log")
        defer { kill(pid, SIGTERM); var s: Int32 = 0; waitpid(pid, &s, 0) }
        var peak: Int64 = 0
        for _ in 0..<12 {  // one upload attempt every 10 rounds of 1 s
            Thread.sleep(forTimeInterval: 1)
            peak = max(peak, Self.memory(pid, "VmRSS:"))
        }
        let split = Self.split(
            pid, binary: bin.appendingPathComponent("edgebench-floor").resolvingSymlinksInPath().path)
        return (peak, split)
    }

    /// Resident pages by where they come from (`/proc/<pid>/smaps`): anonymous ones (heap, stacks, the
    /// copied-on-write data of the binary and libraries) are the process's own; file pages belong to the
    /// binary or to a library (including the Swift runtime's when it is linked dynamically).
    struct Split {
        var binary: Int64 = 0, libraries: Int64 = 0, own: Int64 = 0
    }

    static func split(_ pid: pid_t, binary: String) -> Split {
        // /proc files report size 0: read to the end rather than trusting the size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/smaps"),
            let data = try? handle.readToEnd()
        else { return Split() }
        let smaps = String(decoding: data, as: UTF8.self)
        var split = Split()
        var name = "", rss: Int64 = 0
        func kib(_ line: Substring) -> Int64 {
            (Int64(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
        }
        for line in smaps.split(separator: "\n") {
            if line.hasPrefix("Rss:") {
                rss = kib(line)
            } else if line.hasPrefix("Anonymous:") {
                let anon = kib(line)
                split.own += anon
                if name == binary { split.binary += rss - anon } else { split.libraries += rss - anon }
            } else {
                // A mapping's header: address range, perms, offset, device, inode, [path].
                let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                if fields.count >= 5, fields[0].allSatisfy({ $0.isHexDigit || $0 == "-" }) {
                    name = fields.count == 6 ? String(fields[5]).trimmingCharacters(in: .whitespaces) : ""
                }
            }
        }
        return split
    }

    /// A pad config: `copies` × the example pad's devices, all on one TCP endpoint served by edgesim.
    func padConfig(dir: String, name: String, port: Int, copies: Int) throws -> String {
        let pad = try BenchPad.load()
        var devices: [String] = []
        var unit = 1
        for c in 0..<copies {
            for d in pad.devices where d.enabled {
                devices.append(
                    "  - {name: \(d.name)-\(c), bus: lan, unit: \(unit), template: \(d.template), poll: \(d.poll)}")
                unit += 1
            }
        }
        let includes = pad.templates.compactMap(\.sourceFile).map {
            "  - include: templates/\(($0 as NSString).lastPathComponent)"
        }
        let text = """
            gateway: {id: bench-gw, site: Bench, tenant: bench}
            uplink: {endpoint: "https://127.0.0.1:9/api/v1/edge/batches", token: {credential: edged-token}}
            storage: {path: \(dir)/\(name).db, maxBytes: 2GiB}
            buses:
              - {name: lan, type: tcp, host: 127.0.0.1, port: \(port), responseTimeout: 1s}
            templates:
            \(includes.joined(separator: "\n"))
            devices:\(devices.isEmpty ? " []" : "\n" + devices.joined(separator: "\n"))
            """
        let path = "\(dir)/\(name).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func fillBuffer(path: String, records: Int) throws {
        let (store, _) = try BufferStore.open(path: path, maxBytes: ByteCount(bytes: 2 << 30))
        defer { store.close() }
        let tags = try BenchPad.load().devices.prefix(4)
        let start = Int64(Date().timeIntervalSince1970 * 1000) - Int64(records) * 100
        let sem = DispatchSemaphore(value: 0)
        Task {
            var done = 0
            while done < records {
                let n = min(5000, records - done)
                let batch = (0..<n).map { i in
                    Reading(
                        device: tags[(done + i) % tags.count].name, tag: "tubing_pressure",
                        value: .number(300 + Double((done + i) % 50)),
                        quality: .good, wallMillis: start + Int64(done + i) * 100, monotonicNanos: 0)
                }
                _ = try? await store.append(readings: batch, units: { _, _ in "psi" })
                done += n
            }
            sem.signal()
        }
        sem.wait()
    }

    func spawn(_ exe: String, _ args: [String], log: String, env: [String: String] = [:]) throws -> pid_t {
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([exe] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var environment = ProcessInfo.processInfo.environment
        environment.merge(env) { _, b in b }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        guard posix_spawn(&pid, exe, &actions, nil, argv, envp) == 0 else {
            throw ValidationError("cannot start \(exe)")
        }
        return pid
    }

    /// Seconds from exec to READY=1 on a notify socket.
    func timeToReady(bin: URL, config: String, dir: String) throws -> Double {
        let sockPath = "\(dir)/notify-\(UUID().uuidString.prefix(6)).sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd); unlink(sockPath) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in sockPath.utf8.enumerated() { p[i] = b } }
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let pid = try spawn(
            bin.appendingPathComponent("edged").path,
            ["--config", config, "--control-socket", "\(dir)/ctl-\(pid_t.random(in: 1...99999)).sock"],
            log: "\(dir)/edged.log", env: ["NOTIFY_SOCKET": sockPath])
        defer { kill(pid, SIGTERM); var s: Int32 = 0; waitpid(pid, &s, 0) }
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 60_000) > 0 else { throw ValidationError("edged did not become ready in 60 s") }
            let n = recv(fd, &buf, buf.count, 0)
            if n > 0, String(decoding: buf[..<n], as: UTF8.self).contains("READY=1") { break }
        }
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    struct Sample {
        var peakRSS: Int64 = 0
        var peakAnon: Int64 = 0
        var peakPrivate: Int64 = 0
        var earlyGrowth: Int64 = 0
        var lateGrowth: Int64 = 0
        var cpuFraction = 0.0
        var tagsPerSecond = 0.0
        var simCPUStart = 0.0
        var wall = 0.0
        var sqlite: (used: Int64, peak: Int64) = (0, 0)
        /// Where the resident pages were at the end of the run, and VmRSS once the kernel had taken back
        /// what it could and the process had run on for a while (nil when not asked for or not permitted).
        var split = Split()
        var afterPageOut: Int64?
        var endRSS: Int64 = 0
        /// Live heap allocations (glibc, all arenas) at the start, the middle and the end of the run, and
        /// SQLite's part of them (its page caches fill up to their bound as the buffer grows).
        var heapInUse: [Int64] = []
        var sqliteInUse: [Int64] = []
        mutating func sampleHeap(bin: URL, socket: String) {
            let heap = DaemonBench.heap(bin: bin, socket: socket)
            heapInUse.append(heap.inUse)
            sqliteInUse.append(heap.sqlite)
        }
        func simCPUFraction(_ sim: pid_t) -> Double { (DaemonBench.cpuSeconds(sim) - simCPUStart) / wall }
    }

    /// Runs `edged` (edgectl from `bin` reads its heap) for `seconds`; with `split`, where its pages are at the
    /// end; with `settle` > 0, then has the kernel take back its pages and reads VmRSS after `settle` seconds.
    func sample(
        edged: String, bin: URL, config: String, dir: String, seconds: Int, sim: pid_t,
        split: Bool = false, settle: Int = 0
    ) throws -> Sample {
        let ctl = "\(dir)/ctl-sample.sock"
        let pid = try spawn(edged, ["--config", config, "--control-socket", ctl], log: "\(dir)/edged-sample.log")
        defer { kill(pid, SIGTERM); var s: Int32 = 0; waitpid(pid, &s, 0) }
        Thread.sleep(forTimeInterval: 3)  // warm up: connections, first polls
        var s = Sample()
        let pad = try ConfigLoader(files: BenchFiles()).load(path: config).get().config
        s.tagsPerSecond = pad.devices.reduce(0.0) { $0 + Double(pad.effectiveTags(of: $1).count) / $1.poll.seconds }
        let cpu0 = Self.cpuSeconds(pid)
        s.simCPUStart = Self.cpuSeconds(sim)
        let t0 = Date()
        var rss: [Int64] = [], anon: [Int64] = [], priv: [Int64] = []
        s.sampleHeap(bin: bin, socket: ctl)
        for i in 0..<max(2, seconds) {
            Thread.sleep(forTimeInterval: 1)
            rss.append(Self.memory(pid, "VmRSS:"))
            anon.append(Self.memory(pid, "RssAnon:"))
            priv.append(Self.privateMemory(pid))
            if i + 1 == max(2, seconds) / 2 { s.sampleHeap(bin: bin, socket: ctl) }
            if trace > 0, (i + 1) % trace == 0 {
                let heap = Self.heap(bin: bin, socket: ctl)
                print(
                    "  \(i + 1) s: RssAnon \(anon.last! / 1024) KiB, private \(priv.last! / 1024) KiB, VmRSS \(rss.last! / 1024) KiB, "
                        + "heap \(heap.inUse / 1024) KiB in use / \(heap.held / 1024) KiB held, SQLite \(heap.sqlite / 1024) KiB"
                )
            }
        }
        s.sampleHeap(bin: bin, socket: ctl)
        s.sqlite = Self.sqliteMemory(bin: bin, socket: ctl)
        s.wall = Date().timeIntervalSince(t0)
        s.cpuFraction = (Self.cpuSeconds(pid) - cpu0) / s.wall
        s.peakRSS = rss.max() ?? 0
        s.peakAnon = anon.max() ?? 0
        s.peakPrivate = priv.max() ?? 0
        s.endRSS = rss.last ?? 0
        if split { s.split = Self.split(pid, binary: edged) }
        if settle > 0, raw_page_out(pid) > 0 {
            Thread.sleep(forTimeInterval: Double(settle))
            s.afterPageOut = Self.memory(pid, "VmRSS:")
        }
        // Growth of the process's own memory, from the average of the first minute-or-tenth to that of the
        // middle and of the end (single samples move with the allocator's page reuse).
        let window = max(1, min(60, anon.count / 10))
        func mean(_ r: Range<Int>) -> Int64 { anon[r].reduce(0, +) / Int64(r.count) }
        let half = anon.count / 2
        s.earlyGrowth = mean(half - window..<half) - mean(0..<window)
        s.lateGrowth = mean(anon.count - window..<anon.count) - mean(half - window..<half)
        return s
    }

    /// Pages no other process shares (USS: `Private_Clean` + `Private_Dirty` of `/proc/<pid>/smaps_rollup`),
    /// in bytes: the anonymous memory plus the pages of the binary and libraries that only this process has
    /// touched or relocated. What the box gives back if edged exits.
    static func privateMemory(_ pid: pid_t) -> Int64 {
        guard let rollup = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8) else { return 0 }
        return rollup.split(separator: "\n").reduce(0) { sum, line in
            guard line.hasPrefix("Private_Clean:") || line.hasPrefix("Private_Dirty:") else { return sum }
            return sum + (Int64(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
        }
    }

    /// edged's C heap (`memory` of `edgectl status`): live allocations, what the allocator holds, SQLite's part.
    static func heap(bin: URL, socket: String) -> (inUse: Int64, held: Int64, sqlite: Int64) {
        let m = edgectlJSON(bin: bin, ["status", "--json", "--socket", socket])["memory"] as? [String: Any] ?? [:]
        func int(_ key: String) -> Int64 { (m[key] as? NSNumber)?.int64Value ?? 0 }
        return (int("heapInUseBytes"), int("heapHeldBytes"), int("sqliteBytes"))
    }

    static func edgectlJSON(bin: URL, _ args: [String]) -> [String: Any] {
        let p = Process()
        p.executableURL = bin.appendingPathComponent("edgectl")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return [:] }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    /// SQLite's own allocations in edged (`sqliteMemoryBytes`, `sqliteMemoryPeakBytes` of `edgectl buffer`).
    static func sqliteMemory(bin: URL, socket: String) -> (used: Int64, peak: Int64) {
        let obj = edgectlJSON(bin: bin, ["buffer", "--json", "--socket", socket])
        return (
            (obj["sqliteMemoryBytes"] as? NSNumber)?.int64Value ?? 0,
            (obj["sqliteMemoryPeakBytes"] as? NSNumber)?.int64Value ?? 0
        )
    }

    /// A `/proc/<pid>/status` memory line (`VmRSS:`, `RssAnon:`) in bytes (0 when unknown).
    static func memory(_ pid: pid_t, _ key: String) -> Int64 { ProcessStats.memory(key, pid: pid) ?? 0 }

    static func cpuSeconds(_ pid: pid_t) -> Double { ProcessStats.cpuSeconds(pid: pid) ?? 0 }

    struct BenchFiles: ConfigFileAccess {
        func readText(_ path: String) throws(ConfigFileError) -> String {
            guard let d = FileManager.default.contents(atPath: path) else {
                throw ConfigFileError(path: path, reason: "not found")
            }
            return String(decoding: d, as: UTF8.self)
        }
        func permissions(_ path: String) -> UInt32? { FileManager.default.fileExists(atPath: path) ? 0o600 : nil }
    }
}
