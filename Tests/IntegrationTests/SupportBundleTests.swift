import EdgeTestSupport
import Foundation
import Testing

/// `edgectl support-bundle` against a running edged: the files a support engineer needs, and nothing that
/// could hold the token or a key, even where a careless edit left them in a bundled file.
@Suite(.serialized) struct SupportBundleTests {
    @Test func theBundleHoldsTheStateAndNoSecret() async throws {
        let pad = try PadFixture()
        try await pad.startReceiver()
        try await pad.startSimulator()
        let edged = try pad.startEdged()
        defer { edged.terminate() }
        let token = try String(contentsOfFile: pad.dir.file("token"), encoding: .utf8)
        // A template with the token pasted in a comment and a private key below it.
        let key = try String(contentsOfFile: pad.dir.file("pki/server.key"), encoding: .utf8)
        try "# token was \(token)\n# \(key.replacingOccurrences(of: "\n", with: "\n# "))\nname: scratch\n".write(
            toFile: pad.dir.file("templates/scratch.yaml"), atomically: true, encoding: .utf8)
        #expect(await eventually(timeout: 30) { (try? await pad.receiverCounts().stored) ?? 0 > 0 })

        let bundle = pad.dir.file("bundle.tar.gz")
        let r = try await runTool(
            TestPaths.product("edgectl"),
            ["support-bundle", "--config", pad.configPath, "--socket", pad.controlSocket, "-o", bundle], timeout: 60)
        #expect(r.status == 0, "\(r.output)")
        let out = pad.dir.file("unpacked")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        #expect(try await runTool("/usr/bin/tar", ["-xzf", bundle, "-C", out]).status == 0)
        let top = try #require(try FileManager.default.contentsOfDirectory(atPath: out).first)
        let root = (out as NSString).appendingPathComponent(top)
        let files = try #require(FileManager.default.enumerator(atPath: root)?.allObjects as? [String])
        for wanted in [
            "MANIFEST.txt", "config/edged.yaml", "config/templates/scanner-2000.yaml", "state/status.json",
            "state/devices.json", "state/buffer.json", "state/uplink.json", "state/alarms.json", "plan.txt",
            "journal.txt", "versions.txt"
        ] {
            #expect(files.contains(wanted), "\(wanted) missing from \(files.sorted())")
        }
        let status = try String(contentsOfFile: root + "/state/status.json", encoding: .utf8)
        #expect(status.contains("\"gateway\":\"pad-gw\""), "\(status)")
        #expect(try String(contentsOfFile: root + "/plan.txt", encoding: .utf8).contains("rpc-1 on pad-lan"))
        let keyBody = key.split(separator: "\n").dropFirst().first.map(String.init) ?? "?"
        for f in files {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root + "/" + f, isDirectory: &isDir), !isDir.boolValue
            else { continue }
            let text = try String(contentsOfFile: root + "/" + f, encoding: .utf8)
            #expect(!text.contains(token.trimmingCharacters(in: .whitespacesAndNewlines)), "\(f) holds the token")
            #expect(!text.contains(keyBody), "\(f) holds the private key")
        }
        #expect(try String(contentsOfFile: root + "/MANIFEST.txt", encoding: .utf8).contains("scratch.yaml"))
        #expect(!files.contains { $0.hasSuffix(".key") || $0.hasSuffix(".db") || $0 == "token" })
    }
}
