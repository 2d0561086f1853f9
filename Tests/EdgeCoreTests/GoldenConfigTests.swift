import EdgeCore
import EdgeRuntime
import EdgeTestSupport
import Foundation
import Testing

/// Every folder under Tests/Fixtures/configs holds an `edged.yaml` and the exact output expected for it:
/// the diagnostics for a broken config, the summary line for a valid one.
@Suite struct GoldenConfigTests {
    static let folders: [String] = {
        let dir = TestPaths.fixtures.appendingPathComponent("configs")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter {
            FileManager.default.fileExists(atPath: dir.appendingPathComponent("\($0)/edged.yaml").path)
        }.sorted()
    }()

    @Test func thereAreEnoughCases() {
        #expect(Self.folders.filter { !$0.hasPrefix("valid") }.count >= 30)
        #expect(Self.folders.contains { $0.hasPrefix("valid") })
    }

    @Test(arguments: folders)
    func matchesExpectedOutput(folder: String) throws {
        let dir = TestPaths.fixtures.appendingPathComponent("configs/\(folder)")
        let expected = try String(contentsOf: dir.appendingPathComponent("expected.txt"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        let loader = ConfigLoader(files: RootedConfigFiles(root: dir, base: DiskConfigFiles()))
        let actual: [String]
        switch loader.load(path: "edged.yaml") {
        case .success(let loaded):
            let w = loaded.warnings.count
            actual =
                loaded.warnings.map(\.description)
                + [
                    "edged.yaml: OK — \(ConfigSummary.line(loaded.config))\(w > 0 ? ", \(w) warning\(w == 1 ? "" : "s")" : "")"
                ]
        case .failure(let error):
            actual = error.diagnostics.map(\.description)
            #expect(!error.errors.isEmpty)
        }
        #expect(actual == expected, "\(folder):\n\(actual.joined(separator: "\n"))")
    }
}
