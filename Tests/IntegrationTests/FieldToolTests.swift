import EdgeCore
import EdgeSim
import EdgeTestSupport
import Foundation
import Testing

/// edgectl's field tools and edgesim, as processes, the way a field tech runs them.
@Suite(.serialized) struct FieldToolTests {
    @Test func probeScanAndPollAgainstTheSimulator() async throws {
        let dir = TempDir()
        let port = try freeTCPPort()
        let control = dir.file("sim.sock")
        let profile = dir.file("profile.yaml")
        try """
        devices:
          efm-1:
            static_pressure: {constant: 812.5}
            flow_rate: {constant: 1234.25}
          tanks:
            tank1_total_height: {constant: 150.2}
        """.write(toFile: profile, atomically: true, encoding: .utf8)
        // The demo pad, with its TCP bus moved to a free port.
        let config = dir.file("edged.yaml")
        let demo = try String(contentsOf: TestPaths.config.appendingPathComponent("demo.yaml"), encoding: .utf8)
        try demo.replacingOccurrences(of: "port: 15020", with: "port: \(port)").write(
            toFile: config, atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(
            at: TestPaths.config.appendingPathComponent("templates"), to: dir.url.appendingPathComponent("templates"))

        let sim = try ChildProcess(
            TestPaths.product("edgesim"), ["--config", config, "--profile", profile, "--control", control],
            output: dir.file("sim.log"))
        defer { sim.terminate() }
        #expect(await eventually(timeout: 20) { FileManager.default.fileExists(atPath: control) })

        // probe: float32 at the flow computer's static pressure (wire 8012), decoded.
        let probe = try await runTool(
            TestPaths.product("edgectl"),
            [
                "probe", "--tcp", "127.0.0.1:\(port)", "--unit", "20", "--address", "8012",
                "--count", "2", "--type", "float32", "--json"
            ])
        #expect(probe.status == 0, "\(probe.output)")
        #expect(probe.output.contains("\"decoded\":[\"812.5\"]"), "\(probe.output)")

        // scan: the three TCP devices answer, nothing else does.
        let scan = try await runTool(
            TestPaths.product("edgectl"), ["scan", "--tcp", "127.0.0.1:\(port)", "--units", "1-40"])
        #expect(scan.output.contains("3 of 40 unit ids answered"), "\(scan.output)")

        // poll: through the template, with units and quality.
        let poll = try await runTool(TestPaths.product("edgectl"), ["poll", "--config", config, "--device", "efm-1"])
        #expect(poll.status == 0)
        let line = poll.output.split(separator: "\n").first { $0.hasPrefix("flow_rate") }
        #expect(
            line?.contains("1234.25") == true && line?.contains("MCF/d") == true && line?.hasSuffix("good") == true,
            "\(poll.output)")

        // A fault injected through the control socket shows up as bad quality, exit 2, and a clear message.
        let ctl = SimControlClient(path: control)
        #expect(try ctl.send("fault efm-1 silent").hasPrefix("ok"))
        let dead = try await runTool(TestPaths.product("edgectl"), ["poll", "--config", config, "--device", "efm-1"])
        #expect(dead.status == 2)
        #expect(
            dead.output.contains("efm-1 (unit 20 on pad-lan): no response to read holding 8000..8021 within 500ms"),
            "\(dead.output)")
    }
}

/// Sends one line to a simulator's control socket and returns the reply line.
struct SimControlClient {
    let path: String
    func send(_ line: String) throws -> String {
        let fd = try unixConnect(path)
        defer { close(fd) }
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var reply = [UInt8]()
        var c: UInt8 = 0
        while read(fd, &c, 1) == 1 && c != 10 { reply.append(c) }
        return String(decoding: reply, as: UTF8.self)
    }
}
