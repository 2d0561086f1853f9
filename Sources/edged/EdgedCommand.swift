import ArgumentParser
import EdgeCore
import EdgeRuntime
import Foundation
import Logging
import ServiceLifecycle

/// `edged`: the gateway daemon. Runs in the foreground; systemd supervises it (Type=notify).
@main
struct EdgedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edged",
        abstract: "WellPulse edge gateway: polls Modbus devices, raises local alarms, buffers and uploads readings.",
        version: EdgeCoreVersion.string)

    @Option(help: "Configuration file.") var config: String = ConfigLoader.defaultPath
    @Option(help: "Control socket (edgectl talks to it).") var controlSocket: String =
        ProcessInfo.processInfo.environment["EDGED_CONTROL_SOCKET"] ?? "/run/edged/control.sock"
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel: String = "info"

    /// Exit status for a configuration that cannot be used (EX_CONFIG): the unit does not restart on it.
    static let exitConfig: Int32 = 78

    func run() async throws {
        HeapUsage.limitArenas()
        HeapUsage.mapLargeBlocks()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = JournalLogHandler(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "edged")
        let loaded: LoadedConfig
        switch ConfigLoader(files: DiskConfigFiles()).load(path: config) {
        case .success(let l): loaded = l
        case .failure(let e):
            for d in e.diagnostics { logger.error("\(d)") }
            logger.critical("\(config): \(e.errors.count) error(s); not starting")
            throw ExitCode(Self.exitConfig)
        }
        for w in loaded.warnings { logger.warning("\(w)") }

        let gateway: Gateway
        do {
            gateway = try await Gateway.start(loaded: loaded, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        let reloader = ReloadService(gateway: gateway, configPath: config, logger: logger)
        let control = ControlServer(path: controlSocket) { request, peer in
            ControlHandlers.handle(request, peer: peer, gateway: gateway, reloader: reloader, logger: logger)
        }
        do { try control.start() } catch {
            logger.error("control socket: \(error); edgectl will not reach this daemon")
        }

        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: gateway.ingestService),
                .init(service: gateway.uplinkService),
                .init(service: NotifyService(gateway: gateway)),
                .init(service: reloader),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        SystemdNotify.ready(status: await gateway.statusLine())
        logger.notice("edged \(EdgeCoreVersion.string) running: \(ConfigSummary.line(loaded.config))")
        do {
            try await group.run()
        } catch {
            logger.error("service ended: \(error)")
        }
        SystemdNotify.stopping()
        control.stop()
        await gateway.shutdown()
        logger.notice("edged stopped")
    }
}
