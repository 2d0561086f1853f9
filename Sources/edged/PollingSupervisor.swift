import EdgeCore
import EdgeRuntime
import EdgeSystem
import Foundation
import Logging
import ModbusPoller

/// Owns one `BusPoller` thread per bus. Applying a configuration restarts only the buses whose settings or
/// devices changed; the others keep their threads and connections.
// Guard: `lock` protects `running`; `worker` runs `applyNow` and `stopAll` one at a time; the rest is immutable.
final class PollingSupervisor: @unchecked Sendable {
    private let logger: Logger
    private let sink: @Sendable (PollReport) -> Void
    /// Guards `running`; held only to read or swap entries, never across a bus's stop or start.
    private let lock = NSLock()
    /// Applies configurations one at a time, off the actor and the cooperative pool.
    private let worker = BlockingWorker(name: "edged-buses")
    /// Per bus: the poller and the configuration it runs (bus + its devices with their tags and limits).
    private var running: [String: (poller: BusPoller, signature: BusSignature)] = [:]

    struct BusSignature: Equatable {
        var bus: BusConfig
        var devices: [DeviceConfig]
        var tags: [[TagDefinition]]
        var limits: [DeviceLimits]
    }

    init(logger: Logger, sink: @escaping @Sendable (PollReport) -> Void) {
        self.logger = logger
        self.sink = sink
    }

    /// Applies a configuration: stops the buses that changed or went, starts the new ones. Stopping a bus
    /// waits for its exchange in flight (seconds on a slow RTU line), so this runs on the supervisor's own
    /// thread — never on the gateway actor or the cooperative pool — and `lock` is held only to swap
    /// entries, never while a bus stops: the watchdog's `progress()` and `status()` answer meanwhile.
    func apply(_ config: EdgeConfig) async {
        await worker.perform { [self] in applyNow(config) }
    }

    /// Stops every bus thread (on the supervisor's thread).
    func stopAll() async {
        await worker.perform { [self] in
            let all = lock.withLock { () -> [BusPoller] in
                let p = running.values.map(\.poller)
                running.removeAll()
                return p
            }
            for p in all { p.stop() }
        }
    }

    private func applyNow(_ config: EdgeConfig) {
        var wanted: [String: BusSignature] = [:]
        for bus in config.buses {
            let devices = config.devices.filter { $0.bus == bus.name && $0.enabled }
            guard !devices.isEmpty else { continue }
            wanted[bus.name] = BusSignature(
                bus: bus, devices: devices, tags: devices.map { config.effectiveTags(of: $0) },
                limits: devices.map { config.effectiveLimits(of: $0) })
        }
        let stopping = lock.withLock { () -> [(String, BusPoller)] in
            let changed = running.filter { wanted[$0.key] != $0.value.signature }
            for name in changed.keys { running[name] = nil }
            return changed.map { ($0.key, $0.value.poller) }
        }
        // Outside the lock: a bus's new thread opens its port only once the old one has let go of it.
        for (name, poller) in stopping {
            poller.stop()
            logger.info("bus \(name) stopped (configuration changed or removed)", metadata: ["bus": "\(name)"])
        }
        let present = lock.withLock { Set(running.keys) }
        for (name, sig) in wanted where !present.contains(name) {
            let pollers = zip(sig.devices, zip(sig.tags, sig.limits)).map { d, tl in
                DevicePoller(
                    config: d, tags: tl.0, limits: tl.1, timing: BusTiming.of(sig.bus, turnaround: tl.1.turnaround))
            }
            let bus = sig.bus
            let poller = BusPoller(
                bus: bus, devices: pollers, logger: logger,
                makeLink: { () throws(ModbusError) -> any ModbusLink in try ModbusLinks.make(for: bus) },
                report: sink)
            poller.start()
            lock.withLock { running[name] = (poller, sig) }
            logger.info(
                "bus \(name) polling \(sig.devices.map(\.name).joined(separator: ", "))", metadata: ["bus": "\(name)"])
        }
    }

    func status() -> [DeviceStatus] {
        lock.withLock { running.values.flatMap { $0.poller.status() } }.sorted { $0.name < $1.name }
    }

    /// Each bus thread's progress, for the watchdog.
    func progress() -> [WatchdogVerdict.Bus] {
        lock.withLock {
            running.map {
                WatchdogVerdict.Bus(
                    name: $0.key, lastProgress: $0.value.poller.lastProgress,
                    allowance: $0.value.poller.progressAllowanceMillis)
            }
        }
    }
}
