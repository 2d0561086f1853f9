import ArgumentParser
import EdgeCore
import EdgeRuntime
import Foundation

/// The field tech's tool: validate and change configuration, read devices, see what edged is doing.
/// Run by the `edgectl` executable, and by `edged` when it is invoked under the name `edgectl` (the link the
/// package installs).
public struct EdgeCtl: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "edgectl",
        abstract: "Configure and inspect the edged gateway daemon.",
        discussion: """
            edgectl is the field technician's tool on the pad. Commands that read a running edged (status, \
            devices, alarms, tail, buffer, uplink, efm, reload, support-bundle) talk to its control socket, \
            /run/edged/control.sock or --socket (members of group edged may connect); config, plan, probe, \
            scan and poll work on the configuration file and the devices directly, with or without edged.

            Environment: EDGED_CONTROL_SOCKET (the default of --socket), EDGECTL_TIMEOUT (seconds to wait for \
            edged's answer, default 10).

            Exit status: 0 on success; 1 when edged refused or did not answer, a device did not answer, or \
            a configuration is not valid (each error is printed with its file, line and column).

            See also: edged(8).
            """,
        version: EdgeCoreVersion.string,
        subcommands: [
            StatusCommand.self, DevicesCommand.self, AlarmsCommand.self, TailCommand.self, BufferCommand.self,
            UplinkCommand.self, EFMCommand.self,
            ReloadCommand.self, ConfigCommand.self, PlanCommand.self, ProbeCommand.self, ScanCommand.self,
            PollCommand.self, SupportBundleCommand.self
        ]
    )

    public init() {}
}

/// Standard error, for diagnostics.
enum Console {
    static func error(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// Loads a configuration, printing every diagnostic; exits 1 when it has errors.
func loadConfigOrExit(_ path: String, quietWarnings: Bool = false) throws -> LoadedConfig {
    switch ConfigLoader(files: DiskConfigFiles()).load(path: path) {
    case .success(let loaded):
        if !quietWarnings { loaded.warnings.forEach { Console.error($0.description) } }
        return loaded
    case .failure(let error):
        error.diagnostics.forEach { Console.error($0.description) }
        let count = error.errors.count
        Console.error("\(path): \(count) error\(count == 1 ? "" : "s"); configuration not valid")
        throw ExitCode(1)
    }
}
