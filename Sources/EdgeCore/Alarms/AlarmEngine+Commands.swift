extension AlarmEngine {
    /// Acknowledges an alarm (or every level of a limit rule named by its rule name) that awaits it.
    ///
    /// Emits `acknowledged`; a latching alarm whose condition is gone then clears (`cleared` follows).
    /// A non-latching alarm stays raised until its condition goes. Throws when the name is unknown or
    /// nothing it names awaits acknowledgement.
    public mutating func acknowledge(_ alarm: String, by: String, now: Int64) throws(AlarmCommandError) -> [AlarmEvent]
    {
        let targets = try resolve(alarm)
        let waiting = targets.filter { !points[$0].record.acknowledged }
        guard !waiting.isEmpty else {
            let by = targets.map { points[$0].record }.first { $0.raised }?.acknowledgedBy
            throw .notAcknowledgeable(alarm, acknowledgedBy: by)
        }
        var events: [AlarmEvent] = []
        for i in waiting {
            let returned = !points[i].record.raised
            points[i].record.acknowledged = true
            points[i].record.acknowledgedBy = by
            points[i].record.acknowledgedAt = now
            let reason = "acknowledged by \(by)\(returned ? " (already back to normal)" : "")"
            events.append(points[i].event(.acknowledged, value: currentValue(i), reason: reason, now: now, by: by))
            events += reconcile(i, now: now)
        }
        return events
    }

    /// Shelves an alarm (or every level of a limit rule) for `span`, at most `maxShelve`: it is neither
    /// raised nor cleared until unshelved or the shelve expires (`tick` then emits `unshelved`).
    /// Shelving a shelved alarm sets a new expiry.
    public mutating func shelve(_ alarm: String, for span: TimeSpan, by: String, now: Int64) throws(AlarmCommandError)
        -> [AlarmEvent]
    {
        let targets = try resolve(alarm)
        guard span.milliseconds > 0, span <= Self.maxShelve else {
            throw .invalidShelveDuration(alarm, span, max: Self.maxShelve)
        }
        return targets.map { i in
            points[i].record.shelvedUntil = now + span.milliseconds
            points[i].record.shelvedBy = by
            return points[i].event(
                .shelved, value: currentValue(i), reason: "shelved by \(by) for \(span)", now: now,
                by: by, shelvedUntil: now + span.milliseconds)
        }
    }

    /// Ends a shelve early; the alarm is reconciled at once (raised if its condition holds, cleared if it
    /// was raised and its condition is gone).
    public mutating func unshelve(_ alarm: String, by: String, now: Int64) throws(AlarmCommandError) -> [AlarmEvent] {
        let shelved = try resolve(alarm).filter { points[$0].isShelved }
        guard !shelved.isEmpty else { throw .notShelved(alarm) }
        var events: [AlarmEvent] = []
        for i in shelved {
            points[i].record.shelvedUntil = nil
            points[i].record.shelvedBy = nil
            events.append(
                points[i].event(.unshelved, value: currentValue(i), reason: "unshelved by \(by)", now: now, by: by))
            events += reconcile(i, now: now)
        }
        return events
    }

    /// Takes an alarm (or every level of a limit rule) out of service, or returns it to service. Out of
    /// service it is neither raised nor cleared; back in service it is reconciled at once.
    public mutating func setOutOfService(_ alarm: String, _ outOfService: Bool, by: String, now: Int64)
        throws(AlarmCommandError) -> [AlarmEvent]
    {
        let changing = try resolve(alarm).filter { points[$0].record.outOfService != outOfService }
        guard !changing.isEmpty else { throw .alreadyInThatService(alarm, outOfService: outOfService) }
        var events: [AlarmEvent] = []
        for i in changing {
            points[i].record.outOfService = outOfService
            points[i].record.outOfServiceBy = outOfService ? by : nil
            let reason = outOfService ? "taken out of service by \(by)" : "returned to service by \(by)"
            events.append(
                points[i].event(
                    outOfService ? .outOfService : .inService, value: currentValue(i), reason: reason, now: now, by: by)
            )
            if !outOfService { events += reconcile(i, now: now) }
        }
        return events
    }

    /// The alarms a name stands for: the alarm with that id, or all levels of the limit rule of that name.
    func resolve(_ name: String) throws(AlarmCommandError) -> [Int] {
        if let id = AlarmID(parsing: name), let i = index[id] { return [i] }
        if let ri = rules.firstIndex(where: { $0.name == name }), !pointsOfRule[ri].isEmpty { return pointsOfRule[ri] }
        throw .unknownAlarm(name, known: points.map(\.id.description))
    }
}
