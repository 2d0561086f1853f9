import EdgeCore
import Foundation

/// How each simulated device's tags move, as written in a profile file:
///
/// ```yaml
/// devices:
///   rpc-1:
///     tubing_pressure: {steps: [{at: 0s, value: 300}, {at: 30s, value: 650, ramp: true}]}
///     well_state: {constant: 1}
///     casing_pressure: {sine: {mid: 80, amplitude: 5, period: 2m}}
/// faults:
///   rpc-2: silent
/// flowComputers:
///   meter-1: {profile: scanner2000, bus: lan, unit: 20, historyHours: 72, contractHour: 8}
/// ```
public struct SimProfile: Sendable, Decodable {
    public var devices: [String: [String: SignalSpec]]
    public var faults: [String: String]?
    /// Enron flow computers by name (see `FlowComputerSpec`).
    public var flowComputers: [String: FlowComputerSpec]?

    public init(
        devices: [String: [String: SignalSpec]] = [:], faults: [String: String]? = nil,
        flowComputers: [String: FlowComputerSpec]? = nil
    ) {
        self.devices = devices; self.faults = faults; self.flowComputers = flowComputers
    }

    /// One signal, written with exactly one key.
    public struct SignalSpec: Sendable, Decodable {
        public struct Ramp: Sendable, Decodable { var from: Double; var to: Double; var period: TimeSpan }
        public struct Sine: Sendable, Decodable { var mid: Double; var amplitude: Double; var period: TimeSpan }
        public struct Walk: Sendable, Decodable { var mid: Double; var step: Double; var min: Double; var max: Double }
        var constant: Double?
        var ramp: Ramp?
        var sine: Sine?
        var walk: Walk?
        var steps: [SimSignal.Step]?

        public var signal: SimSignal? {
            if let v = constant { return .constant(v) }
            if let r = ramp { return .ramp(from: r.from, to: r.to, period: r.period) }
            if let s = sine { return .sine(mid: s.mid, amplitude: s.amplitude, period: s.period) }
            if let w = walk { return .walk(mid: w.mid, step: w.step, min: w.min, max: w.max) }
            if let s = steps { return .steps(s) }
            return nil
        }
    }
}
