import EdgeCore
import EdgeTestSupport
import Testing

/// A small pad (two wells of one template) whose alarms each test writes as YAML, loaded through the
/// real parser and validator so state names resolve as in production.
enum AlarmPad {
    static let base = """
        gateway: {id: gw-1, site: Test Pad, tenant: acmeoil}
        uplink:
          endpoint: https://acmeoil.wellpulse.io/api/v1/edge/batches
          token: {credential: edged-token}
        storage: {path: /var/lib/edged/buffer.db}
        buses:
          - {name: line1, type: rtu, device: /dev/ttyS1, baud: 19200}
        templates:
          - name: well
            addressing: modicon
            tags:
              - {name: tubing_pressure, address: 40001, type: uint16, units: psi}
              - {name: pump_fillage, address: 40002, type: uint16, units: "%"}
              - {name: well_state, address: 40003, type: uint16, states: {0: stopped, 1: running, 3: malfunction}}
              - {name: flow_rate, address: 40004, type: uint16, units: MCF/d}
              - {name: rod_part, address: 10001, type: bool}
        devices:
          - {name: well-1, bus: line1, unit: 1, template: well, poll: 5s}
          - {name: well-2, bus: line1, unit: 2, template: well, poll: 5s}
        alarms:

        """

    /// The pad with `alarms` (YAML list items, each on its own line) as its alarm section.
    static func config(_ alarms: String) throws -> EdgeConfig {
        switch ConfigLoader(files: MemoryConfigFiles([:])).load(text: base + alarms, path: "edged.yaml") {
        case .success(let loaded): return loaded.config
        case .failure(let error): throw error
        }
    }

    /// An engine for `alarms`, started at `now` seconds.
    static func engine(_ alarms: String, at now: Int64 = 0) throws -> AlarmEngine {
        AlarmEngine(config: try config(alarms), now: t(now))
    }
}

/// Test time in seconds, as the engine's milliseconds.
func t(_ seconds: Int64) -> Int64 { seconds * 1000 }

extension AlarmEngine {
    /// A good reading of `tag` at `seconds`.
    mutating func read(_ tag: String, _ value: Double, at seconds: Int64, device: String = "well-1") -> [AlarmEvent] {
        ingest(
            [
                Reading(
                    device: device, tag: tag, value: .number(value), quality: .good, wallMillis: t(seconds),
                    monotonicNanos: UInt64(seconds) * 1_000_000_000)
            ], now: t(seconds))
    }

    /// A bad-quality reading (timeout) of `tag` at `seconds`.
    mutating func readBad(_ tag: String, at seconds: Int64, device: String = "well-1") -> [AlarmEvent] {
        ingest(
            [
                Reading(
                    device: device, tag: tag, value: nil, quality: .bad(.timeout), wallMillis: t(seconds),
                    monotonicNanos: UInt64(seconds) * 1_000_000_000)
            ], now: t(seconds))
    }

    /// Ticks once a second from `from` through `through` seconds, as the daemon does.
    mutating func tick(from: Int64, through: Int64) -> [AlarmEvent] {
        guard from <= through else { return [] }
        return (from...through).flatMap { tick(now: t($0)) }
    }

    /// The status line of alarm `id`, if listed.
    func status(_ id: AlarmID) -> AlarmStatus? { active.first { $0.id == id } }
}

extension [AlarmEvent] {
    /// `id transition@seconds` per event: what the tests compare sequences by.
    var brief: [String] { map { "\($0.id) \($0.transition.rawValue)@\($0.wallMillis / 1000)" } }
}
