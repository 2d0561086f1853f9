import EdgeCore
import EdgeSystem
import Foundation
import ModbusPoller

extension Gateway {
    // MARK: reload

    /// Applies a new, already validated configuration with the least disruption: unchanged buses keep their
    /// threads and connections, the buffer is untouched, unchanged alarms keep their state.
    func reload(_ newLoaded: LoadedConfig) async {
        let snapshot = engine.snapshot
        let (old, new) = (config.storage, newLoaded.config.storage)
        if old.path != new.path || old.maxBytes != new.maxBytes || old.retention != new.retention {
            logger.warning(
                "storage.path, maxBytes and retention take effect when edged restarts; the buffer keeps running as it was opened (\(old.path), \(old.maxBytes), retention \(old.retention))"
            )
        }
        writerStuckAfterMillis.withLock { $0 = new.stuckAfter.milliseconds }
        loaded = newLoaded
        engine = AlarmEngine(config: newLoaded.config, now: SystemClock.wallMillis())
        let events = engine.restore(snapshot)
        rbe = ReportByException(config: newLoaded.config)
        await polling.apply(newLoaded.config)
        commit(events)
        await saveAlarmState()
        // The uplink picks up the new configuration (and a replaced token) now, not after its backoff.
        uplinkWake.yield()
    }

    // MARK: status

    /// systemd's STATUS= line, from memory (the buffer's counts live there; no read of the file).
    func statusLine() -> String {
        let devices = polling.status()
        let online = devices.filter(\.online).count
        let b = store.rememberedStats().stats
        return
            "\(online)/\(devices.count) devices online, backlog \(b.alarmRecords + b.readingRecords), \(engine.active.count) active alarms"
    }
}
