extension AlarmEngine {
    /// The value and the sentence a field technician reads for alarm `i` raising or clearing at `now`:
    /// `tubing_pressure 612 psi ≥ HH 600`, `tubing_pressure 585 psi < 590 (HH 600 − deadband 10)`.
    func describe(_ i: Int, raising: Bool, now: Int64) -> (value: Double?, reason: String) {
        let p = points[i]
        let rule = rules[p.rule]
        let tag = rule.tag ?? ""
        let definition = tagDefinitions[TagKey(device: rule.device, tag: tag)]
        let value = currentValue(i)
        let shown = value.map { AlarmText.quantity($0, units: definition?.units) }
        let heldFor = AlarmText.heldFor(raising ? p.onDelay : p.offDelay)
        switch rule.kind {
        case .limit:
            guard let limit = p.limit, let level = p.record.level else { return (value, "\(tag) \(shown ?? "?")") }
            let sp = AlarmText.number(limit.setpoint)
            guard let shown else {
                return (
                    value, raising ? "\(tag) past \(level.label) \(sp)" : "\(tag) back to normal (\(level.label) \(sp))"
                )
            }
            if raising { return (value, "\(tag) \(shown) \(level.isHigh ? "≥" : "≤") \(level.label) \(sp)\(heldFor)") }
            let op = level.isHigh ? "<" : ">"
            guard limit.deadband > 0 else { return (value, "\(tag) \(shown) \(op) \(level.label) \(sp)\(heldFor)") }
            let edge = AlarmText.number(
                level.isHigh ? limit.setpoint - limit.deadband : limit.setpoint + limit.deadband)
            let sign = level.isHigh ? "−" : "+"
            return (
                value,
                "\(tag) \(shown) \(op) \(edge) (\(level.label) \(sp) \(sign) deadband \(AlarmText.number(limit.deadband)))\(heldFor)"
            )
        case .rate:
            let per = rule.rate?.per ?? TimeSpan(milliseconds: 0)
            let change = AlarmText.quantity(rule.rate?.change ?? 0, units: definition?.units)
            guard raising, let move = rateMove(rule: p.rule, now: now) else {
                return (value, "\(tag) moved no more than \(change) within \(per)\(shown.map { "; now \($0)" } ?? "")")
            }
            let amount = AlarmText.quantity(move.amount, units: definition?.units)
            return (
                move.amount,
                "\(tag) \(move.rising ? "rose" : "fell") \(amount) within \(per) (limit \(change))\(heldFor)"
            )
        case .state:
            guard let value else { return (nil, "\(tag) state unknown") }
            let named = AlarmText.state(value, of: definition)
            return (
                value,
                raising ? "\(tag) is \(named)\(heldFor)" : "\(tag) is \(named), no longer an alarm state\(heldFor)"
            )
        case .stale:
            let after = rule.after ?? TimeSpan(milliseconds: 0)
            return raising
                ? (value, "\(tag): no good reading for \(after)")
                : (value, "\(tag) read again\(shown.map { ": \($0)" } ?? "")")
        case .deviceAlarm:
            guard let last = deviceAlarms[p.rule] else { return (nil, "\(rule.device) alarm state unknown") }
            let limit = last.limits.map(\.rawValue).joined(separator: ", ")
            let what = "\(rule.device) register \(last.register)\(limit.isEmpty ? "" : " \(limit)")"
            let at = "at \(last.deviceTime) device time"
            return raising
                ? (last.value, "\(what) alarm set, value \(AlarmText.number(last.value)) \(at)")
                : (last.value, "\(what) alarm cleared \(at)")
        case .commLoss:
            let after = rule.after ?? TimeSpan(milliseconds: 0)
            if raising {
                return (
                    nil,
                    after.milliseconds > 0
                        ? "\(rule.device) not answering for \(after)" : "\(rule.device) not answering"
                )
            }
            return (nil, "\(rule.device) answering again")
        }
    }
}

/// Numbers, quantities and states as reasons show them.
enum AlarmText {
    /// `612`, `12.5`, `0.125` (at most three decimals).
    static func number(_ v: Double) -> String {
        let r = (v * 1000).rounded() / 1000
        if r == r.rounded(), abs(r) < 1e15 { return String(Int64(r)) }
        return "\(r)"
    }

    /// `612 psi`, `22%`, `7.5` (no units).
    static func quantity(_ v: Double, units: String?) -> String {
        guard let units, !units.isEmpty else { return number(v) }
        return units == "%" ? "\(number(v))%" : "\(number(v)) \(units)"
    }

    /// ` for 30s`, or nothing for no delay.
    static func heldFor(_ millis: Int64) -> String {
        millis > 0 ? " for \(TimeSpan(milliseconds: millis))" : ""
    }

    /// `malfunction (3)` for a named state, `true`/`false` for bools and bits, else the number.
    static func state(_ v: Double, of tag: TagDefinition?) -> String {
        if let name = tag?.states?.first(where: { Double($0.value) == v })?.name { return "\(name) (\(number(v)))" }
        if let type = tag?.type, type == .bool || type == .bit, v == 0 || v == 1 { return v == 1 ? "true" : "false" }
        return number(v)
    }
}
