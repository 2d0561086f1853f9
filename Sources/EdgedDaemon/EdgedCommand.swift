import ArgumentParser
import CEdgedStart
import EdgeBuffer
import EdgeCore
import EdgeRuntime
import EdgeSystem
import Foundation
import Logging
import ServiceLifecycle
import Uplink

/// `edged`: the gateway daemon. Runs in the foreground; systemd supervises it (Type=notify).
public struct EdgedCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "edged",
        abstract: "WellPulse edge gateway: polls Modbus devices, raises local alarms, buffers and uploads readings.",
        discussion: """
            edged runs in the foreground under systemd (edged.service, Type=notify): it polls the devices of its \
            configuration over Modbus RTU and TCP (and a flow computer's Enron map and EFM records), applies the \
            alarms, buffers readings, alarm events and EFM records in SQLite while the site is offline, and \
            uploads them to the tenant's sync endpoint. edgectl(1) talks to it over the control socket.

            Signals: SIGHUP (systemctl reload edged) reads and validates the configuration again; a broken one \
            is refused and the running one stays. SIGTERM and SIGINT stop it: the batch in flight is finished, \
            everything queued is committed, nothing buffered is lost.

            Files: /etc/edged/edged.yaml (configuration), /etc/edged/templates/ (device templates), \
            /var/lib/edged/buffer.db (the buffer: readings, alarm events, EFM records, alarm state), \
            /run/edged/control.sock (control socket), /etc/edged/token (the uplink token, given to the service \
            as the systemd credential edged-token).

            Environment: NOTIFY_SOCKET and WATCHDOG_USEC (systemd), CREDENTIALS_DIRECTORY (the token), \
            EDGED_CONTROL_SOCKET (the default of --control-socket).

            Exit status: 0 after a clean stop; 78 (EX_CONFIG) when the configuration cannot be used, or the \
            buffer file was written by a newer edged (a downgrade: the file is left as it is; the unit does not \
            restart on 78); 1 on other errors at start-up. A buffer file of an older schema is migrated in place.

            See also: edgectl(1), systemctl(1), journalctl(1); /usr/share/doc/edged/ (README, sync protocol, \
            control protocol, EFM).
            """,
        version: EdgeCoreVersion.string)

    @Option(help: "Configuration file.") var config: String = ConfigLoader.defaultPath
    @Option(help: "Control socket (edgectl talks to it).") var controlSocket: String =
        ProcessInfo.processInfo.environment["EDGED_CONTROL_SOCKET"] ?? "/run/edged/control.sock"
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel: String = "info"

    /// Exit status for a configuration that cannot be used (EX_CONFIG): the unit does not restart on it.
    static let exitConfig: Int32 = 78

    public init() {}

    /// Parses the command line, runs the daemon and exits: what `@main` did when edged had an executable of its
    /// own. Called from an async function so that the async `main()` is chosen; top-level code in `main.swift`
    /// picks ParsableCommand's synchronous one, which does not run an async command.
    public static func runAsProcess() async {
        await main()
    }

    public func run() async throws {
        // The arena cap is set before main (CEdgedStart); this repeats it only if that was refused.
        if edged_arenas_capped_at_start() != 1 { HeapUsage.limitArenas() }
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

        // The buffer: opened (with its integrity check, quarantining a corrupt file) and its alarm state
        // read on a worker thread, never on the cooperative pool.
        let c = loaded.config
        let storage = BlockingWorker(name: "edged-storage")
        let opened = await storage.perform { () -> Result<(BufferStore, [String], Gateway.AlarmState?), BufferError> in
            try? FileManager.default.createDirectory(
                atPath: (c.storage.path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            do throws(BufferError) {
                let (store, notes) = try BufferStore.open(
                    path: c.storage.path, maxBytes: c.storage.maxBytes, logger: logger,
                    options: BufferOptions(retention: c.storage.retention))
                return .success((store, notes, Gateway.readAlarmState(store, logger: logger)))
            } catch {
                return .failure(error)
            }
        }
        guard case .success(let (store, notes, restored)) = opened else {
            if case .failure(let error) = opened {
                logger.critical("cannot start: \(error)")
                // A downgrade: the file is left for the newer edged; restarting cannot help.
                if error.code == .newerSchema { throw ExitCode(Self.exitConfig) }
            }
            throw ExitCode(1)
        }
        for n in notes { logger.warning("\(n)") }
        let (gateway, owed) = Gateway.make(loaded: loaded, store: store, restored: restored, logger: logger)
        await gateway.commitEvents(owed)
        // A corrupt file was moved aside: tell the operator and the server (the old epoch's data is kept).
        for n in notes where n.contains("moved") || n.contains("corrupt") {
            await gateway.raiseSystem(AlarmID(rule: "buffer-recovered"), .raised, priority: .high, reason: n)
        }

        let uplink = UplinkService(
            source: UplinkService.Source(
                config: { await gateway.config }, store: store,
                alarm: { change in
                    await gateway.raiseSystem(
                        change.id, change.transition, priority: change.priority, reason: change.reason)
                },
                standing: { await gateway.standingSystemAlarms }),
            wake: gateway.uplinkWakeStream, logger: logger)
        let reloader = ReloadService(gateway: gateway, configPath: config, logger: logger)
        let control = ControlServer(path: controlSocket) { request, peer in
            ControlHandlers.handle(
                request, peer: peer, gateway: gateway, uplink: uplink, reloader: reloader, logger: logger)
        }

        // Started in this order, shut down in the reverse: the control socket and reloads first, the uplink
        // (it finishes the batch in flight), the bus threads, then ingest (every report they produced), and
        // the buffer last (it commits all that is queued). systemd's TimeoutStopSec is 20 s.
        var configuration = ServiceGroupConfiguration(
            services: [
                .init(service: BufferService(gateway: gateway, store: store, worker: storage)),
                .init(service: IngestService(gateway: gateway, reports: gateway.reports)),
                .init(service: PollingService(gateway: gateway)),
                .init(service: uplink),
                .init(service: NotifyService(gateway: gateway)),
                .init(service: HealthService(gateway: gateway, uplink: uplink)),
                .init(service: reloader),
                .init(service: ControlService(server: control, logger: logger))
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(15)
        logger.notice("edged \(EdgeCoreVersion.string) running: \(ConfigSummary.line(loaded.config))")
        do {
            try await ServiceGroup(configuration: configuration).run()
        } catch {
            logger.error("service ended: \(error)")
        }
        logger.notice("edged stopped")
    }
}
