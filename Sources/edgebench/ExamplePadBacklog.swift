import EdgeCore
import Foundation

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
