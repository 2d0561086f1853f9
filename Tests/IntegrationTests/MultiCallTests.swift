import EdgeTestSupport
import Foundation
import Testing

/// The package ships one binary: /usr/bin/edgectl is a link to edged, which runs as edgectl when invoked under
/// that name. Through such a link, edged must answer exactly as the edgectl executable does.
@Suite struct MultiCallTests {
    @Test func edgedInvokedAsEdgectlIsEdgectl() async throws {
        let dir = TempDir("edged-multicall")
        let link = dir.file("edgectl")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: TestPaths.product("edged"))
        let example = TestPaths.config.appendingPathComponent("edged.example.yaml").path
        for arguments in [["--version"], ["--help"], ["config", "validate", example]] {
            let viaLink = try await runTool(link, arguments, timeout: 30)
            let edgectl = try await runTool(TestPaths.product("edgectl"), arguments, timeout: 30)
            #expect(viaLink.status == 0, "edgectl \(arguments): \(viaLink.output)")
            #expect(viaLink.status == edgectl.status && viaLink.output == edgectl.output, "edgectl \(arguments)")
        }
        let help = try await runTool(link, ["--help"], timeout: 30)
        #expect(help.output.contains("USAGE: edgectl <subcommand>"), "\(help.output)")

        // Under its own name it is still the daemon, and runs: a configuration it cannot read is EX_CONFIG.
        let edged = TestPaths.product("edged")
        let daemon = try await runTool(edged, ["--help"], timeout: 30)
        #expect(
            daemon.output.contains("USAGE: edged ") && daemon.output.contains("--control-socket"), "\(daemon.output)")
        let missing = try await runTool(edged, ["--config", dir.file("none.yaml")], timeout: 30)
        #expect(missing.status == 78, "\(missing.output)")
    }
}
