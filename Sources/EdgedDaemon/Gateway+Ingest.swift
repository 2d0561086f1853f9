import EdgeBuffer
import EdgeCore
import EdgeRuntime
import EdgeSystem
import Foundation
import ModbusPoller

extension Gateway {
    /// Takes one poll report: latest values, alarms, report-by-exception, and the readings into the
    /// buffer's queue. Never waits on the disk (alarm events and readings are queued for their commit in
    /// order), so a hung disk does not back up the report queue.
    func ingest(_ report: PollReport) {
        stats.reports += 1
        let now = SystemClock.wallMillis()
        for r in report.readings { latest["\(r.device).\(r.tag)"] = r }
        var events: [AlarmEvent] = []
        if let t = report.transition {
            let online: Bool = if case .cameBack = t { true } else { false }
            events += engine.deviceComm(report.device, online: online, now: now)
        }
        events += engine.ingest(report.readings, now: now)
        commit(events)
        // Report-by-exception decides what is stored; every reading still counts as seen.
        let tags = config.device(named: report.device).map { config.effectiveTags(of: $0) } ?? []
        let byName = Dictionary(tags.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var keep: [Reading] = []
        // The readings were timed a few milliseconds ago: flag them if the clock is not synchronized now.
        let synchronized = ClockStatus.isSynchronized()
        for var r in report.readings {
            guard let tag = byName[r.tag] else { continue }
            r.clockSynchronized = synchronized
            if rbe.admit(r, tag: tag) { keep.append(r) }
        }
        stats.readingsSeen += report.readings.count
        stats.readingsSuppressed += report.readings.count - keep.count
        guard !keep.isEmpty else { return }
        // Queued, not awaited: the next report joins the same group commit.
        let n = keep.count
        store.enqueue(readings: keep, units: { _, t in byName[t]?.units }) { [weak self] result in
            Task { await self?.appended(n, result.map { _ in () }) }
        }
    }

    /// The gateway's own health sample, as readings of the device named after the gateway: through
    /// report-by-exception (the series' deadbands and hourly integrity) into the buffer, like any reading.
    /// The latest values are kept for `edgectl tail --device <gateway id>`.
    func ingestHealth(_ health: GatewayHealth) {
        let device = config.gateway.id
        let readings = health.readings(
            device: device, wallMillis: SystemClock.wallMillis(), monotonicNanos: SystemClock.monotonicNanos(),
            clockSynchronized: health.clockSynchronized)
        let tags = GatewayHealth.tags(devices: health.devices.map(\.name), buses: health.buses.map(\.name))
        let byName = Dictionary(tags.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var keep: [Reading] = []
        for r in readings {
            latest["\(r.device).\(r.tag)"] = r
            guard let tag = byName[r.tag] else { continue }
            if rbe.admit(r, tag: tag) { keep.append(r) }
        }
        guard !keep.isEmpty else { return }
        let n = keep.count
        store.enqueue(readings: keep, units: { _, t in byName[t]?.units }) { [weak self] result in
            Task { await self?.appended(n, result.map { _ in () }) }
        }
    }

    func appended(_ n: Int, _ result: Result<Void, BufferError>) async {
        switch result {
        case .success: await stored(n)
        case .failure(let e):
            stats.readingsNotStored += n
            await storeFailed(e)
        }
    }

    func stored(_ n: Int) async {
        stats.readingsStored += n
        if systemOccurrences[Self.notStoredAlarm] != nil {
            await raiseSystem(Self.notStoredAlarm, .cleared, priority: .high, reason: "readings are stored again")
        }
    }
    func storeFailed(_ e: any Error) async {
        stats.storeErrors += 1
        stats.lastStoreError = "\(e)"
        logger.error("buffer: \(e)")
        if systemOccurrences[Self.notStoredAlarm] == nil {
            await raiseSystem(
                Self.notStoredAlarm, .raised, priority: .high,
                reason: "readings could not be stored (\(e)); they are counted in a gap record")
        }
    }

}
