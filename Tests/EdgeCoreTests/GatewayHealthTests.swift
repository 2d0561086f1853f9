import EdgeCore
import Testing

/// The gateway's own health as readings: names, units, rates over an interval, and what is left out.
@Suite struct GatewayHealthTests {
    @Test func aSampleBecomesReadingsOfTheGatewayDevice() {
        var h = GatewayHealth()
        h.uplinkAttempts = 8
        h.uplinkStored = 6
        h.uplinkRoundTripMillis = 240
        h.backlogRecords = 1200
        h.oldestReadingAgeSeconds = 75
        h.bufferBytes = 3 << 20
        h.bufferBudgetBytes = 64 << 20
        h.dataUsedMonthBytes = 1_500_000
        h.ownMemoryBytes = 9 << 20
        h.cpuPercent = 1.234
        h.diskFreeBytes = nil
        h.clockSynchronized = true
        h.uptimeSeconds = 3600
        h.version = "0.4.2"
        h.devices = [GatewayHealth.Device(name: "rpc-1", responseRate: 97.5, latencyMillis: 41.26)]
        h.buses = [GatewayHealth.Bus(name: "pad-lan", utilisation: 12.34)]
        let readings = h.readings(device: "gw-1", wallMillis: 1000, monotonicNanos: 5, clockSynchronized: true)
        let byTag = Dictionary(uniqueKeysWithValues: readings.map { ($0.tag, $0.value) })
        #expect(byTag["uplink_success_rate"] == .number(75))
        #expect(byTag["buffer_used"] == .number(4.7))
        #expect(byTag["cpu"] == .number(1.2))
        #expect(byTag["device_rpc_1_response_rate"] == .number(97.5))
        #expect(byTag["device_rpc_1_latency"] == .number(41.3))
        #expect(byTag["bus_pad_lan_utilisation"] == .number(12.3))
        #expect(byTag["version"] == .text("0.4.2"))
        #expect(byTag["disk_free"] == nil, "a figure the box did not give is left out, not sent as 0")
        #expect(readings.allSatisfy { $0.device == "gw-1" && $0.quality == .good && $0.wallMillis == 1000 })
        // Every reading has a tag of the series, with a valid name.
        let tags = GatewayHealth.tags(devices: ["rpc-1"], buses: ["pad-lan"])
        let names = Set(tags.map(\.name))
        #expect(readings.allSatisfy { names.contains($0.tag) })
        #expect(tags.allSatisfy { NameRules.isValid($0.name, identifier: true) })
        #expect(tags.first { $0.name == "uplink_round_trip" }?.units == "ms")
        // No upload attempt in the interval: no success rate (not 0 %).
        h.uplinkAttempts = 0
        #expect(
            !h.readings(device: "gw-1", wallMillis: 0, monotonicNanos: 0, clockSynchronized: true).contains {
                $0.tag == "uplink_success_rate"
            })
    }

    @Test func responseRateAndLatencyAreOverTheInterval() {
        var a = DeviceCounters()
        a.requests = 100; a.responses = 90; a.latencyTotalMicros = 900_000
        var b = a
        b.requests = 110; b.responses = 98; b.timeouts = 2; b.latencyTotalMicros = 900_000 + 8 * 25_000
        let d = GatewayHealth.device("rpc-1", from: a, to: b)
        #expect(d.responseRate == 80)
        #expect(d.latencyMillis == 25)
        #expect(GatewayHealth.device("rpc-1", from: b, to: b).responseRate == nil, "no request: no rate")
    }
}
