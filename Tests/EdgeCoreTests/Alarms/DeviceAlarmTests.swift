import EdgeCore
import EdgeTestSupport
import Testing

/// A flow computer's own alarms, from its event log, in the alarm engine: a set record on the watched register
/// (and limit) raises, a cleared one clears; operator events and other registers change nothing.
@Suite struct DeviceAlarmTests {
    static let base = """
        gateway: {id: gw-1, site: Test Pad, tenant: acmeoil}
        uplink: {endpoint: "https://acmeoil.wellpulse.io/api/v1/edge/batches", token: {credential: t}}
        storage: {path: /var/lib/edged/buffer.db}
        buses:
          - {name: line1, type: rtu, device: /dev/ttyS1, baud: 9600}
        templates:
          - name: fc
            addressing: enron
            efm: scanner2000
            tags:
              - {name: dp, address: 7101, units: inH2O}
        devices:
          - {name: fc-1, bus: line1, unit: 1, template: fc, poll: 5s, efm: {meter: M-1}}
          - {name: fc-2, bus: line1, unit: 2, template: fc, poll: 5s}
        alarms:

        """

    static func load(_ alarms: String) -> Result<LoadedConfig, ConfigError> {
        ConfigLoader(files: MemoryConfigFiles([:])).load(text: base + alarms, path: "edged.yaml")
    }

    static let stamp = DeviceTimestamp(year: 2026, month: 11, day: 1, hour: 8, minute: 0, second: 0)!

    /// An event record as the device sends it.
    static func record(register: UInt16, bitmap: UInt16, value: Float = 212.5, hour: Int = 8) throws -> EventRecord {
        let at = DeviceTimestamp(year: 2026, month: 11, day: 1, hour: hour, minute: 0, second: 0)!
        return try EventRecord(
            raw: EnronRecordEncoder.eventRecord(
                bitmap: bitmap, register: register, at: at, asFound: value, asLeft: 0, order: .abcd),
            order: .abcd)
    }

    static let hi: UInt16 = 1 << 12
    static let set: UInt16 = 1 << 15
    static let operatorChange: UInt16 = 1 << 9

    @Test func setRaisesClearedClearsAndOthersChangeNothing() throws {
        let config = try Self.load(
            "  - {name: fc-1-dp-hi, type: device-alarm, device: fc-1, register: 7101, limit: hi, priority: high}\n"
        ).get().config
        var engine = AlarmEngine(config: config, now: 0)
        // An operator changing the DP alarm limit, an alarm on another register, on another limit, another device.
        #expect(
            engine.deviceAlarms(
                "fc-1",
                [
                    try Self.record(register: 7101, bitmap: Self.operatorChange | Self.hi),
                    try Self.record(register: 7102, bitmap: Self.set | Self.hi),
                    try Self.record(register: 7101, bitmap: Self.set | (1 << 11))
                ], now: 1000
            ).isEmpty)
        #expect(
            engine.deviceAlarms("fc-2", [try Self.record(register: 7101, bitmap: Self.set | Self.hi)], now: 1500)
                .isEmpty)
        let raised = engine.deviceAlarms(
            "fc-1", [try Self.record(register: 7101, bitmap: Self.set | Self.hi)], now: 2000)
        #expect(raised.map(\.transition) == [.raised])
        #expect(raised.first?.kind == .deviceAlarm && raised.first?.priority == .high)
        #expect(raised.first?.value == 212.5)
        #expect(
            raised.first?.reason == "fc-1 register 7101 hi alarm set, value 212.5 at 2026-11-01T08:00:00 device time")
        // The same record read again (a crash before the acknowledge) is not fed twice by edged; fed again, it
        // changes nothing either.
        #expect(
            engine.deviceAlarms("fc-1", [try Self.record(register: 7101, bitmap: Self.set | Self.hi)], now: 2500)
                .isEmpty)
        let cleared = engine.deviceAlarms(
            "fc-1", [try Self.record(register: 7101, bitmap: Self.hi, value: 95, hour: 9)], now: 3000)
        #expect(cleared.map(\.transition) == [.cleared])
        #expect(cleared.first?.reason.hasSuffix("alarm cleared at 2026-11-01T09:00:00 device time") == true)
        // Set and cleared within one read: both transitions, in the device's order.
        let both = engine.deviceAlarms(
            "fc-1",
            [
                try Self.record(register: 7101, bitmap: Self.set | Self.hi, hour: 10),
                try Self.record(register: 7101, bitmap: Self.hi, hour: 11)
            ], now: 4000)
        #expect(both.map(\.transition) == [.raised, .cleared])
    }

    @Test func aDeviceAlarmNeedsARegisterAndAnEFMDevice() throws {
        guard
            case .failure(let e) = Self.load(
                """
                  - {name: a, type: device-alarm, device: fc-2, register: 7101}
                  - {name: b, type: device-alarm, device: fc-1}
                  - {name: c, type: device-alarm, device: fc-1, register: 4001, tag: dp}

                """)
        else {
            Issue.record("loaded")
            return
        }
        let text = e.diagnostics.map(\.description).joined(separator: "\n")
        #expect(text.contains("device 'fc-2' needs `efm: {meter: ...}`"), "\(text)")
        #expect(text.contains("a device-alarm needs the register"), "\(text)")
        #expect(text.contains("4001 is not an Enron register"), "\(text)")
        #expect(text.contains("'tag' does not apply to a device-alarm alarm"), "\(text)")
    }
}
