import EdgeBuffer
import EdgeCore
import EdgeRuntime
import EdgeSystem
import Foundation
import Logging
import ServiceLifecycle

/// The buffer's place in the lifecycle: it was opened before the group started (on `worker`, never on the
/// cooperative pool); on shutdown — last, after ingest has queued everything — it saves the alarm state and
/// closes the file on `worker`, which commits all that is queued and checkpoints the WAL away.
struct BufferService: Service {
    let gateway: Gateway
    let store: BufferStore
    let worker: BlockingWorker

    func run() async throws {
        try? await gracefulShutdown()
        await gateway.saveAlarmState()
        gateway.uplinkWake.finish()
        await worker.perform { [store] in store.close() }
    }
}

/// The bus threads: started with the configuration in force, stopped on shutdown (before ingest, so ingest
/// sees every report they produced). Reloads go through `Gateway.reload`.
struct PollingService: Service {
    let gateway: Gateway

    func run() async throws {
        await gateway.polling.apply(await gateway.config)
        try? await gracefulShutdown()
        await gateway.polling.stopAll()
    }
}

/// The control socket (edgectl): its own threads accept and serve; stopped first on shutdown.
struct ControlService: Service {
    let server: ControlServer
    let logger: Logger

    func run() async throws {
        do { try server.start() } catch {
            logger.error("control socket: \(error); edgectl will not reach this daemon")
        }
        for note in server.notes { logger.warning("control socket: \(note); edgectl may not be allowed to connect") }
        try? await gracefulShutdown()
        server.stop()
    }
}
