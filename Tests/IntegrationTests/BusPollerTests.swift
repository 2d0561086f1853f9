import EdgeCore
import EdgeSim
import EdgeTestSupport
import Foundation
import Logging
import ModbusPoller
import Testing

/// A bus thread polling several devices on one serial line (a pty pair) served by the simulator.
@Suite(.serialized) struct BusPollerTests {
    final class Recorder: @unchecked Sendable {
        let lock = NSLock()
        var reports: [(device: String, at: Double, report: PollReport)] = []
        func add(_ r: PollReport) { lock.withLock { reports.append((r.device, Date().timeIntervalSince1970, r)) } }
        func times(_ device: String) -> [Double] { lock.withLock { reports.filter { $0.device == device }.map(\.at) } }
        func all(_ device: String) -> [PollReport] {
            lock.withLock { reports.filter { $0.device == device }.map(\.report) }
        }
    }

    func setup(_ pty: PtyPair, interval: TimeSpan, devices: [(String, Int)], tags: [TagDefinition]) -> (
        BusConfig, [DevicePoller]
    ) {
        let bus = BusConfig(
            name: "rs485", kind: .rtu, device: pty.a,
            serial: SerialLine(baud: 38400, parity: .none, dataBits: 8, stopBits: 1),
            rs485: nil, endpoint: nil, interFrameDelay: TimeSpan(milliseconds: 2),
            responseTimeout: TimeSpan(milliseconds: 150),
            byteTimeout: TimeSpan(milliseconds: 50), retries: 0)
        let pollers = devices.map { name, unit in
            DevicePoller(
                config: DeviceConfig(
                    name: name, bus: "rs485", unit: unit, template: "t", poll: interval, enabled: true,
                    offlineAfter: 2, maxBackoff: TimeSpan(milliseconds: 1500), limitOverrides: nil, tagOverrides: [:]),
                tags: tags, limits: DeviceLimits(), timing: BusTiming.of(bus, turnaround: TimeSpan(milliseconds: 1)))
        }
        return (bus, pollers)
    }

    @Test func aDeadDeviceDoesNotPushTheOthersPastTheirIntervals() async throws {
        let pty = try PtyPair()
        let tags = try ExamplePad.load().template(named: "oms-esp-gauge")!.tags
        let sims = [
            SimDevice(name: "a", unit: 1, tags: tags), SimDevice(name: "b", unit: 2, tags: tags),
            SimDevice(name: "dead", unit: 3, tags: tags)
        ]
        sims[2].set(fault: .silent)
        let server = SimServer(transport: .rtu(path: pty.b, baud: 38400), devices: sims)
        try server.start()
        defer { server.stop() }
        let (bus, pollers) = setup(
            pty, interval: TimeSpan(milliseconds: 300), devices: [("a", 1), ("b", 2), ("dead", 3)], tags: tags)
        let rec = Recorder()
        let poller = BusPoller(
            bus: bus, devices: pollers, logger: Logger(label: "test"),
            makeLink: { () throws(ModbusError) -> any ModbusLink in try ModbusLinks.make(for: bus) }, report: rec.add)
        poller.start()
        defer { poller.stop() }
        #expect(await eventually(timeout: 15) { rec.times("a").count >= 16 })
        // The dead device went offline and is probed with backoff.
        let dead = rec.all("dead")
        #expect(dead.contains { $0.transition == .wentOffline(2) })
        #expect(poller.status().first { $0.name == "dead" }?.online == false)
        // Once it is offline (after its first two timeouts), the live devices keep their 300 ms interval.
        for name in ["a", "b"] {
            let t = rec.times(name)
            let gaps = zip(t.dropFirst(4), t.dropFirst(5)).map { $1 - $0 }
            #expect(!gaps.isEmpty)
            // A probe of the dead device can take one response timeout (150 ms) out of a cycle.
            #expect(gaps.allSatisfy { $0 < 0.3 + 0.15 + 0.1 }, "\(name): \(gaps)")
            #expect(rec.all(name).allSatisfy { $0.readings.allSatisfy(\.quality.isGood) })
        }
        #expect(dead.count < rec.times("a").count / 2)
    }

    @Test func aDeviceThatComesBackIsPolledWithinOneBackoffPeriod() async throws {
        let pty = try PtyPair()
        let tags = try ExamplePad.load().template(named: "oms-esp-gauge")!.tags
        let sim = SimDevice(name: "esp", unit: 10, tags: tags)
        sim.set(fault: .silent)
        let server = SimServer(transport: .rtu(path: pty.b, baud: 38400), devices: [sim])
        try server.start()
        defer { server.stop() }
        let (bus, pollers) = setup(pty, interval: TimeSpan(milliseconds: 200), devices: [("esp", 10)], tags: tags)
        let rec = Recorder()
        let poller = BusPoller(
            bus: bus, devices: pollers, logger: Logger(label: "test"),
            makeLink: { () throws(ModbusError) -> any ModbusLink in try ModbusLinks.make(for: bus) }, report: rec.add)
        poller.start()
        defer { poller.stop() }
        #expect(await eventually(timeout: 10) { rec.all("esp").contains { $0.transition == .wentOffline(0) } })
        // Let the backoff grow to its cap (1.5 s), then bring the device back.
        #expect(await eventually(timeout: 10) { rec.all("esp").count >= 5 })
        sim.set(fault: .none)
        let back = Date().timeIntervalSince1970
        #expect(await eventually(timeout: 5) { rec.all("esp").contains { $0.transition == .cameBack(0) } })
        // When the bus thread reported it (not when this test got round to looking): within the backoff cap
        // plus the probe that may have been under way (150 ms) and the thread's own scheduling.
        let cameBack = try #require(
            rec.lock.withLock { rec.reports.first { $0.device == "esp" && $0.report.transition == .cameBack(0) }?.at })
        #expect(cameBack - back < 1.5 + 0.5, "came back \(cameBack - back) s after the device did")
        #expect(
            await eventually(timeout: 5) {
                rec.all("esp").last?.readings.count == tags.count
                    && rec.all("esp").last!.readings.allSatisfy(\.quality.isGood)
            })
        #expect(poller.status()[0].online)
    }
}
