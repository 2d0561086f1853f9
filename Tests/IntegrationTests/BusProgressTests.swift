import EdgeCore
import EdgeSystem
import EdgeTestSupport
import Foundation
import Logging
import ModbusPoller
import Testing

/// What the watchdog sees of a bus thread: it moves between the transactions of a poll, so a slow device
/// with many requests is not mistaken for a hung thread; a call that does not return stops it, and the
/// verdict names the bus; when the call returns, it moves again.
@Suite struct BusProgressTests {
    /// A link whose reads take `delay`, and block while `held`, as a driver call that never returns would.
    final class ControlledLink: ModbusLink, @unchecked Sendable {
        let gate = NSCondition()
        var held = false
        var blocked = 0
        let delay: TimeSpan
        init(delay: TimeSpan) { self.delay = delay }
        var isConnected: Bool { true }
        func connect() throws(ModbusError) {}
        func close() {}
        func readRegisters(unit: Int, table: RegisterTable, start: Int, count: Int) throws(ModbusError) -> [UInt16] {
            gate.lock()
            while held { blocked += 1; gate.wait(); blocked -= 1 }
            gate.unlock()
            Thread.sleep(forTimeInterval: Double(delay.milliseconds) / 1000)
            return Array(repeating: 0, count: count)
        }
        func readBits(unit: Int, table: RegisterTable, start: Int, count: Int) throws(ModbusError) -> [Bool] {
            Array(repeating: false, count: count)
        }
        func rawExchange(unit: Int, request: [UInt8], describe: String) throws(ModbusError) -> [UInt8] {
            throw ModbusError(.link("no raw path"), bus: "controlled", unit: unit, request: describe)
        }
        func discardPending() {}
        func hold(_ on: Bool) {
            gate.withLock {
                held = on; gate.broadcast()
            }
        }
        var isBlocked: Bool { gate.withLock { blocked > 0 } }
    }

    final class Count: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func add(_: PollReport) { lock.withLock { n += 1 } }
        var value: Int { lock.withLock { n } }
    }

    /// Six registers far apart: six requests per poll, whatever the planner does.
    func poller(_ link: ControlledLink, reports: Count) -> BusPoller {
        let bus = BusConfig(
            name: "pad-lan", kind: .tcp, device: nil, serial: nil, rs485: nil,
            endpoint: TCPEndpoint(host: "127.0.0.1", port: 502, connectTimeout: .seconds(1)),
            interFrameDelay: TimeSpan(milliseconds: 0), responseTimeout: TimeSpan(milliseconds: 800), byteTimeout: nil,
            retries: 0)
        let tags = (0..<6).map {
            TagDefinition(
                name: "t\($0)", table: .holding, address: $0 * 1000, type: .uint16, bit: nil, length: nil, order: nil,
                scale: 1,
                offset: 0, span: nil, units: nil, deadband: nil, integrity: nil, states: nil)
        }
        let device = DevicePoller(
            config: DeviceConfig(
                name: "slow", bus: "pad-lan", unit: 1, template: "t", poll: TimeSpan(milliseconds: 100),
                enabled: true, offlineAfter: 2, maxBackoff: .seconds(2), limitOverrides: nil, tagOverrides: [:]),
            tags: tags, limits: DeviceLimits(), timing: BusTiming.of(bus, turnaround: TimeSpan(milliseconds: 1)))
        return BusPoller(
            bus: bus, devices: [device], logger: Logger(label: "test"),
            makeLink: { () throws(ModbusError) -> any ModbusLink in link }, report: reports.add)
    }

    func verdict(_ p: BusPoller) -> WatchdogVerdict {
        WatchdogVerdict.decide(
            now: SystemClock.monotonicMillis(),
            buses: [
                WatchdogVerdict.Bus(
                    name: p.bus.name, lastProgress: p.lastProgress, allowance: p.progressAllowanceMillis)
            ],
            writerStallMillis: 0, writerLimitMillis: 60_000)
    }

    @Test func theAllowanceCoversOneExchangeOnTheBusIncludingTheWireAtItsSpeed() {
        let radio = BusConfig(
            name: "radio", kind: .rtu, device: "/dev/ttyS2",
            serial: SerialLine(baud: 1200, parity: .none, dataBits: 8, stopBits: 1),
            rs485: nil, endpoint: nil, interFrameDelay: TimeSpan(milliseconds: 200), responseTimeout: .seconds(2),
            byteTimeout: nil, retries: 1)
        let p = BusPoller(
            bus: radio, devices: [], logger: Logger(label: "test"),
            makeLink: { () throws(ModbusError) -> any ModbusLink in MemoryModbusLink() }, report: { _ in })
        // 125 registers at 1200 baud, 10 bits a character: (13 + 250 + 7) characters ≈ 2.25 s on the wire.
        #expect(
            p.progressAllowanceMillis >= 2_000 + 200 + 2_250 && p.progressAllowanceMillis < 2_000 + 200 + 2_400,
            "\(p.progressAllowanceMillis)")
    }

    @Test func aSlowDeviceWithManyRequestsKeepsTheThreadMovingBetweenThem() async throws {
        let link = ControlledLink(delay: TimeSpan(milliseconds: 500))  // 6 × 500 ms: each poll takes 3 s
        let reports = Count()
        let p = poller(link, reports: reports)
        p.start()
        defer { p.stop() }
        var longestStill: Int64 = 0
        #expect(
            await eventually(timeout: 30) {
                longestStill = max(longestStill, SystemClock.monotonicMillis() - p.lastProgress)
                return reports.value >= 3
            })
        // Marked between transactions: still for about one exchange (500 ms), not a whole poll (3 s).
        #expect(longestStill < 1_500, "the thread looked still for \(longestStill) ms")
        #expect(verdict(p) == .ping)
    }

    @Test func aCallThatDoesNotReturnStopsTheThreadAndTheVerdictNamesTheBus() async throws {
        let link = ControlledLink(delay: TimeSpan(milliseconds: 10))
        let reports = Count()
        let p = poller(link, reports: reports)
        p.start()
        defer { p.stop() }
        #expect(await eventually(timeout: 10) { reports.value >= 2 })
        link.hold(true)
        #expect(await eventually(timeout: 10) { link.isBlocked })
        // Past its allowance (connect 1 s + response 800 ms) and the margin, the watchdog would stop pinging.
        #expect(
            await eventually(timeout: 20) {
                if case .busStuck(bus: "pad-lan", _) = verdict(p) { return true } else { return false }
            }, "\(verdict(p))")
        let before = reports.value
        link.hold(false)
        #expect(await eventually(timeout: 10) { verdict(p) == .ping && reports.value > before })
    }
}
