import Yams

extension ConfigParser {
    static let alarmKeys: [AlarmRule.Kind: Set<String>] = {
        let common: Set = ["name", "type", "device", "priority", "latching", "suppressWhen", "description"]
        return [
            .limit: common.union(["tag", "hh", "h", "l", "ll", "deadband", "onDelay", "offDelay"]),
            .rate: common.union(["tag", "change", "per", "direction", "onDelay", "offDelay"]),
            .state: common.union(["tag", "states", "onDelay", "offDelay"]),
            .stale: common.union(["tag", "after"]),
            .commLoss: common.union(["after"]),
            .deviceAlarm: common.union(["register", "limit"])
        ]
    }()

    mutating func alarm(_ n: YNode) -> AlarmRule? {
        let all = Self.alarmKeys.values.reduce(into: Set<String>()) { $0.formUnion($1) }
        guard let m = r.map(n, known: all.sorted()) else { return nil }
        let name = r.name(m, "name")
        guard let kind = r.word(m, "type", as: AlarmRule.Kind.self, required: true) else { return nil }
        for key in m.keys where !Self.alarmKeys[kind]!.contains(key) {
            let kn = m.keyNode(key) ?? n
            r.log.error(kn.location, kn.path, "'\(key)' does not apply to a \(kind.rawValue) alarm")
        }
        let device = r.name(m, "device")
        let tag = kind == .commLoss || kind == .deviceAlarm ? nil : r.name(m, "tag", identifier: true)
        let priority = r.word(m, "priority", as: AlarmPriority.self)
        let latching = r.bool(m, "latching") ?? false
        let onDelay = r.duration(m, "onDelay", max: .hours(24)) ?? TimeSpan(milliseconds: 0)
        let offDelay = r.duration(m, "offDelay", max: .hours(24)) ?? TimeSpan(milliseconds: 0)
        let description = r.string(m, "description")
        var suppress: ConditionExpression?
        if let sn = m["suppressWhen"], let text = r.scalar(sn, expected: "a condition such as 'run_status == running'")
        {
            do {
                suppress = try ConditionExpression(parsing: text)
            } catch {
                let at = locate(offset: error.offset, in: sn)
                r.log.error(
                    at, sn.path, "condition does not parse: \(error.message) (character \(error.offset) of '\(text)')")
            }
        }
        var rule = AlarmRule(
            name: name ?? "", kind: kind, device: device ?? "", tag: tag, limits: nil, rate: nil,
            alarmStates: nil, alarmStateNames: [], after: nil, priority: priority ?? .medium, latching: latching,
            onDelay: onDelay, offDelay: offDelay, suppressWhen: suppress, description: description)
        switch kind {
        case .limit:
            let deadband = r.double(m, "deadband") ?? 0
            if deadband < 0, let dn = m["deadband"] {
                r.log.error(dn.location, dn.path, "deadband must not be negative")
            }
            var set = LimitSet()
            for level in LimitSet.Level.allCases {
                guard let ln = m[level.rawValue] else { continue }
                let defaultPriority = priority ?? ((level == .hh || level == .ll) ? .high : .medium)
                set[level] = limit(
                    ln, priority: defaultPriority, deadband: deadband, onDelay: onDelay, offDelay: offDelay)
            }
            if !LimitSet.Level.allCases.contains(where: { m.has($0.rawValue) }) {
                r.log.error(n.location, n.path, "a limit alarm needs at least one of hh, h, l, ll")
            }
            rule.limits = set
            checkOrder(set, m)
        case .rate:
            let change = r.double(m, "change", required: true)
            if let c = change, c <= 0, let cn = m["change"] {
                r.log.error(cn.location, cn.path, "change must be above 0")
            }
            let per = r.duration(m, "per", required: true, min: .seconds(1), max: .hours(24))
            let direction = r.word(m, "direction", as: RateLimit.Direction.self) ?? .either
            if let change, let per { rule.rate = RateLimit(change: change, per: per, direction: direction) }
        case .state:
            rule.alarmStates = []
            // State names are resolved against the tag by the validator; numbers and booleans here.
            for item in r.list(m, "states", required: true) ?? [] {
                guard let text = r.scalar(item, expected: "a value or state name") else { continue }
                switch text.lowercased() {
                case "true", "on": rule.alarmStates?.append(1)
                case "false", "off": rule.alarmStates?.append(0)
                default:
                    if let v = Double(text) { rule.alarmStates?.append(v) } else { rule.alarmStateNames.append(text) }
                }
            }
            if let sn = m["states"], sn.node.sequence?.count == 0 {
                r.log.error(sn.location, sn.path, "list at least one abnormal state")
            }
        case .stale:
            rule.after = r.duration(m, "after", required: true, min: .seconds(1), max: .hours(24 * 7))
        case .commLoss:
            rule.after = r.duration(m, "after", max: .hours(24)) ?? TimeSpan(milliseconds: 0)
        case .deviceAlarm:
            if let rn = m["register"], let v = r.int(rn, range: 0...65535) {
                if EnronRegister.width(of: v) == nil {
                    r.log.error(
                        rn.location, rn.path,
                        "\(v) is not an Enron register (1001-1999, 3001-3999, 5001-5999, 7000-9999) a flow computer alarms on"
                    )
                }
                rule.register = v
            } else if !m.has("register") {
                r.log.error(n.location, n.path, "a device-alarm needs the register the flow computer alarms on")
            }
            rule.deviceLimit = r.word(m, "limit", as: EventRecord.Limit.self)
        }
        let needsTag = kind != .commLoss && kind != .deviceAlarm
        guard name != nil, device != nil, !needsTag || tag != nil else { return nil }
        return rule
    }

    /// Where character `offset` (1-based) of a scalar's value is in the file: for plain and quoted scalars
    /// on the scalar's line; for folded (`>`) and literal (`|`) blocks, on the line it was folded from.
    func locate(offset: Int, in n: YNode) -> SourceLocation? {
        guard let loc = n.location, let scalar = n.node.scalar else { return nil }
        switch scalar.style {
        case .plain, .any: return SourceLocation(file: loc.file, line: loc.line, column: loc.column + offset - 1)
        case .singleQuoted, .doubleQuoted:
            return SourceLocation(file: loc.file, line: loc.line, column: loc.column + offset)
        case .literal, .folded:
            // Walk the block's lines (after the indicator line), each contributing its text plus one separator.
            var remaining = offset
            var line = loc.line + 1
            let lines = sources[n.file] ?? []
            while remaining > 0 {
                guard line >= 1, line <= lines.count else { return loc }
                let content = lines[line - 1]
                let indent = content.prefix { $0 == " " }.count
                let body = content.count - indent
                if remaining <= body { return SourceLocation(file: loc.file, line: line, column: indent + remaining) }
                remaining -= body + 1
                line += 1
            }
            return loc
        }
    }

    /// `hh: 900` or `hh: {setpoint: 900, priority: critical, deadband: 10, onDelay: 5s, offDelay: 30s}`.
    mutating func limit(_ n: YNode, priority: AlarmPriority, deadband: Double, onDelay: TimeSpan, offDelay: TimeSpan)
        -> AlarmLimit?
    {
        if n.node.scalar != nil {
            guard let v = r.double(n) else { return nil }
            return AlarmLimit(setpoint: v, priority: priority, deadband: deadband, onDelay: onDelay, offDelay: offDelay)
        }
        guard let m = r.map(n, known: ["setpoint", "priority", "deadband", "onDelay", "offDelay"]),
            let sp = r.double(m, "setpoint", required: true)
        else { return nil }
        let db = r.double(m, "deadband") ?? deadband
        if db < 0, let dn = m["deadband"] { r.log.error(dn.location, dn.path, "deadband must not be negative") }
        return AlarmLimit(
            setpoint: sp, priority: r.word(m, "priority", as: AlarmPriority.self) ?? priority, deadband: db,
            onDelay: r.duration(m, "onDelay", max: .hours(24)) ?? onDelay,
            offDelay: r.duration(m, "offDelay", max: .hours(24)) ?? offDelay)
    }

    /// Setpoints must rise LL < L < H < HH.
    mutating func checkOrder(_ set: LimitSet, _ m: YMap) {
        let present = [LimitSet.Level.ll, .l, .h, .hh].compactMap { level in set[level].map { (level, $0.setpoint) } }
        for (a, b) in zip(present, present.dropFirst()) where a.1 >= b.1 {
            let n = m[b.0.rawValue]!
            r.log.error(
                n.location, n.path,
                "setpoints must rise LL < L < H < HH: \(b.0.rawValue.uppercased()) \(Self.num(b.1)) is not above \(a.0.rawValue.uppercased()) \(Self.num(a.1))"
            )
        }
    }

    static func num(_ v: Double) -> String {
        v.rounded() == v && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}
