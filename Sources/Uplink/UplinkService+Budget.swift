import EdgeBuffer
import EdgeCore
import EdgeRuntime
import Foundation
import Logging
import ModbusPoller
import ServiceLifecycle

/// The month's data budget, and the uplink's own alarms as the gateway's system alarm events.
extension UplinkService {
    static func loadUsage(_ store: BufferStore, logger: Logger) async -> DataUsage {
        let month = DataUsage.month(ofWallMillis: PollClock.wallMillis())
        do {
            guard let text = try await store.state(usageKey) else { return DataUsage(month: month) }
            return try JSONDecoder().decode(DataUsage.self, from: Data(text.utf8))
        } catch {
            logger.error("uplink: this month's data usage is unreadable (\(error)); counting from zero")
            return DataUsage(month: month)
        }
    }

    /// Saves the month's usage in the buffer file when it changed, at most every 30 s unless `force`.
    func saveUsage(_ session: inout Session, store: BufferStore, force: Bool) async {
        guard session.books.usageDirty, force || ContinuousClock.now - session.books.usageSavedAt >= .seconds(30) else {
            return
        }
        guard let data = try? JSONEncoder().encode(session.books.usage) else { return }
        do {
            _ = try await store.append(
                alarms: [], state: StateEntry(key: Self.usageKey, value: String(decoding: data, as: UTF8.self)))
            session.books.usageDirty = false
            session.books.usageSavedAt = .now
        } catch {
            logger.error("uplink: saving this month's data usage failed: \(error)")
        }
    }

    /// The data budget's mode now; updates the status.
    func budget(_ session: inout Session) -> DataBudgetMode {
        let usage = session.books.usage.asOf(wallMillis: PollClock.wallMillis())
        let cap = session.config.uplink.monthlyBudget?.bytes
        let mode = DataBudgetMode.of(usage, budget: cap)
        update {
            $0.month = usage.month; $0.monthBytes = usage.bytes
            $0.monthlyBudget = cap; $0.dataBudgetMode = mode.rawValue
        }
        if mode == .saving {
            session.books.reasons[Self.dataBudgetAlarm] =
                "\(usage.bytes) of the \(cap ?? 0)-byte monthly data budget used in \(usage.month); "
                + "sending alarms and hourly snapshots only, other readings are dropped with data-budget gap records"
        }
        return mode
    }

    // MARK: - The uplink's own alarms as system alarm events

    /// Tells the gateway about uplink alarms raised or cleared since it was last told: the machines' alarms
    /// of both lanes, and the data budget's.
    func reconcileAlarms(_ session: inout Session, _ gateway: Source, mode: DataBudgetMode) async {
        var desired = Set(session.activeAlarms)
        if mode == .saving { desired.insert(Self.dataBudgetAlarm) }
        let published = session.books.published
        guard desired != published else { return }
        for name in desired.subtracting(published).sorted() {
            await gateway.alarm(
                UplinkAlarmChange(
                    name: name, raised: true, priority: Self.priority(name),
                    reason: session.books.reasons[name] ?? name))
        }
        for name in published.subtracting(desired).sorted() {
            let reason =
                name == Self.dataBudgetAlarm
                ? "the data budget allows everything again (a new month, or a larger budget)"
                : "uploads go through again"
            await gateway.alarm(
                UplinkAlarmChange(name: name, raised: false, priority: Self.priority(name), reason: reason))
        }
        session.books.published = desired
    }

    static func priority(_ alarm: String) -> AlarmPriority {
        switch alarm {
        case UplinkAlarm.unauthorized.rawValue, UplinkAlarm.untrustedServer.rawValue,
            UplinkAlarm.wrongEndpoint.rawValue:
            .high
        case UplinkAlarm.rejectedBatch.rawValue: .medium
        default: .low
        }
    }
}
