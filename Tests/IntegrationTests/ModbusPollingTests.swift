import EdgeCore
import EdgeSim
import EdgeTestSupport
import Foundation
import Logging
import ModbusPoller
import Testing

/// The poller against libmodbus serving simulated devices: over loopback TCP, over a pty pair, and RTU over
/// TCP through a socat device server.
@Suite(.serialized) struct ModbusPollingTests {
    let pad: EdgeConfig
    init() throws { pad = try ExamplePad.load() }

    func tags(_ template: String) -> [TagDefinition] { pad.template(named: template)!.tags }

    /// Constant values for every numeric tag, chosen to exercise sign, scale and word order.
    /// `factor` makes another device's values (2: every number doubled, bits following their words).
    func fixedSignals(_ tags: [TagDefinition], factor: Double = 1) -> [String: SimSignal] {
        var out: [String: SimSignal] = [:]
        for (i, t) in tags.enumerated() {
            switch t.type {
            case .bool, .bit: out[t.name] = .constant(Double(i % 2))
            case .int16, .int32, .int64: out[t.name] = .constant((-Double(i * 3) * t.scale - 1 * t.scale) * factor)
            case .float32, .float64: out[t.name] = .constant((100.25 + Double(i)) * factor)
            default: out[t.name] = .constant(Double(i * 7 + 1) * t.scale * factor)
            }
        }
        // A bit tag shares its register with any whole-word tag at that address: keep them consistent.
        for t in tags where t.type == .bit {
            if let word = tags.first(where: { $0.address == t.address && $0.table == t.table && $0.type == .uint16 }),
                case .constant(let v)? = out[word.name]
            {
                out[t.name] = .constant(Double((Int(v) >> (t.bit ?? 0)) & 1))
            }
        }
        return out
    }

    /// A Modbus TCP bus named `lan` to a simulator on loopback.
    func loopbackBus(port: Int) -> BusConfig {
        BusConfig(
            name: "lan", kind: .tcp, device: nil, serial: nil, rs485: nil,
            endpoint: TCPEndpoint(host: "127.0.0.1", port: port, connectTimeout: .seconds(2)),
            interFrameDelay: TimeSpan(milliseconds: 0), responseTimeout: .seconds(1), byteTimeout: nil, retries: 0)
    }

    func device(_ name: String, unit: Int, template: String, bus: String, poll: TimeSpan = .seconds(1)) -> DeviceConfig
    {
        DeviceConfig(
            name: name, bus: bus, unit: unit, template: template, poll: poll, enabled: true, offlineAfter: 2,
            maxBackoff: .seconds(2), limitOverrides: nil, tagOverrides: [:])
    }

    func expectReadings(_ readings: [Reading], match signals: [String: SimSignal], tags: [TagDefinition]) {
        #expect(readings.count == tags.count)
        for r in readings {
            let tag = tags.first { $0.name == r.tag }!
            #expect(r.quality == .good, "\(r.tag): \(r.quality)")
            let want = signals[r.tag]!.value(at: 0)
            let got = r.value?.number ?? .nan
            let tolerance = tag.type == .float32 ? 1e-4 : 1e-9
            #expect(abs(got - want) <= tolerance * max(1, abs(want)), "\(r.tag): got \(got), want \(want)")
        }
    }

    @Test func pollsEveryTagOverLoopbackTCP() async throws {
        let rpcTags = tags("rod-pump-controller"), tankTags = tags("pneumercator-tms-4"), efmTags = tags("scanner-2000")
        let s1 = fixedSignals(rpcTags), s2 = fixedSignals(tankTags), s3 = fixedSignals(efmTags)
        let server = SimServer(
            transport: .tcp(host: "127.0.0.1", port: 0),
            devices: [
                SimDevice(name: "rpc", unit: 1, tags: rpcTags, signals: s1),
                SimDevice(name: "tanks", unit: 30, tags: tankTags, signals: s2),
                SimDevice(name: "efm", unit: 20, tags: efmTags, signals: s3)
            ])
        try server.start()
        defer { server.stop() }
        let bus = loopbackBus(port: server.port)
        let link = try ModbusLinks.make(for: bus)
        for (unit, template, signals) in [
            (1, "rod-pump-controller", s1), (30, "pneumercator-tms-4", s2), (20, "scanner-2000", s3)
        ] {
            let t = tags(template)
            var poller = DevicePoller(
                config: device("d\(unit)", unit: unit, template: template, bus: "lan"), tags: t,
                limits: pad.template(named: template)!.limits,
                timing: BusTiming.of(bus, turnaround: TimeSpan(milliseconds: 1)))
            let outcome = poller.poll(over: link, bus: bus)
            #expect(outcome.answered && outcome.errors.isEmpty, "\(outcome.errors)")
            expectReadings(outcome.readings, match: signals, tags: t)
            #expect(poller.counters.requests == poller.plan.requests.count)
        }
    }

    /// Two devices on one TCP bus answer different values; a third is configured at unit 248, which
    /// libmodbus cannot address on TCP (it refuses the unit and keeps the previous one). Every reading
    /// carries its own device's value, and the unaddressable device gets an error naming the cause and no
    /// value — before the fix, unit 248 was stored with the answers of the device polled before it.
    @Test func everyReadingCarriesItsOwnDevicesValueAcrossAFailedUnitSwitch() async throws {
        let t = tags("rod-pump-controller")
        let a = fixedSignals(t), b = fixedSignals(t, factor: 2)
        #expect(t.contains { a[$0.name]?.value(at: 0) != b[$0.name]?.value(at: 0) })
        let server = SimServer(
            transport: .tcp(host: "127.0.0.1", port: 0),
            devices: [
                SimDevice(name: "a", unit: 247, tags: t, signals: a),
                SimDevice(name: "b", unit: 1, tags: t, signals: b)
            ])
        try server.start()
        defer { server.stop() }
        let bus = loopbackBus(port: server.port)
        let link = try ModbusLinks.make(for: bus)
        let limits = pad.template(named: "rod-pump-controller")!.limits
        func poller(_ unit: Int) -> DevicePoller {
            DevicePoller(
                config: device("u\(unit)", unit: unit, template: "rod-pump-controller", bus: "lan"), tags: t,
                limits: limits, timing: BusTiming.of(bus, turnaround: TimeSpan(milliseconds: 1)))
        }
        var p247 = poller(247), p248 = poller(248), p1 = poller(1)
        for _ in 0..<3 {
            let first = p247.poll(over: link, bus: bus)
            #expect(first.errors.isEmpty, "\(first.errors)")
            expectReadings(first.readings, match: a, tags: t)

            let refused = p248.poll(over: link, bus: bus)
            #expect(!refused.answered)
            #expect(
                !refused.errors.isEmpty
                    && refused.errors.allSatisfy { "\($0)".contains("cannot be addressed on a Modbus TCP bus") },
                "\(refused.errors)")
            #expect(
                refused.readings.allSatisfy { $0.quality != .good && $0.value == nil },
                "unit 248 got values: \(refused.readings.filter { $0.value != nil }.map(\.tag))")

            let second = p1.poll(over: link, bus: bus)
            #expect(second.errors.isEmpty, "\(second.errors)")
            expectReadings(second.readings, match: b, tags: t)
        }
    }

    @Test func pollsOverASerialPtyPair() async throws {
        let pty = try PtyPair()
        let rpcTags = tags("rod-pump-controller"), espTags = tags("oms-esp-gauge")
        let s1 = fixedSignals(rpcTags), s2 = fixedSignals(espTags)
        let server = SimServer(
            transport: .rtu(path: pty.b, baud: 19200),
            devices: [
                SimDevice(name: "rpc", unit: 1, tags: rpcTags, signals: s1),
                SimDevice(name: "esp", unit: 10, tags: espTags, signals: s2)
            ])
        try server.start()
        defer { server.stop() }
        let bus = BusConfig(
            name: "rs485", kind: .rtu, device: pty.a,
            serial: SerialLine(baud: 19200, parity: .none, dataBits: 8, stopBits: 1),
            rs485: RS485Settings(
                rtsOnSend: true, rtsAfterSend: false, delayBeforeSend: TimeSpan(milliseconds: 0),
                delayAfterSend: TimeSpan(milliseconds: 0)),
            endpoint: nil, interFrameDelay: TimeSpan(milliseconds: 5), responseTimeout: .seconds(1),
            byteTimeout: TimeSpan(milliseconds: 100), retries: 0)
        let link = try ModbusLinks.make(for: bus)
        for (unit, template, signals) in [(1, "rod-pump-controller", s1), (10, "oms-esp-gauge", s2)] {
            let t = tags(template)
            var poller = DevicePoller(
                config: device("d\(unit)", unit: unit, template: template, bus: "rs485"), tags: t,
                limits: pad.template(named: template)!.limits,
                timing: BusTiming.of(bus, turnaround: TimeSpan(milliseconds: 1)))
            let outcome = poller.poll(over: link, bus: bus)
            #expect(outcome.answered && outcome.errors.isEmpty, "\(outcome.errors)")
            expectReadings(outcome.readings, match: signals, tags: t)
        }
        // A pty has no RS-485 driver: the link notes the fallback instead of failing.
        #expect((link as? LibmodbusLink)?.takeRS485Note()?.contains("RS-485 mode not available") == true)
    }

    @Test func pollsRTUOverTCPThroughADeviceServer() async throws {
        let nport = try SerialDeviceServer()
        let efmTags = tags("scanner-2000")
        let signals = fixedSignals(efmTags)
        let server = SimServer(
            transport: .rtu(path: nport.pty, baud: 9600),
            devices: [SimDevice(name: "efm", unit: 20, tags: efmTags, signals: signals)])
        try server.start()
        defer { server.stop() }
        let bus = BusConfig(
            name: "nport", kind: .rtuOverTCP, device: nil,
            serial: SerialLine(baud: 9600, parity: .none, dataBits: 8, stopBits: 1),
            rs485: nil, endpoint: TCPEndpoint(host: "127.0.0.1", port: nport.port, connectTimeout: .seconds(2)),
            interFrameDelay: TimeSpan(milliseconds: 5), responseTimeout: .seconds(1),
            byteTimeout: TimeSpan(milliseconds: 200), retries: 0)
        let link = try ModbusLinks.make(for: bus)
        var poller = DevicePoller(
            config: device("efm", unit: 20, template: "scanner-2000", bus: "nport"), tags: efmTags,
            limits: pad.template(named: "scanner-2000")!.limits,
            timing: BusTiming.of(bus, turnaround: TimeSpan(milliseconds: 1)))
        // socat accepts the TCP connection only after the first connect; retry until it is listening.
        var outcome = poller.poll(over: link, bus: bus)
        _ = await eventually(timeout: 5) {
            if outcome.answered { return true }
            outcome = poller.poll(over: link, bus: bus)
            return outcome.answered
        }
        #expect(outcome.errors.isEmpty, "\(outcome.errors)")
        expectReadings(outcome.readings, match: signals, tags: efmTags)
        // An exception and an unknown unit come back as typed errors, not crashes.
        server.device(unit: 20)!.set(fault: .exception(4))
        let bad = poller.poll(over: link, bus: bus)
        #expect(bad.answered)
        #expect(bad.readings.allSatisfy { $0.quality == .bad(.exception(4)) })
        #expect(
            bad.errors.first?.description.contains(
                "efm (unit 20 on nport): exception 04 (server device failure) to read holding 8000..8021") == true)
    }

    @Test func splitsAGroupedReadRefusedWithException02() async throws {
        // The device has a hole at 40104..40105 that the template does not declare: the planner reads
        // through it, the device refuses, the poller narrows the read down and remembers.
        var rpcTags = tags("rod-pump-controller").filter { $0.table == .holding }
        rpcTags.removeAll { $0.name == "peak_load" || $0.name == "min_load" }
        let signals = fixedSignals(rpcTags)
        let server = SimServer(
            transport: .tcp(host: "127.0.0.1", port: 0),
            devices: [
                SimDevice(
                    name: "rpc", unit: 1, tags: rpcTags,
                    neverRead: [AddressRange(table: .holding, first: 103, last: 104)], signals: signals)
            ])
        try server.start()
        defer { server.stop() }
        let bus = loopbackBus(port: server.port)
        let link = try ModbusLinks.make(for: bus)
        var poller = DevicePoller(
            config: device("rpc", unit: 1, template: "rod-pump-controller", bus: "lan"), tags: rpcTags,
            limits: DeviceLimits(maxRegisters: 125, maxGap: 8),
            timing: BusTiming.of(bus, turnaround: TimeSpan(milliseconds: 1)))
        #expect(poller.plan.requests.count == 1)
        let first = poller.poll(over: link, bus: bus)
        expectReadings(first.readings, match: signals, tags: rpcTags)
        #expect(first.errors.count == 1)
        #expect(poller.plan.requests.count == 2)
        #expect(
            poller.plan.adjustments.first?.contains("refused with exception 02: split into 100..102 and 105..111")
                == true, "\(poller.plan.adjustments)")
        let second = poller.poll(over: link, bus: bus)
        #expect(second.errors.isEmpty)
        expectReadings(second.readings, match: signals, tags: rpcTags)
    }

    @Test func garbageAndWrongUnitAreCountedNotFatal() async throws {
        let pty = try PtyPair()
        let espTags = tags("oms-esp-gauge")
        let sim = SimDevice(name: "esp", unit: 10, tags: espTags, signals: fixedSignals(espTags))
        let server = SimServer(transport: .rtu(path: pty.b, baud: 19200), devices: [sim])
        try server.start()
        defer { server.stop() }
        let bus = BusConfig(
            name: "rs485", kind: .rtu, device: pty.a,
            serial: SerialLine(baud: 19200, parity: .none, dataBits: 8, stopBits: 1),
            rs485: nil, endpoint: nil, interFrameDelay: TimeSpan(milliseconds: 5),
            responseTimeout: TimeSpan(milliseconds: 300),
            byteTimeout: TimeSpan(milliseconds: 50), retries: 1)
        let link = try ModbusLinks.make(for: bus)
        var poller = DevicePoller(
            config: device("esp", unit: 10, template: "oms-esp-gauge", bus: "rs485"), tags: espTags,
            limits: pad.template(named: "oms-esp-gauge")!.limits,
            timing: BusTiming.of(bus, turnaround: TimeSpan(milliseconds: 1)))
        for fault in [SimFault.garbage, .wrongUnit] {
            sim.set(fault: fault)
            let o = poller.poll(over: link, bus: bus)
            #expect(!o.answered, "\(fault)")
            #expect(o.readings.allSatisfy { !$0.quality.isGood }, "\(fault)")
            #expect(!o.errors.isEmpty)
        }
        #expect(poller.counters.framingErrors + poller.counters.timeouts >= 2)
        sim.set(fault: .none)
        // After garbage, the line recovers for the next transaction.
        let ok = poller.poll(over: link, bus: bus)
        #expect(ok.answered && ok.errors.isEmpty, "\(ok.errors)")
    }
}
