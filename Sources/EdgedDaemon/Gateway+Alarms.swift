import EdgeBuffer
import EdgeCore
import EdgeRuntime
import EdgeSystem
import Foundation
import ModbusPoller

/// Alarm events into the buffer's alarm lane, the gateway's own (system) alarms, and operator commands.
extension Gateway {
    var standingSystemAlarms: Set<String> { Set(systemOccurrences.keys.map(\.description)) }

    /// Stores a system alarm's transition in the alarm lane (with the alarm state, in one transaction) and
    /// wakes the uplink. A raise of a standing alarm, or a clear of one that does not stand, is ignored.
    func raiseSystem(_ id: AlarmID, _ transition: AlarmTransition, priority: AlarmPriority, reason: String) async {
        let name = id.description
        let standing = systemOccurrences[id]
        if transition == .raised && standing != nil || transition == .cleared && standing == nil { return }
        let occurrence = standing ?? UUID().uuidString.lowercased()
        systemOccurrences[id] = transition == .cleared ? nil : occurrence
        let record = AlarmEventRecord(
            alarm: name, occurrence: occurrence, kind: "system", device: config.gateway.id, tag: nil,
            transition: transition, priority: priority.rawValue, value: nil, limit: nil, reason: reason,
            wallMillis: SystemClock.wallMillis(), by: "edged", clockSynchronized: ClockStatus.isSynchronized())
        logger.warning("system alarm \(name) \(transition.rawValue): \(reason)", metadata: ["alarm": "\(name)"])
        do {
            _ = try await store.append(alarms: [record], state: alarmState())
            uplinkWake.yield()
        } catch {
            logger.error("buffer: cannot store the \(name) alarm: \(error)")
        }
    }

    /// Alarm timers: on/off delays, stale values, shelving expiry.
    func tickAlarms() {
        commit(engine.tick(now: SystemClock.wallMillis()))
    }

    /// Commits alarm events and waits until they are stored (or failed).
    /// A flow computer's event-log records, stored for the first time: its own alarms raise and clear the
    /// device-alarm rules that watch them.
    func deviceEvents(_ device: String, _ records: [EventRecord]) {
        commit(engine.deviceAlarms(device, records, now: SystemClock.wallMillis()))
    }

    func commitEvents(_ events: [AlarmEvent]) async {
        guard !events.isEmpty else { return }
        await withCheckedContinuation { c in commit(events) { c.resume() } }
    }

    /// Queues alarm events for an immediate commit to the alarm lane, with the engine state in the same
    /// transaction, without waiting for it; once committed the uplink is woken and `done` called. Queued in
    /// the order of the calls, so the state stored with each group matches its events.
    func commit(_ events: [AlarmEvent], done: (@Sendable () -> Void)? = nil) {
        guard !events.isEmpty else { done?(); return }
        var records: [AlarmEventRecord] = []
        let synchronized = ClockStatus.isSynchronized()
        for e in events {
            let occurrence: String
            switch e.transition {
            case .raised:
                occurrence = UUID().uuidString.lowercased()
                occurrences[e.id] = occurrence
            default:
                occurrence = occurrences[e.id] ?? UUID().uuidString.lowercased()
                if e.transition == .cleared { occurrences[e.id] = nil }
            }
            records.append(
                AlarmEventRecord(
                    alarm: e.alarm, occurrence: occurrence, kind: e.kind.rawValue, device: e.device, tag: e.tag,
                    level: e.level?.rawValue,
                    transition: e.transition,
                    priority: e.priority.rawValue, value: e.value, limit: e.limit, reason: e.reason,
                    wallMillis: e.wallMillis,
                    by: e.by ?? "edged", until: e.transition == .shelved ? e.shelvedUntil : nil,
                    clockSynchronized: synchronized))
            logger.notice(
                "alarm \(e.alarm) \(e.transition.rawValue): \(e.reason)",
                metadata: ["alarm": "\(e.alarm)", "device": "\(e.device)", "priority": "\(e.priority.rawValue)"])
        }
        let n = records.count
        store.enqueue(alarms: records, state: alarmState()) { [weak self, uplinkWake] result in
            uplinkWake.yield()
            Task {
                await self?.alarmsCommitted(n, result.map { _ in () })
                done?()
            }
        }
    }

    func alarmsCommitted(_ n: Int, _ result: Result<Void, BufferError>) async {
        switch result {
        case .success: stats.alarmEvents += n
        case .failure(let e): await storeFailed(e)
        }
    }

    /// The alarm engine's state as stored in the buffer file.
    func alarmState() -> StateEntry? {
        let state = AlarmState(snapshot: engine.snapshot, occurrences: occurrences, system: systemOccurrences)
        guard let data = try? JSONEncoder().encode(state) else { return nil }
        return StateEntry(key: AlarmState.key, value: String(decoding: data, as: UTF8.self))
    }

    /// Saves the alarm engine's state alone (timers and health move without events).
    func saveAlarmState() async {
        do {
            _ = try await store.append(alarms: [], state: alarmState())
        } catch {
            logger.error("buffer: cannot save the alarm state: \(error)")
        }
    }

    // MARK: operator commands

    func acknowledge(_ id: String, by: String) async throws(AlarmCommandError) {
        let events = try engine.acknowledge(id, by: by, now: SystemClock.wallMillis())
        await commitEvents(events)
    }
    func shelve(_ id: String, for span: TimeSpan, by: String) async throws(AlarmCommandError) {
        let events = try engine.shelve(id, for: span, by: by, now: SystemClock.wallMillis())
        await commitEvents(events)
    }
    func unshelve(_ id: String, by: String) async throws(AlarmCommandError) {
        let events = try engine.unshelve(id, by: by, now: SystemClock.wallMillis())
        await commitEvents(events)
    }

    var activeAlarms: [AlarmStatus] { engine.active }
    func alarmHealth() -> AlarmHealth { engine.health(now: SystemClock.wallMillis()) }

}
