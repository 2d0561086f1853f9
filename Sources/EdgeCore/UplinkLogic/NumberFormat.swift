import Foundation

/// How many digits a tag's values need on the wire: the fewest that still identify the device's value
/// (sync protocol §4.1). Random trailing digits are most of the bytes of a compressed batch.
public enum NumberFormat: Sendable, Equatable {
    /// A float32 register: the shortest text that reads back as the same Float.
    case float32
    /// A scaled integer register or a span: this many decimals.
    case decimals(Int)
    /// Anything else: the shortest round-trip text of the Double.
    case shortest

    /// The format a tag's values need.
    public static func of(_ tag: TagDefinition) -> NumberFormat {
        switch tag.type {
        case .float32: return .float32
        case .float64, .string: return .shortest
        case .bool, .bit: return .decimals(0)
        default:
            if let s = tag.span {
                let step = abs((s.engHigh - s.engLow) / (s.rawHigh - s.rawLow))
                return .decimals(step > 0 ? max(0, Int((-log10(step)).rounded(.up))) : 6)
            }
            // scale 0.1 → 1 decimal, 0.001 → 3, 0.25 → 2; the offset can add decimals too.
            return .decimals(max(decimals(of: tag.scale), decimals(of: tag.offset)))
        }
    }

    /// Decimals needed to write `x` exactly (up to 9).
    static func decimals(of x: Double) -> Int {
        var v = abs(x)
        for d in 0...9 {
            if abs(v - v.rounded()) < 1e-9 * max(1, v) { return d }
            v *= 10
        }
        return 9
    }

    /// The value as JSON text.
    public func format(_ v: Double) -> String {
        guard v.isFinite else { return "null" }
        switch self {
        case .float32:
            return Self.trim(Float(v).description)
        case .decimals(let n):
            if n == 0 { return Self.integer(v.rounded()) }
            let p = pow(10, Double(n))
            let r = (v * p).rounded() / p
            if r == r.rounded(), abs(r) < 1e15 { return Self.integer(r) }
            return Self.trim(String(format: "%.\(n)f", r))
        case .shortest:
            if v == v.rounded(), abs(v) < 1e15 { return Self.integer(v) }
            return Self.trim(v.description)
        }
    }

    /// A value as a person reads it (`edgectl tail`): a number with the digits the uplink sends for it
    /// (`format(_:)`: `77.6`, not `77.60000000000001`), text as it is.
    public func display(_ value: TagValue) -> String {
        switch value {
        case .number(let v): format(v)
        case .text(let s): s
        }
    }

    /// Appends `format(v)` as UTF-8, without making a String for the common cases (whole raw counts).
    public func write(_ v: Double, into out: inout [UInt8]) {
        if case .decimals(let n) = self, v.isFinite, n <= 9 {
            var p: Int64 = 1
            for _ in 0..<n { p *= 10 }
            let scaled = (v * Double(p)).rounded()
            if abs(scaled) < 9e15 {
                // The value in whole units of its last decimal: integer part, then the fraction without
                // trailing zeros ("%.nf" of the rounded value, trimmed, with no floating-point text in between).
                let m = Int64(scaled)
                if m < 0 { out.append(UInt8(ascii: "-")) }
                out.appendDecimal(Int64(m.magnitude / UInt64(p)))
                var fraction = m.magnitude % UInt64(p)
                if fraction != 0 {
                    var digits = n
                    while fraction % 10 == 0 { fraction /= 10; digits -= 1 }
                    out.append(UInt8(ascii: "."))
                    var unit: UInt64 = 1
                    for _ in 1..<max(1, digits) { unit *= 10 }
                    while unit > 0 {
                        out.append(UInt8(ascii: "0") + UInt8(fraction / unit)); fraction %= unit; unit /= 10
                    }
                }
                return
            }
        }
        out += format(v).utf8
    }

    static func integer(_ v: Double) -> String {
        abs(v) < 9.2e18 ? String(Int64(v)) : v.description
    }

    /// `95.30` → `95.3`, `100.0` → `100`; exponents (`1e-05`) are left alone.
    static func trim(_ s: String) -> String {
        var bytes = Array(s.utf8)
        guard bytes.contains(UInt8(ascii: ".")),
            !bytes.contains(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") })
        else { return s }
        while bytes.last == UInt8(ascii: "0") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        return bytes == Array("-0".utf8) ? "0" : String(decoding: bytes, as: UTF8.self)
    }
}
