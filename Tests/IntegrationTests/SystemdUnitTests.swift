import EdgeTestSupport
import Foundation
import Testing

/// The shipped unit: `systemd-analyze verify` clean and an exposure of 2.0 or lower.
@Suite struct SystemdUnitTests {
    @Test func unitVerifiesAndIsHardened() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else {
            Issue.record("systemd-analyze is not installed")
            return
        }
        let dir = TempDir()
        let unit = try String(
            contentsOf: TestPaths.root.appendingPathComponent("systemd/edged.service"), encoding: .utf8)
        #expect(
            unit.contains("Type=notify") && unit.contains("WatchdogSec=") && unit.contains("LoadCredential=edged-token")
        )
        // verify checks that ExecStart exists: point it at the binary this build made.
        let path = dir.file("edged.service")
        try unit.replacingOccurrences(of: "/usr/bin/edged", with: TestPaths.product("edged")).write(
            toFile: path, atomically: true, encoding: .utf8)
        let verify = try await runTool("/usr/bin/systemd-analyze", ["verify", path])
        #expect(verify.status == 0 && verify.output.isEmpty, "\(verify.output)")
        let security = try await runTool("/usr/bin/systemd-analyze", ["security", "--offline=true", "--no-pager", path])
        let line = security.output.split(separator: "\n").last { $0.contains("Overall exposure level") } ?? ""
        let score = line.split(separator: " ").compactMap { Double($0) }.first
        #expect(score != nil && score! <= 2.0, "\(line)")
        // edged asks the kernel whether the clock is synchronized (adjtimex, read-only): the unit's
        // filters must let the call through, or every reading would be flagged (ProtectClock= denies it;
        // @system-service does not include it).
        let filters = unit.split(separator: "\n").filter {
            $0.hasPrefix("SystemCallFilter=") || $0.hasPrefix("ProtectClock=")
        }
        #expect(
            !filters.contains { $0 == "ProtectClock=yes" } && filters.last == "SystemCallFilter=adjtimex", "\(filters)")
    }
}
