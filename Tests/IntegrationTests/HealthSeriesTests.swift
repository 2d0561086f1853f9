import EdgeTestSupport
import Foundation
import Testing

/// The gateway's own health reaches the platform as readings of the device named after the gateway, through
/// the buffer and the uplink: edged as a process, edgesim, the reference receiver.
@Suite(.serialized) struct HealthSeriesTests {
    @Test func theGatewaysHealthArrivesAsReadingsOfItsOwnDevice() async throws {
        let pad = try PadFixture(gatewaySettings: "healthInterval: 10s")
        try await pad.startReceiver()
        try await pad.startSimulator()
        let edged = try pad.startEdged()
        defer { edged.terminate() }
        func health() async -> [String: Any] {
            var out: [String: Any] = [:]
            for r in (try? await pad.storedRecords()) ?? [] where r["device"] as? String == "pad-gw" {
                if let tag = r["tag"] as? String { out[tag] = r["v"] }
            }
            return out
        }
        // The first sample goes at 10 s; its success rate needs an upload attempt before it (batches every 1 s).
        let wanted = [
            "uplink_success_rate", "uplink_round_trip", "backlog_records", "buffer_bytes", "buffer_used",
            "data_used_month", "memory_own", "cpu", "disk_free", "clock_synchronized", "uptime", "version",
            "device_rpc_1_response_rate", "device_rpc_1_latency", "device_efm_1_response_rate",
            "bus_pad_lan_utilisation"
        ]
        var seen: [String: Any] = [:]
        let arrived = await eventually(timeout: 60, poll: .milliseconds(500)) {
            seen = await health()
            return wanted.allSatisfy { seen[$0] != nil }
        }
        #expect(arrived, "missing \(wanted.filter { seen[$0] == nil }); got \(seen.keys.sorted())")
        #expect((seen["device_rpc_1_response_rate"] as? NSNumber)?.doubleValue == 100, "\(seen)")
        #expect((seen["uplink_success_rate"] as? NSNumber)?.doubleValue == 100, "\(seen)")
        #expect(((seen["memory_own"] as? NSNumber)?.doubleValue ?? 0) > 1_048_576)
        #expect(((seen["buffer_used"] as? NSNumber)?.doubleValue ?? -1) >= 0)
        #expect((seen["version"] as? String)?.isEmpty == false)
        // On site: the latest sample under the gateway's id.
        let tail = try await runTool(
            TestPaths.product("edgectl"), ["tail", "--device", "pad-gw", "--once", "--socket", pad.controlSocket],
            timeout: 15)
        #expect(tail.status == 0 && tail.output.contains("pad-gw.uplink_success_rate"), "\(tail.output)")
        #expect(tail.output.contains("pad-gw.memory_own") && tail.output.contains(" B "), "\(tail.output)")
    }
}
