import ArgumentParser
import EdgeControl
import EdgeCore
import EdgeRuntime
import Foundation

/// `edgectl support-bundle`: one tar.gz a field tech can send in, with nothing in it that could hold the
/// token or a key.
struct SupportBundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "support-bundle",
        abstract: "Write one tar.gz for support: configuration (secrets redacted), a day of edged's journal, state.",
        discussion: """
            The bundle holds: the configuration and its templates; the last day of edged's journal; edged's \
            status, devices, alarms, buffer, uplink and EFM state (when edged answers); edgectl plan; the \
            versions of edged, the OS and the system libraries; and MANIFEST.txt saying what each file is and \
            what was redacted. Never included: the token file or credential, TLS keys or certificates, the \
            buffer file. Every file is scrubbed of the token (when edgectl can read it), bearer tokens, PEM \
            private keys and passwords in URLs.
            """)

    @Option(help: "Configuration file.") var config: String = ConfigLoader.defaultPath
    @Option(name: .shortAndLong, help: "Where to write the bundle (default: ./edged-support-<gateway>-<time>.tar.gz).")
    var output: String?
    @Option(help: "How much of the journal to take, as journalctl --since takes it.") var since = "-24h"
    @OptionGroup var socket: SocketOption

    func run() throws {
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let loaded = try? loadConfigOrExit(config, quietWarnings: true)
        let gateway = loaded?.config.gateway.id ?? "unknown"
        let target = output ?? "edged-support-\(gateway)-\(stamp).tar.gz"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edged-support-\(UUID().uuidString)")
        let root = dir.appendingPathComponent("edged-support-\(gateway)-\(stamp)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        // The token is read only to scrub it from what goes in; it is never written.
        let secrets = loaded.flatMap { Self.token($0.config.uplink.token) }.map { [$0] } ?? []
        var manifest: [String] = []
        func put(_ name: String, _ text: String, _ what: String) throws {
            let url = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            let clean = SupportRedaction.redact(text, secrets: secrets)
            try clean.write(to: url, atomically: true, encoding: .utf8)
            let redacted = clean == text ? "" : " (secrets redacted)"
            manifest.append("\(name): \(what)\(redacted)")
        }

        // Configuration and the template files it includes (the files themselves, as the tech left them).
        if let text = try? String(contentsOfFile: config, encoding: .utf8) {
            try put("config/\((config as NSString).lastPathComponent)", text, "the configuration, \(config)")
        } else {
            manifest.append("config: \(config) could not be read")
        }
        let templates = ((config as NSString).deletingLastPathComponent as NSString).appendingPathComponent("templates")
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: templates)) ?? []).sorted()
        where name.hasSuffix(".yaml") {
            if let text = try? String(
                contentsOfFile: (templates as NSString).appendingPathComponent(name), encoding: .utf8)
            {
                try put("config/templates/\(name)", text, "device template")
            }
        }

        // edged's state, as the control socket gives it.
        for (command, name) in [
            (ControlCommand.status, "status"), (.devices, "devices"), (.alarms, "alarms"), (.buffer, "buffer"),
            (.uplink, "uplink"), (.efm, "efm"), (.alarmHealth, "alarm-health")
        ] {
            do {
                let data = try ControlClient.call(
                    socket.path, ControlRequest(command), timeoutSeconds: max(1, socket.timeout))
                try put("state/\(name).json", String(decoding: data, as: UTF8.self), "edgectl \(name) (control reply)")
            } catch {
                manifest.append("state/\(name).json: not taken: \(error)")
            }
        }

        let me = Self.executable()
        let plan = Self.capture(me, ["plan", "--config", config])
        try put("plan.txt", plan.output, "edgectl plan (exit \(plan.status))")
        let journal = Self.capture(
            "/usr/bin/journalctl", ["-u", "edged", "--since", since, "--no-pager", "-o", "short-iso-precise"])
        try put("journal.txt", journal.output, "journalctl -u edged --since \(since) (exit \(journal.status))")
        var versions = "edgectl \(EdgeCoreVersion.string)\n"
        let edged = Self.capture("/usr/bin/edged", ["--version"])
        versions += edged.status == 0 ? "edged \(edged.output)" : "edged: not installed in /usr/bin\n"
        versions += Self.capture("/usr/bin/uname", ["-a"]).output
        versions += (try? String(contentsOfFile: "/etc/os-release", encoding: .utf8)) ?? ""
        versions +=
            Self.capture(
                "/usr/bin/dpkg-query",
                [
                    "-W", "-f", "${Package} ${Version}\\n", "edged", "libmodbus5", "libsqlite3-0", "libssl3",
                    "libcurl4",
                    "libsystemd0", "zlib1g"
                ]
            ).output
        try put("versions.txt", versions, "edged, OS and system library versions")
        manifest.append("not included: the token, TLS keys and certificates, the buffer file")
        try put("MANIFEST.txt", manifest.joined(separator: "\n") + "\n", "this list")

        let tar = Self.capture(
            "/usr/bin/tar", ["-czf", target, "-C", dir.path, root.lastPathComponent])
        guard tar.status == 0 else {
            Console.error("tar failed (\(tar.status)): \(tar.output)")
            throw ExitCode(1)
        }
        if !socket.json { print(target) }
    }

    /// The token's value, when this user can read it (never an error: the bundle is made either way).
    static func token(_ source: TokenSource) -> String? {
        let path: String
        switch source {
        case .file(let p): path = p
        case .credential(let name):
            guard let dir = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"] else { return nil }
            path = (dir as NSString).appendingPathComponent(name)
        }
        return (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func executable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Runs a program to completion; its standard output and error together (nothing when it is missing).
    static func capture(_ exe: String, _ args: [String]) -> (status: Int32, output: String) {
        guard FileManager.default.isExecutableFile(atPath: exe) else { return (127, "\(exe): not installed\n") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do { try p.run() } catch { return (126, "\(exe): \(error)\n") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
