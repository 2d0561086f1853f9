import EdgeTestSupport
import Foundation
import Testing

/// `edgectl config set`: a field tech can never save a configuration edged would refuse.
@Suite struct ConfigSetTests {
    @Test func validChangesAreSavedAtomicallyAndInvalidOnesNever() async throws {
        let dir = TempDir()
        try FileManager.default.copyItem(
            at: TestPaths.config.appendingPathComponent("templates"), to: dir.url.appendingPathComponent("templates"))
        let path = dir.file("edged.yaml")
        let original = try String(
            contentsOf: TestPaths.config.appendingPathComponent("edged.example.yaml"), encoding: .utf8)
        try original.write(toFile: path, atomically: true, encoding: .utf8)
        let edgectl = TestPaths.product("edgectl")
        let socket = dir.file("nobody.sock")

        let bad = try await runTool(
            edgectl, ["config", "set", "devices.rpc-2.unit", "250", "--config", path, "--socket", socket])
        #expect(bad.status == 1)
        #expect(bad.output.contains("devices[1].unit: 250 is out of range 1...247"), "\(bad.output)")
        #expect(bad.output.contains("not saved"))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == original)
        #expect(!FileManager.default.fileExists(atPath: path + ".bak"))

        let good = try await runTool(
            edgectl, ["config", "set", "devices.rpc-2.poll", "15s", "--config", path, "--socket", socket])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.contains("edged is not reachable"))
        let saved = try String(contentsOfFile: path, encoding: .utf8)
        #expect(saved.contains("{name: rpc-2, bus: rs485-wells, unit: 2, template: rod-pump-controller, poll: 15s}"))
        #expect(try String(contentsOfFile: path + ".bak", encoding: .utf8) == original)
        let check = try await runTool(edgectl, ["config", "validate", path])
        #expect(check.status == 0)
    }
}
