import EdgeCore
import EdgeRuntime
import EdgeSim
import EdgeSystem
import EdgeTestSupport
import Foundation
import ModbusPoller
import Testing

/// Live values from a flow computer's Enron map (`addressing: enron`) read like any tag: float32 registers of 4
/// bytes, int32, int16 and booleans, from edgesim's flow computer over loopback TCP and over a pty pair, with
/// the decoded values equal to the device's and a limit alarm raised on one of them.
@Suite(.serialized) struct EnronTagTests {
    static let unit = 20

    static func config(bus: String) throws -> EdgeConfig {
        let text = """
            gateway: {id: gw, site: Pad, tenant: t}
            uplink: {endpoint: "https://127.0.0.1:1/x", token: {credential: c}}
            storage: {path: /tmp/unused.db}
            buses:
              - \(bus)
            templates:
              - name: fc-enron
                addressing: enron
                efm: scanner2000
                tags:
                  - {name: dp, address: 7101, units: inH2O}
                  - {name: sp, address: 7102, units: psia}
                  - {name: flow_rate, address: 7104, units: MCF/d}
                  - {name: orifice, address: 7110, units: in}
                  - {name: contract_hour, address: 3001}
                  - {name: hours_written, address: 5001}
                  - {name: flowing, address: 1001}
            devices:
              - {name: fc-1, bus: b, unit: \(unit), template: fc-enron, poll: 1s, efm: {meter: M-1}}
            alarms:
              - {name: fc-1-dp, type: limit, device: fc-1, tag: dp, h: 1, deadband: 0.1}
            """
        switch ConfigLoader(files: MemoryConfigFiles([:])).load(text: text, path: "edged.yaml") {
        case .success(let loaded): return loaded.config
        case .failure(let e): throw TestSetupError("\(e)")
        }
    }

    @Test func theTemplateDecidesWidthsAndTheReadsFitAPDU() throws {
        let c = try Self.config(bus: "{name: b, type: tcp, host: 127.0.0.1, port: 1}")
        let d = try #require(c.device(named: "fc-1"))
        let tags = c.effectiveTags(of: d)
        #expect(tags.map(\.type) == [.float32, .float32, .float32, .float32, .int16, .int32, .bool])
        #expect(tags.map(\.width) == [1, 1, 1, 1, 1, 1, 1], "one Enron register holds one whole value")
        #expect(tags.last?.table == .coil)
        #expect(c.effectiveLimits(of: d).maxRegisters == 62)
        let plan = ReadPlanner.plan(
            tags: tags, limits: c.effectiveLimits(of: d),
            timing: BusTiming.of(c.buses[0], turnaround: .init(milliseconds: 0)))
        // 7101–7104 in one read (7103 between them costs less than a second request).
        #expect(plan.requests.contains { $0.start == 7101 && $0.count >= 4 })
        #expect(plan.requests.allSatisfy { $0.count <= 62 })
    }

    @Test(arguments: [false, true]) func liveEnronValuesAreReadDecodedAndAlarmed(rtu: Bool) throws {
        let fc = try SimFlowComputer(
            name: "fc-1", unit: Self.unit, profile: .scanner2000,
            start: DeviceTimestamp(year: 2026, month: 11, day: 1, hour: 0, minute: 0, second: 0)!)
        fc.advance(hours: 30)
        let pty = try rtu ? PtyPair() : nil
        let server = SimServer(
            transport: pty.map { .rtu(path: $0.b, baud: 19200) } ?? .tcp(host: "127.0.0.1", port: 0), devices: [],
            flowComputers: [fc])
        try server.start()
        defer { server.stop() }
        let busYAML =
            pty.map { "{name: b, type: rtu, device: \($0.a), baud: 19200, responseTimeout: 500ms}" }
            ?? "{name: b, type: tcp, host: 127.0.0.1, port: \(server.port), responseTimeout: 500ms}"
        let c = try Self.config(bus: busYAML)
        let d = try #require(c.device(named: "fc-1"))
        let bus = c.buses[0]
        let limits = c.effectiveLimits(of: d)
        var poller = DevicePoller(
            config: d, tags: c.effectiveTags(of: d), limits: limits,
            timing: BusTiming.of(bus, turnaround: limits.turnaround), enron: rtu ? .rtu : .tcp)
        let link = try ModbusLinks.make(for: bus)
        defer { link.close() }
        // The planner may read across registers the device does not have (7105–7109): it refuses such a read with
        // exception 02, the poller splits it at once, and from the next poll on reads only what is there.
        let first = poller.poll(over: link, bus: bus)
        #expect(first.readings.allSatisfy { $0.quality == .good }, "\(first.readings)")
        let outcome = poller.poll(over: link, bus: bus)
        #expect(outcome.errors.isEmpty, "\(outcome.errors)")
        let byTag = Dictionary(uniqueKeysWithValues: outcome.readings.map { ($0.tag, $0) })
        for (tag, register) in [
            ("dp", 7101), ("sp", 7102), ("flow_rate", 7104), ("orifice", 7110), ("contract_hour", 3001),
            ("hours_written", 5001), ("flowing", 1001)
        ] {
            #expect(byTag[tag]?.quality == .good, "\(tag): \(String(describing: byTag[tag]))")
            #expect(byTag[tag]?.value == .number(fc.value(of: register)!.number), "\(tag) from register \(register)")
        }
        #expect(byTag["hours_written"]?.value == .number(30))
        // A live Enron value feeds the alarm engine like any reading.
        var engine = AlarmEngine(config: c, now: 0)
        let events = engine.ingest(outcome.readings, now: 1)
        #expect(
            events.contains { $0.id == AlarmID(rule: "fc-1-dp", level: .h) && $0.transition == .raised }, "\(events)")

        // A register the device does not have is refused with exception 02, named, not misread.
        var wrong = c
        wrong.templates[0].tags[0].address = 7500
        var refused = DevicePoller(
            config: d, tags: wrong.effectiveTags(of: d), limits: limits,
            timing: BusTiming.of(bus, turnaround: limits.turnaround), enron: rtu ? .rtu : .tcp)
        let r2 = refused.poll(over: link, bus: bus)
        #expect(r2.readings.first { $0.tag == "dp" }?.quality == .bad(.exception(2)))
        #expect(r2.readings.first { $0.tag == "sp" }?.quality == .good)
    }
}
