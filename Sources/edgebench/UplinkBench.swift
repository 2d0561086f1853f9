import ArgumentParser
import EdgeBuffer
import EdgeCore
import Foundation

/// Draining a backlog to the sync endpoint (issue 5), beside its reference measured in the same run:
/// - edged (the release binary beside this one, as a process) drains a buffer holding an example-pad backlog
///   to the reference receiver (`tools/receiver/receiver.py`) over TLS on loopback: readings/s, and bytes on
///   the wire per reading (request line, headers and gzip'd body, as the receiver counts them);
/// - the reference is the `curl` CLI posting the same batches, pre-built and gzip'd by the same encoder and
///   the same zlib, with the same headers, on one kept-alive connection, to a fresh receiver: the transport
///   and receiver ceiling.
///
/// edged runs as a process because edgebench does not link the Uplink module; the figure is the daemon's
/// own: its upload loop, its buffer, its libcurl.
struct UplinkBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uplink", abstract: "Backlog drain over TLS: edged vs curl, to the reference receiver.")

    @Option(help: "Readings in the backlog.") var readings = 1_000_000
    @Option(help: "Readings per pre-built batch for curl (edged's batch.maxRecords of the example config).") var batch =
        5000
    @Option(help: "Where the work files go.") var dir = NSTemporaryDirectory()
    @Option(help: "Rounds of each (the best counts).") var rounds = 2
    @Flag(help: "Keep the work files (logs, databases) afterwards.") var keep = false

    func run() throws {
        Report.section(
            "uplink: drain a \(BufferBench.count(readings))-reading example-pad backlog over TLS on loopback")
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let edged = bin.appendingPathComponent("edged").path
        guard FileManager.default.isExecutableFile(atPath: edged) else {
            throw ValidationError("no edged beside edgebench (\(edged)): swift build -c release --product edged")
        }
        guard FileManager.default.fileExists(atPath: "tools/receiver/receiver.py") else {
            throw ValidationError("run from the repository root")
        }
        let work = URL(fileURLWithPath: dir).appendingPathComponent("edgebench-uplink-\(getpid())").path
        try FileManager.default.createDirectory(atPath: work + "/batches", withIntermediateDirectories: true)
        defer {
            if keep {
                print("  (work files kept in \(work))")
            } else {
                try? FileManager.default.removeItem(atPath: work)
            }
        }

        // PKI, token, the backlog in a buffer file.
        let ca = try BenchProcess.output("/bin/sh", ["tools/receiver/make_test_ca.sh", work + "/pki", "pecos-17-gw1"])
        guard let pin = ca.split(separator: "\n").last.map(String.init), pin.hasPrefix("sha256//") else {
            throw ValidationError("make_test_ca.sh: \(ca)")
        }
        let token = "bench-" + UUID().uuidString.lowercased()
        guard
            FileManager.default.createFile(
                atPath: work + "/token", contents: Data(token.utf8), attributes: [.posixPermissions: 0o600])
        else {
            throw ValidationError("cannot write \(work)/token")
        }
        try "pecos-17-gw1:\(token)\n".write(toFile: work + "/tokens.txt", atomically: true, encoding: .utf8)
        let pad = try BenchPad.load()
        let backlog = ExamplePadBacklog.readings(pad, count: readings)
        let (records, epoch, fillSeconds) = try fill(work + "/buffer.db", backlog, pad)
        print(
            "  (backlog: \(readings) readings of \(pad.devices.count) devices over \(String(format: "%.1f", ExamplePadBacklog.hours(backlog))) h, stored through append in \(String(format: "%.1f", fillSeconds)) s)"
        )

        // The reference's input: the same batches, encoded and gzip'd once, before any timing.
        let encoder = BatchEncoder(
            sender: BatchSender(
                gateway: pad.gateway.id, tenant: pad.gateway.tenant, site: pad.gateway.site,
                software: EdgeCoreVersion.string), formats: BatchEncoder.formats(for: pad))
        var files: [(path: String, key: String)] = []
        let sentAt = Int64(Date().timeIntervalSince1970 * 1000)
        for (i, start) in stride(from: 0, to: records.count, by: batch).enumerated() {
            let b = BufferBatch(epoch: epoch, records: Array(records[start..<min(records.count, start + batch)]))
            let path = String(format: "%@/batches/%05d.json", work, i)
            try Data(encoder.encode(b, sentAt: sentAt, clockSynchronized: true)).write(to: URL(fileURLWithPath: path))
            files.append((path + ".gz", encoder.idempotencyKey(b)))
        }
        // Python's zlib is the system zlib edged links: level 6, gzip wrapper, byte for byte what edged sends.
        _ = try BenchProcess.output(
            "/usr/bin/python3",
            [
                "-c",
                """
                import glob, sys, zlib
                for p in glob.glob(sys.argv[1] + '/*.json'):
                    c = zlib.compressobj(6, zlib.DEFLATED, 31); d = open(p, 'rb').read()
                    open(p + '.gz', 'wb').write(c.compress(d) + c.flush())
                """, work + "/batches"
            ])
        let gzBytes = files.reduce(0) { $0 + BufferBench.bytes($1.path) }

        // Rounds, alternating: edged drains a fresh copy of the buffer, then curl posts the pre-built batches on
        // one connection (--next keeps it); each to a fresh receiver. The best round of each counts, so load
        // elsewhere on the machine favours neither.
        let fm = FileManager.default
        try fm.copyItem(atPath: work + "/buffer.db", toPath: work + "/pristine.db")
        var ours: [BenchReceiver.Run] = [], reference: [BenchReceiver.Run] = []
        for round in 1...rounds {
            for suffix in ["", "-wal", "-shm"] { try? fm.removeItem(atPath: work + "/buffer.db" + suffix) }
            try fm.copyItem(atPath: work + "/pristine.db", toPath: work + "/buffer.db")
            let rx = try BenchReceiver(work: work, name: "edged-\(round)")
            let config = try edgedConfig(work: work, endpoint: rx.endpoint, pin: pin)
            ours.append(
                try rx.measure(expect: readings, epoch: epoch) {
                    try BenchProcess(
                        edged,
                        ["--config", config, "--control-socket", work + "/control.sock", "--log-level", "warning"],
                        log: work + "/edged-\(round).log")
                })
            rx.stop()

            let rxCurl = try BenchReceiver(work: work, name: "curl-\(round)")
            try curlConfig(files, endpoint: rxCurl.endpoint, work: work, pin: pin, token: token).write(
                toFile: work + "/curl.conf", atomically: true, encoding: .utf8)
            reference.append(
                try rxCurl.measure(expect: readings, epoch: epoch) {
                    try BenchProcess("/usr/bin/curl", ["-K", work + "/curl.conf"], log: work + "/curl-\(round).log")
                })
            rxCurl.stop()
            if !keep {
                for name in ["edged-\(round)", "curl-\(round)"] {
                    for suffix in ["", "-wal", "-shm"] {
                        try? fm.removeItem(atPath: "\(work)/receiver-\(name).db\(suffix)")
                    }
                }
            }
        }

        let n = Double(readings)
        let best = ours.min { $0.seconds < $1.seconds }!, ref = reference.min { $0.seconds < $1.seconds }!
        func rates(_ runs: [BenchReceiver.Run]) -> String {
            runs.map { String(format: "%.0f", n / $0.seconds) }.joined(separator: ", ")
        }
        Report.figure(
            "readings/s, edged draining its buffer", n / best.seconds, "readings/s",
            reference: ("curl, same batches", n / ref.seconds))
        Report.figure(
            "bytes on the wire per reading (target <= 4)", Double(best.wireBytes) / n, "B",
            reference: ("curl, same batches", Double(ref.wireBytes) / n), higherIsBetter: false)
        print(
            """
              rounds (readings/s): edged \(rates(ours)); curl \(rates(reference))
              edged: \(best.batches) batches, \(String(format: "%.2f", Double(best.bodyBytes) / n)) B body + \
            \(String(format: "%.3f", Double(best.wireBytes - best.bodyBytes) / n)) B request line and headers per reading; \
            pre-built gzip'd bodies \(String(format: "%.2f", Double(gzBytes) / n)) B per reading in \(files.count) batches
              edged: \(String(format: "%.1f", best.seconds)) s from exec to the last record stored (first batch stored after \
            \(String(format: "%.2f", best.firstBatch)) s); CPU \(String(format: "%.1f", best.clientCPU)) s edged, \
            \(String(format: "%.1f", best.receiverCPU)) s receiver
              curl:  \(String(format: "%.1f", ref.seconds)) s; CPU \(String(format: "%.1f", ref.clientCPU)) s curl, \
            \(String(format: "%.1f", ref.receiverCPU)) s receiver
              receiver.py: its author measured ~80k readings/s (one Python thread, SQLite synchronous=FULL); here it was \
            busy \(Int(best.receiverCPU / best.seconds * 100)) % (edged) / \(Int(ref.receiverCPU / ref.seconds * 100)) % (curl) of a core: \
            the curl figure is the receiver's ceiling on this machine, not curl's.
              TLS framing (not counted above) adds about 29 B per 16 KiB record: < 0.01 B per reading.
            """)
    }

    /// curl's config file: one POST per pre-built batch, with edged's headers, `next` between them.
    func curlConfig(_ files: [(path: String, key: String)], endpoint: String, work: String, pin: String, token: String)
        -> String
    {
        files.map { path, key in
            """
            url = "\(endpoint)"
            cacert = "\(work)/pki/ca.pem"
            pinnedpubkey = "\(pin)"
            header = "Content-Type: application/json"
            header = "Content-Encoding: gzip"
            header = "Authorization: Bearer \(token)"
            header = "Idempotency-Key: \(key)"
            header = "User-Agent: edged/\(EdgeCoreVersion.string)"
            header = "Expect:"
            header = "Accept:"
            data-binary = "@\(path)"
            output = "/dev/null"
            silent
            show-error

            """
        }.joined(separator: "next\n")
    }

    /// Stores the backlog in a fresh buffer, one append per 5000 readings (seqs in time order, as pollers make
    /// them); returns the records as the uplink reads them, the epoch, and the seconds it took.
    func fill(_ path: String, _ backlog: [Reading], _ pad: EdgeConfig) throws -> ([BufferedRecord], String, Double) {
        let (store, _) = try BufferStore.open(path: path, maxBytes: ByteCount(bytes: 2 << 30))
        defer { store.close() }
        var units: [String: String] = [:]
        for d in pad.devices { for t in pad.effectiveTags(of: d) { units["\(d.name)\u{0}\(t.name)"] = t.units } }
        let unitsOf: @Sendable (String, String) -> String? = { [units] in units["\($0)\u{0}\($1)"] }
        // Guard: appended to only in the one task `blocking` runs, read after `blocking` has returned.
        final class Seqs: @unchecked Sendable { var ranges: [ClosedRange<Int64>] = [] }
        let seqs = Seqs()
        let seconds = try Report.time {
            try blocking {
                for start in stride(from: 0, to: backlog.count, by: 5000) {
                    let chunk = Array(backlog[start..<min(backlog.count, start + 5000)])
                    if let r = try await store.append(readings: chunk, units: unitsOf) { seqs.ranges.append(r) }
                }
            }
        }
        let all = seqs.ranges.flatMap { Array($0) }
        precondition(all.count == backlog.count && all == all.sorted(), "seqs in append order")
        let records = zip(all, backlog).map { seq, r in
            BufferedRecord(
                seq: seq, lane: .reading, payload: .reading(StoredReading(r, units: unitsOf(r.device, r.tag))))
        }
        return (records, store.epoch, seconds)
    }

    /// The example configuration pointed at the receiver and the buffer, its devices disabled (no polling:
    /// the drain is all the daemon does) but kept, so values are written with each tag's digits.
    func edgedConfig(work: String, endpoint: String, pin: String) throws -> String {
        var text = try String(contentsOfFile: "config/edged.example.yaml", encoding: .utf8)
        func replace(_ pattern: String, _ with: String) throws {
            let re = try NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
            let range = NSRange(text.startIndex..., in: text)
            guard re.firstMatch(in: text, range: range) != nil else {
                throw ValidationError("config/edged.example.yaml changed: no \(pattern)")
            }
            text = re.stringByReplacingMatches(
                in: text, range: range,
                withTemplate: NSRegularExpression.escapedTemplate(for: with).replacingOccurrences(
                    of: "\\$1", with: "$1"))
        }
        try replace(
            #"^  endpoint: .*$"#,
            "  endpoint: \(endpoint)\n  tls: {caFile: \(work)/pki/ca.pem, pinnedPublicKey: \"\(pin)\"}")
        try replace(#"^  token:\n    credential: .*$"#, "  token: {file: \(work)/token}")
        try replace(#"^  monthlyBudget: .*\n"#, "")
        try replace(#"^  path: /var/lib/edged/buffer.db$"#, "  path: \(work)/buffer.db")
        try replace(#"(poll: \d+s)\}"#, "$1, enabled: false}")
        try replace(#"^(    poll: \d+s)$"#, "$1\n    enabled: false")
        if let alarms = text.range(of: "\nalarms:") { text = String(text[..<alarms.lowerBound]) + "\n" }
        try? FileManager.default.copyItem(atPath: "config/templates", toPath: work + "/templates")
        try text.write(toFile: work + "/edged.yaml", atomically: true, encoding: .utf8)
        return work + "/edged.yaml"
    }
}

/// The example pad's backlog as its pollers would have stored it: every poll of every tag (no report by
/// exception: the most readings), each device at its poll interval from a random phase plus 0–40 ms of
/// transaction jitter, values walking slowly at the tag's resolution (sync protocol §9's model).
enum ExamplePadBacklog {
    static func readings(_ pad: EdgeConfig, count: Int) -> [Reading] {
        var rng = SplitMix(state: 17)
        struct Series {
            var device: String; var tag: String; var value: TagValue; var step: Double; var format: NumberFormat
        }
        var devices: [(poll: Int64, offset: Int64, series: [Series])] = []
        for d in pad.devices {
            let series = pad.effectiveTags(of: d).map { t -> Series in
                let format = NumberFormat.of(t)
                let h = Double(t.name.utf8.reduce(5381) { ($0 &* 33) &+ Int($1) } & 0xFFFF) / 65536
                if t.type == .string {
                    return Series(device: d.name, tag: t.name, value: .text("v2.1"), step: 0, format: format)
                }
                if t.states != nil || t.type == .bool || t.type == .bit {
                    return Series(
                        device: d.name, tag: t.name, value: .number(t.states == nil ? 0 : 1), step: 0, format: format)
                }
                let mid = t.span.map { ($0.engLow + $0.engHigh) / 2 } ?? (20 + h * 2000).rounded()
                let step: Double =
                    switch format {
                    case .decimals(let n): pow(10, -Double(n)) * Double(1 + Int(h * 3))
                    case .float32, .shortest: mid * 0.0005
                    }
                return Series(device: d.name, tag: t.name, value: .number(mid), step: step, format: format)
            }
            devices.append((d.poll.milliseconds, Int64(rng.next() % UInt64(d.poll.milliseconds)), series))
        }
        let perSecond = devices.reduce(0.0) { $0 + Double($1.series.count) * 1000 / Double($1.poll) }
        let span = Int64(Double(count) / perSecond * 1000 * 1.02) + 60_000
        let t0 = Int64(Date().timeIntervalSince1970 * 1000) - span - 3_600_000  // all of it at least an hour old
        var events: [Reading] = []
        events.reserveCapacity(count + count / 20)
        for var d in devices {
            for cycle in 0..<(span / d.poll) {
                let t = t0 + d.offset + cycle * d.poll + Int64(rng.next() % 41)
                for i in d.series.indices {
                    if d.series[i].step > 0, case .number(var v) = d.series[i].value {
                        if rng.next() % 2 == 0 { v += (rng.next() % 2 == 0 ? 1 : -1) * d.series[i].step }
                        d.series[i].value = .number(v)
                    }
                    let s = d.series[i]
                    events.append(
                        Reading(
                            device: s.device, tag: s.tag, value: quantized(s.value, s.format), quality: .good,
                            wallMillis: t, monotonicNanos: 0))
                }
            }
        }
        events.sort { $0.wallMillis < $1.wallMillis }
        return Array(events.prefix(count))
    }

    /// The value as the device reports it: whole counts of the tag's resolution, or a float32.
    static func quantized(_ v: TagValue, _ f: NumberFormat) -> TagValue {
        guard case .number(let x) = v else { return v }
        switch f {
        case .decimals(let n): let p = pow(10, Double(n)); return .number((x * p).rounded() / p)
        case .float32: return .number(Double(Float(x)))
        case .shortest: return .number(x)
        }
    }

    static func hours(_ r: [Reading]) -> Double {
        Double((r.last?.wallMillis ?? 0) - (r.first?.wallMillis ?? 0)) / 3_600_000
    }

    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}

/// A child process of the benchmark (posix_spawn), with its CPU time.
final class BenchProcess {
    let pid: pid_t
    private(set) var exited = false
    private(set) var cpuSeconds = 0.0

    init(_ exe: String, _ args: [String], log: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([exe] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var p: pid_t = 0
        guard posix_spawn(&p, exe, &actions, nil, argv, environ) == 0 else {
            throw ValidationError("cannot start \(exe)")
        }
        pid = p
    }

    /// Whether it is still running (reaps it, with its CPU time, when it has ended).
    var running: Bool {
        if exited { return false }
        var status: Int32 = 0
        var usage = rusage()
        if wait4(pid, &status, WNOHANG, &usage) == pid { finish(usage) }
        return !exited
    }

    /// SIGTERM and wait.
    func stop() {
        guard running else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        var usage = rusage()
        if wait4(pid, &status, 0, &usage) == pid { finish(usage) }
    }

    private func finish(_ u: rusage) {
        exited = true
        cpuSeconds =
            Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }

    /// CPU seconds so far of a running process (`/proc/<pid>/stat` utime + stime).
    static func cpu(_ pid: pid_t) -> Double {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = s.lastIndex(of: ")")
        else { return 0 }
        let f = s[s.index(after: close)...].split(separator: " ")
        guard f.count > 13, let u = Double(f[11]), let k = Double(f[12]) else { return 0 }
        return (u + k) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Runs a command to completion; its output, or an error with it.
    static func output(_ exe: String, _ args: [String]) throws -> String {
        let log = NSTemporaryDirectory() + "/edgebench-\(getpid())-\(UUID().uuidString.prefix(6)).out"
        defer { unlink(log) }
        let p = try BenchProcess(exe, args, log: log)
        var status: Int32 = 0
        waitpid(p.pid, &status, 0)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard status == 0 else { throw ValidationError("\(exe) \(args.first ?? ""): \(text)") }
        return text
    }
}

/// The reference receiver as a child process on free loopback ports, with a fresh store.
final class BenchReceiver {
    let process: BenchProcess
    let port: Int
    let adminPort: Int
    let logPath: String
    var endpoint: String { "https://127.0.0.1:\(port)/api/v1/edge/batches" }

    init(work: String, name: String) throws {
        let log = "\(work)/receiver-\(name).log"
        logPath = log
        process = try BenchProcess(
            "/usr/bin/python3",
            [
                "tools/receiver/receiver.py", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--cert",
                work + "/pki/server.pem",
                "--key", work + "/pki/server.key", "--tokens", work + "/tokens.txt", "--store",
                "\(work)/receiver-\(name).db"
            ], log: log)
        let deadline = Date().addingTimeInterval(20)
        var found: (Int, Int)?
        while found == nil && Date() < deadline && process.running {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains("listening on https://") }) {
                func port(_ marker: String) -> Int? {
                    line.range(of: marker).flatMap { Int(line[$0.upperBound...].prefix { $0.isNumber }) }
                }
                if let p = port("https://127.0.0.1:"), let a = port("admin http://127.0.0.1:") { found = (p, a) }
            }
            if found == nil { usleep(20_000) }
        }
        guard let (p, a) = found else {
            throw ValidationError(
                "receiver did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        port = p; adminPort = a
    }

    func stop() { process.stop() }

    struct Run {
        var seconds: Double, firstBatch: Double
        var batches: Int, bodyBytes: Int, wireBytes: Int
        var clientCPU: Double, receiverCPU: Double
    }

    /// Starts the client, waits until every one of `expect` readings is stored (seqs 1…expect of `epoch`, each
    /// once), stops the client, and returns the time and the receiver's byte counts.
    ///
    /// Progress comes from the receiver's access log (one line per answer, `stored=N`), not from `/stats`,
    /// whose store summary scans the whole database under the store's lock and would slow the ingest.
    func measure(expect: Int, epoch: String, client start: () throws -> BenchProcess) throws -> Run {
        let log = FileHandle(forReadingAtPath: logPath)
        defer { try? log?.close() }
        _ = try log?.readToEnd()
        let cpu0 = BenchProcess.cpu(process.pid)
        let t0 = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        let client = try start()
        var first: Double?
        var stored = 0, pending = ""
        while stored < expect {
            if let data = try log?.readToEnd(), !data.isEmpty {
                pending += String(decoding: data, as: UTF8.self)
                var lines = pending.split(separator: "\n", omittingEmptySubsequences: false)
                pending = String(lines.removeLast())
                for line in lines {
                    guard let r = line.range(of: " stored="), line.contains(" 200 ") else { continue }
                    stored += Int(line[r.upperBound...].prefix { $0.isNumber }) ?? 0
                    if first == nil { first = elapsed() }
                }
                continue
            }
            if !client.running && stored < expect {  // curl's answers come after the receiver's commits and log lines
                usleep(200_000)
                if let data = try log?.readToEnd(), !data.isEmpty {
                    pending += String(decoding: data, as: UTF8.self); continue
                }
                throw ValidationError("the client ended with \(stored) of \(expect) readings stored; see \(logPath)")
            }
            guard elapsed() < 900 else { throw ValidationError("\(stored) of \(expect) readings stored after 900 s") }
            usleep(10_000)
        }
        let seconds = elapsed()
        let receiverCPU = BenchProcess.cpu(process.pid) - cpu0
        client.stop()
        let stats = try admin("/stats")
        let seqs = try admin("/seqs?gateway=pecos-17-gw1&epoch=\(epoch)")
        let ranges = seqs["ranges"] as? [[NSNumber]] ?? []
        guard ranges.count == 1, ranges[0].map(\.intValue) == [1, expect],
            (stats["duplicates"] as? NSNumber)?.intValue == 0
        else {
            throw ValidationError(
                "receiver holds \(seqs["count"] ?? "?") seqs in \(ranges.count) ranges, \(stats["duplicates"] ?? "?") duplicates"
            )
        }
        let body = (stats["bodyBytes"] as? NSNumber)?.intValue ?? 0
        return Run(
            seconds: seconds, firstBatch: first ?? seconds, batches: (stats["batches"] as? NSNumber)?.intValue ?? 0,
            bodyBytes: body, wireBytes: body + ((stats["headerBytes"] as? NSNumber)?.intValue ?? 0),
            clientCPU: client.cpuSeconds, receiverCPU: receiverCPU)
    }

    /// GET on the admin endpoint (plain HTTP/1.0 on loopback).
    func admin(_ path: String) throws -> [String: Any] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(adminPort).bigEndian
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard ok else { throw ValidationError("admin port \(adminPort): connect failed") }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var response: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65_536)
        while case let n = recv(fd, &buf, buf.count, 0), n > 0 { response += buf[..<n] }
        let text = String(decoding: response, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n"),
            let obj = try? JSONSerialization.jsonObject(with: Data(text[split.upperBound...].utf8)) as? [String: Any]
        else {
            throw ValidationError("admin \(path): \(text.prefix(200))")
        }
        return obj
    }
}
