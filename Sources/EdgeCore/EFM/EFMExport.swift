/// CSV lines of archive records for an auditor or a measurement system (API 21.1 §5.2 content as far as the
/// device gives it; BLM 43 CFR 3175.104(a) decimals).
///
/// Numbers are written without Foundation or a locale: a decimal point, never a comma, whatever the box's
/// locale. Each value is the float the device sent, written with every digit needed to read back the same
/// float and padded to the decimals its kind requires (volume, energy, flow time, integral: at least 5;
/// averages: at least 3) — padded, never rounded, since the record must stay unaltered. Each line ends with
/// the raw record bytes in hex, so the decoded columns can be checked against the original.
public enum EFMExport {
    /// The header line for `archive`'s records: identification, then one column per field with its units.
    public static func header(_ archive: ArchiveProfile) -> String {
        let fields = archive.layout.fields.map { $0.units.isEmpty ? $0.name : "\($0.name) [\($0.units)]" }
        return (["meter_id", "archive", "device_index", "device_time", "contract_hour"] + fields + ["hash", "raw_hex"])
            .map(csv).joined(separator: ",")
    }

    /// One line for `record`, columns as `header` names them. `contractHour` is the device's (empty if unknown).
    public static func line(
        _ record: ArchiveRecord, meterID: String, archive: ArchiveProfile, contractHour: Int?
    ) -> String {
        var columns = [
            meterID, record.archive.rawValue, String(record.index), "\(record.timestamp)",
            contractHour.map { String($0) } ?? ""
        ]
        for (k, field) in archive.layout.fields.enumerated() {
            columns.append(
                k < record.numbers.count ? decimal(record.numbers[k], minimumDecimals: field.kind.minimumDecimals) : "")
        }
        columns.append(record.identity.hash)
        columns.append(hex(record.raw))
        return columns.map(csv).joined(separator: ",")
    }

    /// `v` in plain decimal notation with at least `minimumDecimals` decimals: the shortest digits that read
    /// back as the same Float (or Double, when `v` is no float), never an exponent. NaN and infinities are
    /// written as `NaN`, `Infinity`, `-Infinity`.
    public static func decimal(_ v: Double, minimumDecimals: Int) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v < 0 ? "-Infinity" : "Infinity" }
        let shortest = Double(Float(v)) == v ? Float(v).description : v.description
        var text = Array(shortest.utf8)
        let negative = text.first == UInt8(ascii: "-")
        if negative { text.removeFirst() }
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            exponent = Int(String(decoding: text[(e + 1)...], as: UTF8.self)) ?? 0
            text = Array(text[..<e])
        }
        let dot = text.firstIndex(of: UInt8(ascii: ".")) ?? text.count
        let digits = Array(text[..<dot]) + (dot < text.count ? Array(text[(dot + 1)...]) : [])
        let point = dot + exponent
        let zero = UInt8(ascii: "0")
        var whole: [UInt8]
        var fraction: [UInt8]
        if point <= 0 {
            whole = [zero]
            fraction = Array(repeating: zero, count: -point) + digits
        } else if point >= digits.count {
            whole = digits + Array(repeating: zero, count: point - digits.count)
            fraction = []
        } else {
            whole = Array(digits[..<point])
            fraction = Array(digits[point...])
        }
        while whole.count > 1, whole.first == zero { whole.removeFirst() }
        while fraction.last == zero { fraction.removeLast() }
        if fraction.count < minimumDecimals {
            fraction += Array(repeating: zero, count: minimumDecimals - fraction.count)
        }
        let isZero = whole == [zero] && fraction.allSatisfy { $0 == zero }
        var out = negative && !isZero ? "-" : ""
        out += String(decoding: whole, as: UTF8.self)
        if !fraction.isEmpty { out += "." + String(decoding: fraction, as: UTF8.self) }
        return out
    }

    /// Bytes as lowercase hex, two digits each, no separator.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        var s = ""
        s.reserveCapacity(bytes.count * 2)
        for b in bytes { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 0xF)]) }
        return s
    }

    /// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
    static func csv(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacing("\"", with: "\"\"") + "\""
    }
}
