import EdgeCore
import EdgeSystem
import Foundation
import Logging
import ModbusPoller
import ServiceLifecycle
import Uplink

/// Stores the gateway's own health every `gateway.healthInterval` as readings of the device named after the
/// gateway (`GatewayHealth`): uplink success rate and round trip, backlog, buffer against its budget, data
/// used this month, own memory, CPU, disk free, clock, uptime, version, and per device and bus the response
/// rate, latency and utilisation over the interval. They take the normal path: report-by-exception, the
/// buffer, the uplink.
struct HealthService: Service {
    let gateway: Gateway
    let uplink: UplinkService

    /// What the previous sample saw, for the figures that are rates over the interval.
    struct Previous {
        var monotonicMillis: Int64
        var cpuSeconds: Double?
        var attempts: Int
        var stored: Int
        var counters: [String: DeviceCounters]
    }

    func run() async throws {
        var previous = snapshotBase()
        var due = await previous.monotonicMillis + gateway.config.gateway.healthInterval.milliseconds
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // Short sleeps: a shutdown is never held up by a 5-minute wait.
            try? await Task.sleep(for: .milliseconds(max(10, min(1000, due - SystemClock.monotonicMillis()))))
            guard SystemClock.monotonicMillis() >= due else { continue }
            let (health, next) = await sample(since: previous)
            previous = next
            await gateway.ingestHealth(health)
            due = await next.monotonicMillis + gateway.config.gateway.healthInterval.milliseconds
        }
    }

    private func snapshotBase() -> Previous {
        let u = uplink.status
        return Previous(
            monotonicMillis: SystemClock.monotonicMillis(), cpuSeconds: ProcessStats.cpuSeconds(),
            attempts: u.attempts, stored: u.attemptsStored,
            counters: Dictionary(
                gateway.polling.status().map { ($0.name, $0.counters) }, uniquingKeysWith: { a, _ in a }))
    }

    func sample(since p: Previous) async -> (GatewayHealth, Previous) {
        let next = snapshotBase()
        let seconds = max(0.001, Double(next.monotonicMillis - p.monotonicMillis) / 1000)
        let config = await gateway.config
        let u = uplink.status
        let stats = gateway.store.rememberedStats().stats
        var h = GatewayHealth()
        h.uplinkAttempts = next.attempts - p.attempts
        h.uplinkStored = next.stored - p.stored
        h.uplinkRoundTripMillis = u.lastRoundTripMillis
        h.backlogRecords = stats.alarmRecords + stats.readingRecords
        h.oldestReadingAgeSeconds = stats.oldestReadingMillis.map { max(0, SystemClock.wallMillis() - $0) / 1000 }
        h.bufferBytes = stats.bytesOnDisk
        h.bufferBudgetBytes = stats.budgetBytes
        h.dataUsedMonthBytes = u.monthBytes
        h.ownMemoryBytes = ProcessStats.memory("RssAnon:")
        if let a = p.cpuSeconds, let b = next.cpuSeconds { h.cpuPercent = 100 * (b - a) / seconds }
        h.diskFreeBytes = ProcessStats.diskFreeBytes(
            (config.storage.path as NSString).deletingLastPathComponent.isEmpty
                ? "." : (config.storage.path as NSString).deletingLastPathComponent)
        h.clockSynchronized = ClockStatus.isSynchronized()
        h.uptimeSeconds = (SystemClock.wallMillis() - gateway.startedWallMillis) / 1000
        h.version = EdgeCoreVersion.string
        var busy: [String: Double] = [:]
        for d in config.devices where d.enabled {
            guard let now = next.counters[d.name] else { continue }
            let before = p.counters[d.name] ?? DeviceCounters()
            h.devices.append(GatewayHealth.device(d.name, from: before, to: now))
            // Time in exchanges: answered requests by their latency, unanswered ones by the response timeout.
            let timeout = config.bus(named: d.bus)?.responseTimeout.milliseconds ?? 0
            let unanswered = (now.requests - before.requests) - (now.responses - before.responses)
            busy[d.bus, default: 0] +=
                Double(now.latencyTotalMicros - before.latencyTotalMicros) / 1_000_000
                + Double(max(0, unanswered)) * Double(timeout) / 1000
        }
        h.buses = config.buses.filter { busy[$0.name] != nil }.map {
            GatewayHealth.Bus(name: $0.name, utilisation: min(100, 100 * (busy[$0.name] ?? 0) / seconds))
        }
        return (h, next)
    }
}
