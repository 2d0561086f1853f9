/// Who is sending, for the batch header.
public struct BatchSender: Sendable, Equatable {
    public var gateway: String
    public var tenant: String
    public var site: String
    public var software: String
    public init(gateway: String, tenant: String, site: String, software: String) {
        self.gateway = gateway; self.tenant = tenant; self.site = site; self.software = software
    }
}

/// Writes a buffered batch as the body of the sync protocol (`wellpulse.edge.batch/1`,
/// docs/sync-protocol.md): readings grouped by series with delta-encoded seq and time, alarm events and
/// gap records each with their seq. Pure: the caller gzips and sends.
public struct BatchEncoder: Sendable {
    public static let schema = "wellpulse.edge.batch/1"
    /// Version 2 adds gas measurement records (`efm`, `efmGaps`); a batch is written in it only when it
    /// carries them, so a gateway without flow computers speaks version 1 to a version-1 server.
    public static let schemaEFM = "wellpulse.edge.batch/2"
    public let sender: BatchSender
    /// Digits each (device, tag) needs; tags it does not know are written shortest.
    public let formats: [String: NumberFormat]

    public init(sender: BatchSender, formats: [String: NumberFormat]) {
        self.sender = sender; self.formats = formats
    }

    /// The formats of every tag of a configuration, keyed `device.tag`.
    public static func formats(for config: EdgeConfig) -> [String: NumberFormat] {
        var out: [String: NumberFormat] = [:]
        for d in config.devices {
            for t in config.effectiveTags(of: d) { out["\(d.name).\(t.name)"] = NumberFormat.of(t) }
        }
        return out
    }

    /// `<gateway>:<epoch>:<firstSeq>-<lastSeq>`.
    public func idempotencyKey(_ batch: BufferBatch) -> String {
        let seqs = batch.records.map(\.seq)
        return "\(sender.gateway):\(batch.epoch):\(seqs.min() ?? 0)-\(seqs.max() ?? 0)"
    }

    /// The JSON body of a batch (before gzip).
    ///
    /// Written straight into bytes: a drain encodes thousands of readings per batch, and building a String
    /// per number costs more than the compression that follows.
    public func encode(_ batch: BufferBatch, sentAt: Int64, clockSynchronized: Bool) -> [UInt8] {
        // Batches come in seq order (alarm lane first, then readings): sort only when they do not.
        let inOrder = zip(batch.records, batch.records.dropFirst()).allSatisfy { $0.seq < $1.seq }
        let records = inOrder ? batch.records : batch.records.sorted { $0.seq < $1.seq }
        var out: [UInt8] = []
        out.reserveCapacity(records.count * 24 + 1024)
        // Version 2 for EFM records, and for a flow computer's own alarms (kind device-alarm).
        let carriesEFM =
            !batch.efmSeqs.isEmpty || batch.records.contains { $0.alarm?.kind == AlarmRule.Kind.deviceAlarm.rawValue }
        out +=
            header(
                epoch: batch.epoch, sentAt: sentAt, clockSynchronized: clockSynchronized,
                schema: carriesEFM ? Self.schemaEFM : Self.schema
            ).utf8
        out += ",\"firstSeq\":".utf8
        out.appendDecimal(records.first?.seq ?? 0)
        out += ",\"lastSeq\":".utf8
        out.appendDecimal(records.last?.seq ?? 0)

        // Series in order of first appearance, points in seq order.
        var series: [Series] = []
        var index: [SeriesKey: Int] = [:]
        var alarms: [String] = []
        var gaps: [String] = []
        var efm: [String] = []
        var efmGaps: [String] = []
        // Seq ranges of readings and alarm events timed while the clock was unsynchronized: a range runs on
        // while the batch's records (in seq order) are flagged; seqs not in the batch do not break it.
        var unsynchronized: [ClosedRange<Int64>] = []
        var previousFlagged = false
        for r in records {
            let flagged: Bool =
                switch r.payload {
                case .reading(let s): !s.clockSynchronized
                case .alarm(let a): a.clockSynchronized == false
                case .gap, .efm, .efmGap: false
                }
            if flagged {
                if previousFlagged, let last = unsynchronized.popLast() {
                    unsynchronized.append(last.lowerBound...r.seq)
                } else {
                    unsynchronized.append(r.seq...r.seq)
                }
            }
            previousFlagged = flagged
            switch r.payload {
            case .reading(let s):
                let key = SeriesKey(device: s.device, tag: s.tag, units: s.units ?? "")
                let i: Int
                if let found = index[key] {
                    i = found
                } else {
                    i = series.count
                    index[key] = i
                    series.append(
                        Series(
                            device: s.device, tag: s.tag, units: s.units,
                            format: formats["\(s.device).\(s.tag)"] ?? .shortest))
                }
                series[i].append(seq: r.seq, t: s.wallMillis, value: s.value, quality: s.quality)
            case .alarm(let a): alarms.append(alarm(a, seq: r.seq))
            case .gap(let g): gaps.append(gap(g, seq: r.seq))
            case .efm(let e): efm.append(EFMWire.record(e, seq: r.seq))
            case .efmGap(let g): efmGaps.append(EFMWire.gap(g, seq: r.seq))
            }
        }
        if !series.isEmpty {
            out += ",\"readings\":[".utf8
            for (i, s) in series.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                s.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        if !alarms.isEmpty { out += ",\"alarms\":[\(alarms.joined(separator: ","))]".utf8 }
        if !gaps.isEmpty { out += ",\"gaps\":[\(gaps.joined(separator: ","))]".utf8 }
        if !efm.isEmpty { out += ",\"efm\":[\(efm.joined(separator: ","))]".utf8 }
        if !efmGaps.isEmpty { out += ",\"efmGaps\":[\(efmGaps.joined(separator: ","))]".utf8 }
        if !unsynchronized.isEmpty {
            out += ",\"clockUnsynchronized\":[".utf8
            for (i, r) in unsynchronized.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out.append(UInt8(ascii: "["))
                out.appendDecimal(r.lowerBound)
                out.append(UInt8(ascii: ","))
                out.appendDecimal(r.upperBound)
                out.append(UInt8(ascii: "]"))
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    private struct SeriesKey: Hashable {
        var device: String
        var tag: String
        var units: String
    }

    /// One series' points, kept as parallel arrays until written.
    private struct Series {
        var device: String
        var tag: String
        var units: String?
        var format: NumberFormat
        var seqs: [Int64] = []
        var times: [Int64] = []
        var values: [TagValue?] = []
        var qualities: [Quality] = []
        var allGood = true

        init(device: String, tag: String, units: String?, format: NumberFormat) {
            self.device = device; self.tag = tag; self.units = units; self.format = format
        }

        mutating func append(seq: Int64, t: Int64, value: TagValue?, quality: Quality) {
            // A good reading without a value is a decode failure on the wire (v is null exactly when q is not good).
            let q: Quality = quality.isGood && value == nil ? .bad(.decode) : quality
            seqs.append(seq); times.append(t); values.append(q.isGood ? value : nil); qualities.append(q)
            if !q.isGood { allGood = false }
        }

        func write(into out: inout [UInt8]) {
            out += "{\"device\":\(JSON.string(device)),\"tag\":\(JSON.string(tag))".utf8
            if let u = units, !u.isEmpty { out += ",\"units\":\(JSON.string(u))".utf8 }
            out += ",\"seq\":[".utf8
            Self.writeDeltas(seqs, into: &out)
            out += "],\"t\":[".utf8
            Self.writeDeltas(times, into: &out)
            out += "],\"v\":[".utf8
            for (i, v) in values.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                switch v {
                case .number(let n)?: format.write(n, into: &out)
                case .text(let txt)?: out += JSON.string(String(txt.prefix(1024))).utf8
                case nil: out += "null".utf8
                }
            }
            out.append(UInt8(ascii: "]"))
            if !allGood {
                out += ",\"q\":[".utf8
                for (i, q) in qualities.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    out += "\"\(BatchEncoder.qualityCode(q))\"".utf8
                }
                out.append(UInt8(ascii: "]"))
            }
            out.append(UInt8(ascii: "}"))
        }

        /// The first value as it is, every later one as the difference to the previous.
        static func writeDeltas(_ xs: [Int64], into out: inout [UInt8]) {
            var previous: Int64?
            for x in xs {
                if let p = previous {
                    out.append(UInt8(ascii: ",")); out.appendDecimal(x &- p)
                } else {
                    out.appendDecimal(x)
                }
                previous = x
            }
        }
    }

    /// A probe body: the header with `"probe": true` and no records.
    public func probe(epoch: String, sentAt: Int64, clockSynchronized: Bool) -> [UInt8] {
        Array((header(epoch: epoch, sentAt: sentAt, clockSynchronized: clockSynchronized) + ",\"probe\":true}").utf8)
    }

    private func header(epoch: String, sentAt: Int64, clockSynchronized: Bool, schema: String = Self.schema) -> String {
        "{\"schema\":\"\(schema)\",\"gateway\":{\"id\":\(JSON.string(sender.gateway)),\"tenant\":\(JSON.string(sender.tenant)),"
            + "\"site\":\(JSON.string(String(sender.site.prefix(200)))),\"software\":\(JSON.string(sender.software))},"
            + "\"epoch\":\(JSON.string(epoch)),\"sentAt\":\(sentAt),\"clockSynchronized\":\(clockSynchronized)"
    }

    /// Quality codes of the protocol (§4.1).
    public static func qualityCode(_ q: Quality) -> String {
        switch q {
        case .good: "good"
        case .bad(.timeout): "timeout"
        case .bad(.exception(let c)): "exception-" + String(c, radix: 16, uppercase: true).leftPadded(2)
        case .bad(.framing): "framing"
        case .bad(.link): "link"
        case .bad(.decode): "decode"
        case .bad(.offline): "offline"
        }
    }

    private func alarm(_ a: AlarmEventRecord, seq: Int64) -> String {
        var o =
            "{\"seq\":\(seq),\"t\":\(a.wallMillis),\"alarm\":\(JSON.string(a.alarm)),\"id\":\(JSON.string(a.occurrence)),"
            + "\"kind\":\(JSON.string(a.kind)),\"device\":\(JSON.string(a.device))"
        if let t = a.tag { o += ",\"tag\":\(JSON.string(t))" }
        if let l = a.level { o += ",\"level\":\(JSON.string(l))" }
        o += ",\"transition\":\(JSON.string(a.transition.rawValue)),\"priority\":\(JSON.string(a.priority))"
        let f = a.tag.flatMap { formats["\(a.device).\($0)"] } ?? .shortest
        o += ",\"value\":\(a.value.map { f.format($0) } ?? "null"),\"limit\":\(a.limit.map { f.format($0) } ?? "null")"
        o += ",\"reason\":\(JSON.string(String(a.reason.prefix(500))))"
        if let by = a.by { o += ",\"by\":\(JSON.string(String(by.prefix(64))))" }
        if let until = a.until { o += ",\"until\":\(until)" }
        return o + "}"
    }

    private func gap(_ g: GapRecord, seq: Int64) -> String {
        "{\"seq\":\(seq),\"firstSeq\":\(g.firstSeq),\"lastSeq\":\(g.lastSeq),\"count\":\(g.count),"
            + "\"from\":\(g.fromMillis),\"to\":\(g.toMillis),\"reason\":\(JSON.string(g.reason.protocolCode))}"
    }
}

/// Minimal JSON text helpers for the hand-written encoder (deterministic member order, no Foundation).
enum JSON {
    static func string(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    out += "\\u" + String(u.value, radix: 16).leftPadded(4)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

extension [UInt8] {
    /// Appends `v` in decimal ASCII.
    mutating func appendDecimal(_ v: Int64) {
        if v < 0 { append(UInt8(ascii: "-")) }
        var m = v.magnitude
        var unit: UInt64 = 1
        while m / unit >= 10 { unit *= 10 }
        while unit > 0 {
            append(UInt8(ascii: "0") + UInt8(m / unit))
            m %= unit
            unit /= 10
        }
    }
}
