import EdgeBuffer
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
    /// Where EFM collections store their records, and who to tell when a store committed (the uplink).
    private let store: BufferStore
    private let efmStored: @Sendable () -> Void
    /// Where event-log records go once stored for the first time (the alarm engine's device alarms).
    let efmEvents = Locked<(@Sendable (String, [EventRecord]) -> Void)?>(nil)
    /// Guards `running`; held only to read or swap entries, never across a bus's stop or start.
    private let lock = NSLock()
    /// Applies configurations one at a time, off the actor and the cooperative pool.
    private let worker = BlockingWorker(name: "edged-buses")
    /// Per bus: the poller and the configuration it runs (bus + its devices with their tags and limits).
    private var running: [String: (poller: BusPoller, signature: BusSignature, efm: [EFMCollection])] = [:]

    struct BusSignature: Equatable {
        var bus: BusConfig
        var devices: [DeviceConfig]
        var tags: [[TagDefinition]]
        var limits: [DeviceLimits]
        /// The EFM profile of each device's template (nil: none).
        var efm: [EFMProfile?]
        /// Whether each device's template uses Enron addressing.
        var enron: [Bool]
    }

    init(
        logger: Logger, store: BufferStore, efmStored: @escaping @Sendable () -> Void,
        sink: @escaping @Sendable (PollReport) -> Void
    ) {
        self.logger = logger
        self.store = store
        self.efmStored = efmStored
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
                limits: devices.map { config.effectiveLimits(of: $0) },
                efm: devices.map { config.template(named: $0.template)?.efmProfile },
                enron: devices.map { config.template(named: $0.template)?.addressing == .enron })
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
            let framing: EnronFrame.Transport = sig.bus.kind == .tcp ? .tcp : .rtu
            let pollers = sig.devices.indices.map { i in
                DevicePoller(
                    config: sig.devices[i], tags: sig.tags[i], limits: sig.limits[i],
                    timing: BusTiming.of(sig.bus, turnaround: sig.limits[i].turnaround),
                    enron: sig.enron[i] ? framing : nil)
            }
            let bus = sig.bus
            let collections = zip(sig.devices, sig.efm).compactMap { d, profile in
                profile.flatMap { efmCollection(d, profile: $0, bus: bus) }
            }
            let poller = BusPoller(
                bus: bus, devices: pollers, efm: collections, logger: logger,
                makeLink: { () throws(ModbusError) -> any ModbusLink in try ModbusLinks.make(for: bus) },
                report: sink)
            poller.start()
            lock.withLock { running[name] = (poller, sig, collections) }
            let efmNote =
                collections.isEmpty
                ? "" : "; collecting EFM records of \(collections.map(\.device).joined(separator: ", "))"
            logger.info(
                "bus \(name) polling \(sig.devices.map(\.name).joined(separator: ", "))\(efmNote)",
                metadata: ["bus": "\(name)"])
        }
    }

    /// A flow computer's EFM collection, from the cursors stored with its records (on the supervisor's thread:
    /// the read is blocking SQLite). An unreadable cursor counts as none: the device's ring is collected as the
    /// first time, and what is already stored is kept once.
    private func efmCollection(_ d: DeviceConfig, profile: EFMProfile, bus: BusConfig) -> EFMCollection? {
        guard let e = d.efm, e.collect else { return nil }
        let cursors: [ArchiveKind: EFMCollector.Cursor]
        do { cursors = try store.efmCollectorCursors(device: d.name) } catch {
            logger.error("\(d.name): EFM cursors unreadable (\(error)); collecting its ring as the first time")
            cursors = [:]
        }
        let contractHour = e.contractHour(profile: profile)
        let configuration = EFMCollector.Configuration(
            profile: profile, unit: UInt8(d.unit), transport: bus.kind == .tcp ? .tcp : .rtu,
            cycleMillis: e.check.milliseconds, retryMillis: max(1000, min(30_000, e.check.milliseconds)))
        let device = d.name
        let meter = e.meter
        let failing = Locked(false)
        return EFMCollection(
            device: device, unit: d.unit, configuration: configuration, cursors: cursors, meter: meter,
            contractHour: contractHour,
            store: { [store, logger, efmStored, failing, efmEvents] request, done in
                let write: EFMWrite
                do {
                    write = try EFMWrite(
                        device: device, meter: meter, contractHour: contractHour, profile: profile,
                        archive: request.archive, records: request.records, events: request.events,
                        gaps: request.gaps, cursor: request.cursor, collectedWallMillis: SystemClock.wallMillis())
                } catch {
                    done("\(error)")
                    return
                }
                store.enqueueEFM(write) { result in
                    switch result {
                    case .success(let r):
                        for key in r.conflicts {
                            logger.error(
                                "\(device): EFM \(request.archive) record \(key) changed on the device after it was collected; the stored original is kept, the new copy is set aside as a conflict"
                            )
                        }
                        for gap in write.gaps {
                            logger.error(
                                "\(device): \(gap.periods) \(request.archive) records between \(gap.from) and \(gap.to) were overwritten on the device before they could be collected (gap recorded)"
                            )
                        }
                        failing.withLock { $0 = false }
                        if r.stored > 0 || !write.gaps.isEmpty { efmStored() }
                        // Only records stored now: an event read again after a crash raises nothing twice.
                        let fresh = Set(r.storedKeys)
                        let events = request.events.filter { fresh.contains($0.identity.key) }
                        if !events.isEmpty, let sink = efmEvents.withLock({ $0 }) { sink(device, events) }
                        done(nil)
                    case .failure(let error):
                        done(error.description)
                    }
                }
            },
            report: { [logger] report in
                switch report {
                case .resync(let r):
                    logger.error(
                        "\(device): EFM \(r.archive.rawValue) collection held (\(r.reason.rawValue) at index \(r.index)); resume it with `edgectl efm resume \(device) \(r.archive.rawValue)` once the device's clock and ring are checked"
                    )
                case .readFailed(_, let reason):
                    // Once per run of failures: a flow computer that is away would log every retry.
                    if !failing.withLock({ f in
                        defer { f = true }; return f
                    }) {
                        logger.warning("\(device): EFM collection: \(reason); retrying")
                    }
                case .storeFailed(let reason):
                    logger.error("\(device): EFM records not stored (\(reason)); they are read again")
                case .conflict:
                    break
                }
            })
    }

    /// The EFM collections running, by device.
    func efmCollections() -> [String: EFMCollection] {
        lock.withLock {
            Dictionary(
                running.values.flatMap { $0.efm }.map { ($0.device, $0) }, uniquingKeysWith: { a, _ in a })
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
