import EdgeTestSupport
import Foundation
import Testing

/// `edgectl plan` on the example pad: a flow computer's EFM section, in text and JSON, and no such section for
/// a device that collects none.
@Suite struct PlanCommandTests {
    static let config = TestPaths.config.appendingPathComponent("edged.example.yaml").path

    @Test func aFlowComputerShowsItsHistoryBusTime() async throws {
        let edgectl = TestPaths.product("edgectl")
        let text = try await runTool(edgectl, ["plan", "--config", Self.config, "--device", "efm-1"])
        #expect(text.status == 0, "\(text.output)")
        // 9600 baud, 100 ms inter-frame delay, 20 ms turnaround: 0.12 s + (7 + 13 + 72) characters of 1/960 s.
        #expect(text.output.contains("hourly record 215.8 ms"), "\(text.output)")
        #expect(text.output.contains("caught up: 17.8 s of bus time per hour (0.50 % of the bus)"))
        #expect(text.output.contains("backfill of 35 days (840 hourly + 35 daily records): about "))
        #expect(text.output.contains("at 9600 baud beside 18.7 % live load"))

        let json = try await runTool(edgectl, ["plan", "--config", Self.config, "--device", "efm-1", "--json"])
        let plans = try #require(
            try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]], "\(json.output)")
        let efm = try #require(plans.first?["efm"] as? [String: Any])
        let perRequest = try #require(efm["requestSeconds"] as? [String: Double])
        #expect(abs((perRequest["hourlyRecord"] ?? 0) - 0.215_833) < 1e-5)
        let backfill = try #require(efm["backfill"] as? [String: Any])
        #expect(backfill["hourlyRecords"] as? Int == 840 && backfill["dailyRecords"] as? Int == 35)
        #expect((backfill["seconds"] as? Double ?? 0) > 0)

        let rpc = try await runTool(edgectl, ["plan", "--config", Self.config, "--device", "rpc-1", "--json"])
        #expect(rpc.status == 0)
        #expect(!rpc.output.contains("efm"), "a device without EFM has no efm object")
    }
}
