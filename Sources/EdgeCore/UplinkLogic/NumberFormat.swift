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

    static func integer(_ v: Double) -> String {
        abs(v) < 9.2e18 ? String(Int64(v)) : v.description
    }

    /// `95.30` → `95.3`, `100.0` → `100`; exponents (`1e-05`) are left alone.
    static func trim(_ s: String) -> String {
        guard s.contains("."), !s.contains("e"), !s.contains("E") else { return s }
        var t = Substring(s)
        while t.last == "0" { t = t.dropLast() }
        if t.last == "." { t = t.dropLast() }
        return t == "-0" ? "0" : String(t)
    }
}
