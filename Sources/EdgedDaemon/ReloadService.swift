import EdgeCore
import EdgeRuntime
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// SIGHUP (`systemctl reload edged`): read and validate the configuration again; apply it if valid, keep
/// the running one (and log every error) if not.
struct ReloadService: Service {
    let gateway: Gateway
    let configPath: String
    let logger: Logger

    func run() async throws {
        let hups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hups.cancelOnGracefulShutdown() {
            _ = await reload(by: "SIGHUP")
        }
    }

    /// Reloads; returns the diagnostics when the new configuration was refused.
    func reload(by who: String) async -> [ConfigDiagnostic]? {
        SystemdNotify.reloading()
        defer { SystemdNotify.send("READY=1") }
        switch ConfigLoader(files: DiskConfigFiles()).load(path: configPath) {
        case .success(let loaded):
            await gateway.reload(loaded)
            logger.notice("configuration reloaded (\(who)): \(ConfigSummary.line(loaded.config))")
            return nil
        case .failure(let e):
            for d in e.diagnostics { logger.error("\(d)") }
            logger.error(
                "reload (\(who)) refused: \(configPath) has \(e.errors.count) error(s); the running configuration stays"
            )
            return e.diagnostics
        }
    }
}
