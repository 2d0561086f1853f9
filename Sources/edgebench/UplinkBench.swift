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
