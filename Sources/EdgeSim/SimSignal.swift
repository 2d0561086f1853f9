import EdgeCore
import Foundation

/// How a simulated value moves over time (seconds since the simulator started).
public enum SimSignal: Sendable, Equatable, Codable {
    case constant(Double)
    /// From `from` to `to` over `period`, then again.
    case ramp(from: Double, to: Double, period: TimeSpan)
    case sine(mid: Double, amplitude: Double, period: TimeSpan)
    /// A bounded random walk: each second moves by up to `step`.
    case walk(mid: Double, step: Double, min: Double, max: Double)
    /// Scripted steps: the value of the last step whose time has come (the first before that).
    case steps([Step])

    public struct Step: Sendable, Equatable, Codable {
        public var at: TimeSpan
        public var value: Double
        /// Move linearly from the previous step's value instead of jumping.
        public var ramp: Bool?
        public init(at: TimeSpan, value: Double, ramp: Bool? = nil) {
            self.at = at; self.value = value; self.ramp = ramp
        }
    }

    public func value(at t: Double) -> Double {
        switch self {
        case .constant(let v): return v
        case .ramp(let a, let b, let p):
            let frac = p.seconds > 0 ? (t.truncatingRemainder(dividingBy: p.seconds)) / p.seconds : 0
            return a + (b - a) * frac
        case .sine(let mid, let amp, let p):
            return mid + amp * sin(2 * .pi * t / max(p.seconds, 0.001))
        case .walk(let mid, let step, let lo, let hi):
            // Deterministic per second: a hash of the second picks the move, so restarts replay the same path.
            var v = mid
            let seconds = Int(t)
            for s in 0..<min(seconds, 86_400) {
                var h = UInt64(truncatingIfNeeded: s) &* 0x9E37_79B9_7F4A_7C15
                h ^= h >> 29
                let u = Double(h % 2001) / 1000 - 1
                v = Swift.min(hi, Swift.max(lo, v + u * step))
            }
            return v
        case .steps(let steps):
            guard let first = steps.first else { return 0 }
            var current = first.value
            var previous = (time: 0.0, value: first.value)
            for s in steps {
                if s.at.seconds <= t {
                    current = s.value
                    previous = (s.at.seconds, s.value)
                } else {
                    if s.ramp == true {
                        let span = s.at.seconds - previous.time
                        return span > 0
                            ? previous.value + (s.value - previous.value) * (t - previous.time) / span : s.value
                    }
                    break
                }
            }
            return current
        }
    }
}

/// What a simulated device does wrong, on demand.
public enum SimFault: Sendable, Equatable, Codable, CustomStringConvertible {
    case none
    /// No response at all.
    case silent
    /// Answers every read with this exception code.
    case exception(UInt8)
    /// Answers after this delay.
    case slow(TimeSpan)
    /// Answers with random bytes.
    case garbage
    /// Answers as another unit id.
    case wrongUnit

    public var description: String {
        switch self {
        case .none: "none"
        case .silent: "silent"
        case .exception(let c): "exception \(c)"
        case .slow(let t): "slow \(t)"
        case .garbage: "garbage"
        case .wrongUnit: "wrong-unit"
        }
    }

    /// Parses `none`, `silent`, `exception:2`, `slow:800ms`, `garbage`, `wrong-unit`.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        switch parts[0] {
        case "none": self = .none
        case "silent": self = .silent
        case "garbage": self = .garbage
        case "wrong-unit": self = .wrongUnit
        case "exception": guard parts.count == 2, let c = UInt8(parts[1]) else { return nil }; self = .exception(c)
        case "slow": guard parts.count == 2, let t = TimeSpan(parsing: parts[1]) else { return nil }; self = .slow(t)
        default: return nil
        }
    }
}
