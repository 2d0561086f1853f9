/// The members of an EFM record and an EFM gap in a version-2 batch (docs/sync-protocol.md §4.5, §4.6), in
/// the order the protocol lists them.
enum EFMWire {
    static func record(_ e: EFMUploadRecord, seq: Int64) -> String {
        var o =
            "{\"seq\":\(seq),\"kind\":\(JSON.string(e.kind)),\"device\":\(JSON.string(e.device)),"
            + "\"meter\":\(JSON.string(e.meter)),\"contractHour\":\(e.contractHour),"
            + "\"deviceTime\":\(JSON.string(e.deviceTime)),\"key\":\(JSON.string(e.key)),\"hash\":\(JSON.string(e.hash)),"
            + "\"collectedAt\":\(e.collectedWallMillis),\"raw\":\"\(base64(e.raw))\""
        switch e.body {
        case .archive(let names, let numbers, let units):
            o += ",\"values\":{"
            o += zip(names, numbers).map { "\(JSON.string($0)):\(float($1))" }.joined(separator: ",")
            o += "}"
            let withUnits = zip(names, units).compactMap { n, u in u.map { (n, $0) } }
            if !withUnits.isEmpty {
                o +=
                    ",\"units\":{" + withUnits.map { "\(JSON.string($0)):\(JSON.string($1))" }.joined(separator: ",")
                    + "}"
            }
        case .event(let register, let bitmap, let asFound, let asLeft):
            let operatorEvent = bitmap & (1 << 9) != 0
            let alarmSet = operatorEvent ? "null" : "\(bitmap & (1 << 15) != 0)"
            let limits = EventRecord.Limit.allCases.enumerated()
                .filter { bitmap & (1 << UInt16(10 + $0.offset)) != 0 }
                .map { "\"\($0.element.rawValue)\"" }
            o +=
                ",\"event\":{\"register\":\(register),\"bitmap\":\(bitmap),\"operator\":\(operatorEvent),"
                + "\"alarmSet\":\(alarmSet),\"limits\":[\(limits.joined(separator: ","))],"
                + "\"asFound\":\(float(Double(asFound))),\"asLeft\":\(float(Double(asLeft)))}"
        }
        return o + "}"
    }

    static func gap(_ g: EFMGapUpload, seq: Int64) -> String {
        "{\"seq\":\(seq),\"kind\":\(JSON.string(g.kind)),\"device\":\(JSON.string(g.device)),"
            + "\"meter\":\(JSON.string(g.meter)),\"from\":\(JSON.string(g.from)),\"to\":\(JSON.string(g.to)),"
            + "\"periods\":\(g.periods),\"notedAt\":\(g.notedWallMillis)}"
    }

    /// The float32 the device sent, as the shortest text that reads back as it; null when it is no number
    /// (NaN or infinite: JSON has neither; `raw` keeps the bytes).
    static func float(_ x: Double) -> String {
        guard x.isFinite else { return "null" }
        let f = Float(x)
        if f == f.rounded(), abs(f) < 1e15 { return String(Int64(f)) }
        return f.description
    }

    /// Standard base64 with padding (RFC 4648 §4).
    static func base64(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i])
            let b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let n = b0 << 16 | b1 << 8 | b2
            out.append(table[Int(n >> 18 & 63)])
            out.append(table[Int(n >> 12 & 63)])
            out.append(i + 1 < bytes.count ? table[Int(n >> 6 & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? table[Int(n & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
