import EdgeCore
import EdgeRuntime
import EdgeTestSupport
import Foundation
import Testing

@Suite struct ConfigLoaderTests {
    func load(_ text: String, files: [String: String] = [:], modes: [String: UInt32] = [:]) -> Result<
        LoadedConfig, ConfigError
    > {
        ConfigLoader(files: MemoryConfigFiles(files, modes: modes)).load(text: text, path: "edged.yaml")
    }

    @Test func shippedExampleIsValidAndComplete() throws {
        let path = TestPaths.config.appendingPathComponent("edged.example.yaml").path
        let loaded = try ConfigLoader(files: DiskConfigFiles()).load(path: path).get()
        let c = loaded.config
        #expect(loaded.warnings.isEmpty, "\(loaded.warnings)")
        #expect(c.devices.filter { $0.template == "rod-pump-controller" }.count == 4)
        #expect(c.buses.map(\.kind) == [.rtu, .rtu, .tcp])
        #expect(c.alarms.contains { $0.kind == .commLoss } && c.alarms.contains { $0.kind == .rate })
        // Modicon 40107 is wire address 106 in the holding table.
        let tubing = c.effectiveTags(of: c.device(named: "rpc-1")!).first { $0.name == "tubing_pressure" }!
        #expect(tubing.table == .holding && tubing.address == 106)
        // The per-device span override replaced the template's range.
        let level = c.effectiveTags(of: c.device(named: "water-tank-level")!)[0]
        #expect(level.span?.engHigh == 288)
        // rpc-4's firmware limit narrows the template's.
        #expect(c.effectiveLimits(of: c.device(named: "rpc-4")!).maxRegisters == 16)
        // The state alarm resolved its state name to the value the device sends.
        #expect(c.alarms.first { $0.name == "rpc-1-malfunction" }?.alarmStates == [3])
    }

    @Test func demoConfigIsValid() throws {
        let path = TestPaths.config.appendingPathComponent("demo.yaml").path
        let loaded = ConfigLoader(files: DiskConfigFiles()).load(path: path)
        guard case .success = loaded else { Issue.record("\(loaded)"); return }
    }

    @Test func appliesDocumentedDefaults() throws {
        let c = try load(SampleConfigs.minimal).get().config
        #expect(c.storage.maxBytes == ByteCount(bytes: 256 << 20))
        #expect(c.storage.stuckAfter == .seconds(60))
        #expect(c.uplink.batch == .default)
        let bus = c.buses[0]
        #expect(bus.serial == SerialLine(baud: 9600, parity: .none, dataBits: 8, stopBits: 1))
        #expect(bus.retries == 1 && bus.responseTimeout == .seconds(1))
        #expect(c.devices[0].offlineAfter == 3 && c.devices[0].enabled)
    }

    @Test func aWriterStallLimitTooShortForAnFsyncIsRefusedWhereItIsWritten() throws {
        let set = { (v: String) in
            SampleConfigs.minimal.replacingOccurrences(
                of: "storage: {path: /var/lib/edged/buffer.db}",
                with: "storage: {path: /var/lib/edged/buffer.db, stuckAfter: \(v)}")
        }
        #expect(try load(set("90s")).get().config.storage.stuckAfter == .seconds(90))
        guard case .failure(let e) = load(set("500ms")) else { Issue.record("accepted 500ms"); return }
        let lines = e.diagnostics.map(\.description)
        #expect(
            lines.count == 1 && lines[0].hasPrefix("edged.yaml:")
                && lines[0].contains("storage.stuckAfter: 500ms is below the minimum of 2s"), "\(lines)")
    }

    @Test func reportsEveryErrorInOneRun() {
        let text = SampleConfigs.minimal
            .replacingOccurrences(of: "baud: 9600", with: "baud: 9601")
            .replacingOccurrences(of: "unit: 1,", with: "unit: 250,")
            .replacingOccurrences(of: "poll: 5s", with: "poll: 5s, colour: red")
        guard case .failure(let e) = load(text) else { Issue.record("accepted"); return }
        let lines = e.diagnostics.map(\.description)
        #expect(lines.count == 3, "\(lines)")
        #expect(
            lines.contains {
                $0.hasPrefix("edged.yaml:7:") && $0.contains("buses[0].baud: 9601 is not a standard baud rate")
            })
        #expect(lines.contains { $0.contains("devices[0].unit: 250 is out of range 1...247") })
        #expect(lines.contains { $0.contains("devices[0].colour: unknown key 'colour'") })
    }

    @Test func tokenFileMustNotBeReadableByOthers() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edged-token-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let token = dir.appendingPathComponent("token")
        try Data("secret-token\n".utf8).write(to: token)
        let text = SampleConfigs.minimal.replacingOccurrences(
            of: "token: {credential: edged-token}", with: "token: {file: \(token.path)}")
        let cfg = dir.appendingPathComponent("edged.yaml")
        try Data(text.utf8).write(to: cfg)
        let loader = ConfigLoader(files: DiskConfigFiles())

        chmod(token.path, 0o644)
        guard case .failure(let e) = loader.load(path: cfg.path) else { Issue.record("0644 token accepted"); return }
        #expect(e.errors.count == 1)
        #expect(
            e.errors[0].description.contains(
                "uplink.token.file: token file \(token.path) is readable by others (mode 644); run: chmod 600"))
        #expect(!e.description.contains("secret-token"))

        chmod(token.path, 0o600)
        let ok = try loader.load(path: cfg.path).get()
        #expect(ok.warnings.isEmpty)
        #expect(ok.config.uplink.token == .file(token.path))

        try FileManager.default.removeItem(at: token)
        let missing = try loader.load(path: cfg.path).get()
        #expect(
            missing.warnings.map(\.description).contains {
                $0.contains("warning: uplink.token.file: token file") && $0.contains("does not exist")
            })
    }

    @Test func redactsProxyCredentials() throws {
        let text = SampleConfigs.minimal.replacingOccurrences(
            of: "token: {credential: edged-token}",
            with: "token: {credential: edged-token}\n  proxy: http://field:hunter2@10.0.0.1:3128")
        let c = try load(text).get().config.redacted()
        #expect(c.uplink.proxy == "http://***@10.0.0.1:3128")
    }

    @Test func encodedConfigRoundTripsThroughJSON() throws {
        let path = TestPaths.config.appendingPathComponent("edged.example.yaml").path
        let c = try ConfigLoader(files: DiskConfigFiles()).load(path: path).get().config
        let data = try JSONEncoder().encode(c)
        #expect(try JSONDecoder().decode(EdgeConfig.self, from: data) == c)
    }
}
