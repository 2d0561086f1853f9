import EdgeCore
import EdgeRuntime
import EdgeSystem
import Foundation
import Logging
import ModbusPoller
import ServiceLifecycle

/// Tells systemd how the gateway is doing: STATUS= every few seconds, and WATCHDOG=1 only while every bus
/// thread and the buffer's writer thread are making progress — a hung bus thread, or a writer stuck in one
/// commit (a dead disk, a hung fsync), stops the pings and systemd restarts the service.
struct NotifyService: Service {
    let gateway: Gateway

    func run() async throws {
        SystemdNotify.ready(status: await gateway.statusLine())
        defer { SystemdNotify.stopping() }
        let interval = min(SystemdNotify.watchdogInterval.map { $0 / 3 } ?? .seconds(5), .seconds(5))
        // Three loops: the watchdog and the status line decide from memory; the third reads the buffer
        // file for the figures only it knows (oldest reading, sizes), and on a hung disk that read may hang
        // — neither of the others waits for it.
        await withDiscardingTaskGroup { group in
            group.addTask { await pingWhileProgressing(every: interval) }
            group.addTask { await reportStatus(every: interval) }
            group.addTask { await refreshBufferFigures(every: interval) }
        }
    }

    /// Reads the buffer's statistics now and then, so `edgectl status` (which answers from memory) shows
    /// a recent oldest reading.
    func refreshBufferFigures(every interval: Duration) async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            _ = try? await gateway.store.stats()
            try? await Task.sleep(for: interval)
        }
    }

    /// WATCHDOG=1, decided on in-memory progress measures only (no disk read, no hop onto the gateway actor).
    func pingWhileProgressing(every interval: Duration) async {
        var previous = WatchdogVerdict.ping
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let limit = gateway.writerStuckAfterMillis.withLock { $0 }
            let verdict = WatchdogVerdict.decide(
                now: SystemClock.monotonicMillis(), buses: gateway.polling.progress(),
                writerStallMillis: gateway.store.writerStalledMillis, writerLimitMillis: limit)
            switch verdict {
            case .ping:
                switch previous {
                case .writerStuck: gateway.logger.notice("buffer writer progressing again: watchdog pings resume")
                case .busStuck(let bus, _):
                    gateway.logger.notice(
                        "bus \(bus) progressing again: watchdog pings resume", metadata: ["bus": "\(bus)"])
                case .ping: break
                }
                SystemdNotify.watchdog()
            case .writerStuck(let ms):
                gateway.logger.critical(
                    "buffer writer stuck for \(ms / 1000) s (storage.stuckAfter \(limit / 1000) s): watchdog pings stop, systemd will restart edged"
                )
            case .busStuck(let bus, let ms):
                gateway.logger.critical(
                    "bus \(bus) thread stuck for \(ms / 1000) s inside a call that did not return: watchdog pings stop, systemd will restart edged",
                    metadata: ["bus": "\(bus)"])
            }
            previous = verdict
            try? await Task.sleep(for: interval)
        }
    }

    func reportStatus(every interval: Duration) async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            SystemdNotify.status(await gateway.statusLine())
            try? await Task.sleep(for: interval)
        }
    }
}
