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
    public func encode(_ batch: BufferBatch, sentAt: Int64, clockSynchronized: Bool) -> [UInt8] {
        let records = batch.records.sorted { $0.seq < $1.seq }
        var out = header(epoch: batch.epoch, sentAt: sentAt, clockSynchronized: clockSynchronized)
        out += ",\"firstSeq\":\(records.first?.seq ?? 0),\"lastSeq\":\(records.last?.seq ?? 0)"

        // Series in order of first appearance, points in seq order.
        struct Series { var device: String; var tag: String; var units: String?; var points: [(Int64, Int64, TagValue?, Quality)] }
        var series: [Series] = []
        var index: [String: Int] = [:]
        var alarms: [String] = []
        var gaps: [String] = []
        for r in records {
            switch r.payload {
            case .reading(let s):
                let key = "\(s.device)\u{0}\(s.tag)\u{0}\(s.units ?? "")"
                if let i = index[key] { series[i].points.append((r.seq, s.wallMillis, s.value, s.quality)) } else {
                    index[key] = series.count
                    series.append(Series(device: s.device, tag: s.tag, units: s.units, points: [(r.seq, s.wallMillis, s.value, s.quality)]))
                }
            case .alarm(let a): alarms.append(alarm(a, seq: r.seq))
            case .gap(let g): gaps.append(gap(g, seq: r.seq))
            }
        }
        if !series.isEmpty {
            out += ",\"readings\":["
            for (i, s) in series.enumerated() {
                if i > 0 { out += "," }
                let format = formats["\(s.device).\(s.tag)"] ?? .shortest
                out += "{\"device\":\(JSON.string(s.device)),\"tag\":\(JSON.string(s.tag))"
                if let u = s.units, !u.isEmpty { out += ",\"units\":\(JSON.string(u))" }
                var seqs: [String] = [], times: [String] = [], values: [String] = [], qualities: [String] = []
                var prev: (Int64, Int64)?
                var allGood = true
                for (seq, t, v, q) in s.points {
                    seqs.append(String(prev.map { seq - $0.0 } ?? seq))
                    times.append(String(prev.map { t - $0.1 } ?? t))
                    prev = (seq, t)
                    if q.isGood, let v {
                        switch v {
                        case .number(let n): values.append(format.format(n))
                        case .text(let txt): values.append(JSON.string(String(txt.prefix(1024))))
                        }
                    } else {
                        values.append("null")
                    }
                    let code = Self.qualityCode(q.isGood && v == nil ? .bad(.decode) : q)
                    if code != "good" { allGood = false }
                    qualities.append("\"\(code)\"")
                }
                out += ",\"seq\":[\(seqs.joined(separator: ","))],\"t\":[\(times.joined(separator: ","))],\"v\":[\(values.joined(separator: ","))]"
                if !allGood { out += ",\"q\":[\(qualities.joined(separator: ","))]" }
                out += "}"
            }
            out += "]"
        }
        if !alarms.isEmpty { out += ",\"alarms\":[\(alarms.joined(separator: ","))]" }
        if !gaps.isEmpty { out += ",\"gaps\":[\(gaps.joined(separator: ","))]" }
        out += "}"
        return Array(out.utf8)
    }

    /// A probe body: the header with `"probe": true` and no records.
    public func probe(epoch: String, sentAt: Int64, clockSynchronized: Bool) -> [UInt8] {
        Array((header(epoch: epoch, sentAt: sentAt, clockSynchronized: clockSynchronized) + ",\"probe\":true}").utf8)
    }

    private func header(epoch: String, sentAt: Int64, clockSynchronized: Bool) -> String {
        "{\"schema\":\"\(Self.schema)\",\"gateway\":{\"id\":\(JSON.string(sender.gateway)),\"tenant\":\(JSON.string(sender.tenant)),"
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
        var o = "{\"seq\":\(seq),\"t\":\(a.wallMillis),\"alarm\":\(JSON.string(a.alarm)),\"id\":\(JSON.string(a.occurrence)),"
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
                if u.value < 0x20 { out += "\\u" + String(u.value, radix: 16).leftPadded(4) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

