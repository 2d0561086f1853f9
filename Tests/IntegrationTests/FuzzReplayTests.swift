import EdgeTestSupport
import Foundation
import Testing

/// The fuzz targets' seed corpora (and every reproducer a `make fuzz` finding left there) replayed on the
/// normal build: a parser that traps on one of them fails here, without libFuzzer.
@Suite struct FuzzReplayTests {
    @Test(arguments: ["config", "enron", "rtu", "condition", "units", "retry-after", "control"])
    func seedsReplayWithoutAFailure(target: String) async throws {
        let root = TestPaths.root.path
        let inputs: [String] =
            switch target {
            case "config":
                try FileManager.default.contentsOfDirectory(atPath: root + "/Tests/Fixtures/configs").map {
                    root + "/Tests/Fixtures/configs/\($0)/edged.yaml"
                } + [root + "/config/edged.example.yaml"]
            case "control": [root + "/Tests/Fixtures/control"]
            default: [root + "/Tests/Fixtures/fuzz/\(target)"]
            }
        let r = try await runTool(TestPaths.product("edgefuzz"), [target] + inputs, timeout: 120)
        #expect(r.status == 0 && r.output.contains("none failed"), "\(r.output)")
        #expect(!r.output.contains(" 0 inputs"), "\(r.output)")
    }
}
