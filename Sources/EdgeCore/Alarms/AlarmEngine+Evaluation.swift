extension AlarmEngine {
    /// Whether alarm `i` may neither raise nor clear nor run delays: suppressed, or a value alarm of an offline device.
    func isFrozen(_ i: Int) -> Bool {
        points[i].record.suppressed
            || (points[i].record.kind.watchesValue && offlineSince[points[i].record.device] != nil)
    }

    /// The last good value of the alarm's tag.
    func currentValue(_ i: Int) -> Double? {
        points[i].record.tag.flatMap { lastGood[TagKey(device: points[i].record.device, tag: $0)]?.value }
    }

    /// Re-evaluates every alarm of rule `ri` at `now` and returns its raises and clears in level order.
    /// With `newReading` the rule's tag was just read and every kind observes its condition; without,
    /// only time-based kinds (stale, comm loss) observe, and the others just let delays run out.
    mutating func evaluate(rule ri: Int, now: Int64, newReading: Bool) -> [AlarmEvent] {
        var events: [AlarmEvent] = []
        let timed = rules[ri].kind == .stale || rules[ri].kind == .commLoss
        for i in pointsOfRule[ri] {
            if !isFrozen(i) {
                let p = points[i]
                if newReading || timed, let s = signal(i, now: now) {
                    points[i].phase.observe(s, now: now, onDelay: p.onDelay, offDelay: p.offDelay)
                } else {
                    points[i].phase.elapse(now: now, onDelay: p.onDelay, offDelay: p.offDelay)
                }
            }
            events += reconcile(i, now: now)
        }
        return events.inLevelOrder()
    }

    /// What the engine's current knowledge says about alarm `i`'s condition at `now`; nil when unknown.
    func signal(_ i: Int, now: Int64) -> AlarmSignal? {
        let p = points[i]
        let rule = rules[p.rule]
        let key = TagKey(device: rule.device, tag: rule.tag ?? "")
        switch rule.kind {
        case .limit:
            guard let v = lastGood[key]?.value, let limit = p.limit, let level = p.record.level else { return nil }
            if level.isHigh {
                return v >= limit.setpoint ? .abnormal : v < limit.setpoint - limit.deadband ? .normal : .inDeadband
            }
            return v <= limit.setpoint ? .abnormal : v > limit.setpoint + limit.deadband ? .normal : .inDeadband
        case .state:
            guard let v = lastGood[key]?.value else { return nil }
            return (rule.alarmStates ?? []).contains(v) ? .abnormal : .normal
        case .rate:
            guard let move = rateMove(rule: p.rule, now: now), let change = rule.rate?.change else { return nil }
            return move.amount > change ? .abnormal : .normal
        case .stale:
            let after = rule.after?.milliseconds ?? 0
            if let good = freshAt[key], now - good < after { return .normal }
            // Not read lately; count from the start or the device's return, whichever is later. Only a
            // good reading clears: an alarm already raised stays (the deadband signal keeps it).
            let since = max(freshAt[key] ?? startedAt, onlineSince[rule.device] ?? startedAt)
            return now - since >= after ? .abnormal : .inDeadband
        case .commLoss:
            guard let since = offlineSince[rule.device] else { return .normal }
            return now - since >= (rule.after?.milliseconds ?? 0) ? .abnormal : .normal
        case .deviceAlarm:
            return deviceAlarms[p.rule].map { $0.set ? .abnormal : .normal }
        }
    }

    /// The largest move in the rule's direction within its `per` up to `now`, and which way it went.
    func rateMove(rule ri: Int, now: Int64) -> (amount: Double, rising: Bool)? {
        guard let rate = rules[ri].rate else { return nil }
        let window = (rateSamples[ri] ?? []).filter { $0.at >= now - rate.per.milliseconds }
        guard let last = window.last else { return nil }
        let rise = last.value - (window.map(\.value).min() ?? last.value)
        let fall = (window.map(\.value).max() ?? last.value) - last.value
        switch rate.direction {
        case .rise: return (rise, true)
        case .fall: return (fall, false)
        case .either: return rise >= fall ? (rise, true) : (fall, false)
        }
    }

    /// Brings alarm `i`'s annunciation in line with its condition: raises or clears it unless it is
    /// frozen, shelved or out of service, and keeps a latching alarm raised until acknowledged.
    mutating func reconcile(_ i: Int, now: Int64) -> [AlarmEvent] {
        guard !isFrozen(i), !points[i].isShelved, !points[i].record.outOfService else { return [] }
        let active = points[i].phase.settledActive
        if active && !points[i].record.raised {
            let (value, reason) = describe(i, raising: true, now: now)
            points[i].record.raised = true
            points[i].record.raisedAt = now
            points[i].record.acknowledged = false
            points[i].record.acknowledgedBy = nil
            points[i].record.acknowledgedAt = nil
            points[i].record.value = value
            points[i].record.reason = reason
            healthLog.record(points[i].id, .raised, now: now)
            return [points[i].event(.raised, value: value, reason: reason, now: now)]
        }
        if !active && points[i].record.raised {
            let latching = rules[points[i].rule].latching
            if latching && !points[i].record.acknowledged { return [] }
            var (value, reason) = describe(i, raising: false, now: now)
            if latching {
                reason =
                    "latch reset by acknowledgement\(points[i].record.acknowledgedBy.map { " of \($0)" } ?? ""); \(reason)"
            }
            points[i].record.raised = false
            points[i].record.value = value
            points[i].record.reason = reason
            healthLog.record(points[i].id, .cleared, now: now)
            return [points[i].event(.cleared, value: value, reason: reason, now: now)]
        }
        return []
    }

    /// Evaluates every `suppressWhen` against the last good values and emits `suppressed` or
    /// `unsuppressed` for alarms whose suppression changed. A newly unsuppressed alarm is re-evaluated
    /// at once from the last good value (its delays start now).
    mutating func updateSuppression(now: Int64) -> [AlarmEvent] {
        var events: [AlarmEvent] = []
        for (ri, rule) in rules.enumerated() {
            // A rule without a condition is never suppressed (a restored suppression whose condition was
            // removed from the configuration lifts here).
            let source = rule.suppressWhen?.source ?? "suppression"
            let result =
                rule.suppressWhen.map { expression in
                    expression.condition.evaluate(
                        { ref in
                            lastGood[TagKey(device: ref.device ?? rule.device, tag: ref.tag)]?.value
                        },
                        state: { ref, name in
                            tagDefinitions[TagKey(device: ref.device ?? rule.device, tag: ref.tag)]?.stateValue(
                                named: name
                            ).map(Double.init)
                        })
                } ?? false
            let holds = result == true
            for i in pointsOfRule[ri] where points[i].record.suppressed != holds {
                if holds {
                    points[i].phase = points[i].phase.settled
                    points[i].record.suppressed = true
                    events.append(
                        points[i].event(
                            .suppressed, value: currentValue(i), reason: "suppressed while \(source)", now: now))
                    continue
                }
                points[i].record.suppressed = false
                let why =
                    rule.suppressWhen == nil
                    ? "no longer configured"
                    : result == nil ? "cannot be evaluated (a value is unknown)" : "no longer holds"
                events.append(
                    points[i].event(.unsuppressed, value: currentValue(i), reason: "\(source) \(why)", now: now))
                if !isFrozen(i), let s = signal(i, now: now) {
                    points[i].phase.observe(s, now: now, onDelay: points[i].onDelay, offDelay: points[i].offDelay)
                }
                events += reconcile(i, now: now)
            }
        }
        return events
    }
}
