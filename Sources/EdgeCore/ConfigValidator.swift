import Foundation
import Yams

/// Cross-checks between the parts of a configuration: references, duplicates, addresses against device
/// limits, alarms against their tags, and whether each bus can serve its devices' poll intervals.
struct ConfigValidator {
    let draft: ConfigParser.Draft
    let files: any ConfigFileAccess
    var log: DiagnosticLog

    init(draft: ConfigParser.Draft, files: any ConfigFileAccess, log: DiagnosticLog) {
        self.draft = draft; self.files = files; self.log = log
    }

    /// The node of `key` inside a mapping node, for pointing at a field.
    static func field(_ n: YNode, _ key: String) -> YNode {
        guard let v = n.node.mapping?[key] else { return n }
        return n.child(key, v)
    }

    mutating func validate() -> EdgeConfig? {
        checkUnique(draft.buses.map { ($0.0.name, $0.1) }, what: "bus")
        checkUnique(draft.templates.map { ($0.0.name, $0.1) }, what: "template")
        checkUnique(draft.devices.map { ($0.0.name, $0.1) }, what: "device")
        checkUnique(draft.alarms.map { ($0.0.name, $0.1) }, what: "alarm")
        for (i, (t, _)) in draft.templates.enumerated() {
            checkTemplate(t, tagNodes: draft.tagNodes[i])
            checkOverlaps(t, tagNodes: draft.tagNodes[i])
        }
        checkSerialPorts()
        checkDevices()
        checkAlarms()
        checkBusCapacity()
        checkFiles()
        guard let gateway = draft.gateway, let uplink = draft.uplink, let storage = draft.storage else { return nil }
        if let host = URL(string: uplink.endpoint)?.host, host.hasSuffix(".wellpulse.io"),
            !host.hasPrefix("\(gateway.tenant).")
        {
            log.warning(
                draft.endpointNode?.location, "uplink.endpoint",
                "host \(host) is not tenant \(gateway.tenant)'s (\(gateway.tenant).wellpulse.io)")
        }
        if draft.devices.isEmpty && draft.broken.isEmpty {
            log.warning(
                draft.devicesNode?.location, "devices", "no devices configured; edged will only upload what is buffered"
            )
        }
        var alarms = draft.alarms.map(\.0)
        for i in alarms.indices { resolveStates(&alarms[i]) }
        return EdgeConfig(
            gateway: gateway, uplink: uplink, storage: storage, buses: draft.buses.map(\.0),
            templates: draft.templates.map(\.0), devices: draft.devices.map(\.0), alarms: alarms)
    }

    mutating func checkUnique(_ items: [(String, YNode)], what: String) {
        var seen: [String: YNode] = [:]
        for (name, n) in items {
            if let first = seen[name] {
                let at = Self.field(n, "name")
                let firstAt = first.location.map { ", line \($0.line)" } ?? ""
                log.error(
                    at.location, at.path, "duplicate \(what) name '\(name)' (first defined at \(first.path)\(firstAt))")
            } else {
                seen[name] = n
            }
        }
    }

    mutating func checkTemplate(_ t: DeviceTemplate, tagNodes: [YNode]) {
        var seen: Set<String> = []
        for (tag, n) in zip(t.tags, tagNodes) {
            if !seen.insert(tag.name).inserted {
                let at = Self.field(n, "name")
                log.error(at.location, at.path, "template '\(t.name)' defines tag '\(tag.name)' twice")
            }
            let maxCount = tag.table.isBitTable ? t.limits.maxBits : t.limits.maxRegisters
            if tag.width > maxCount {
                let at = Self.field(n, "type")
                log.error(
                    at.location, at.path,
                    "tag '\(tag.name)' is \(tag.width) registers, more than the template's maxRegisters \(maxCount); it could never be read"
                )
            }
            if let bad = t.limits.neverRead.first(where: { $0.overlaps(table: tag.table, tag.address, tag.lastAddress) }
            ) {
                let at = Self.field(n, "address")
                let range =
                    t.addressing == .modicon
                    ? "\(Modicon.format(bad.table, bad.first))-\(Modicon.format(bad.table, bad.last))"
                    : "\(bad.table.rawValue) \(bad.first)...\(bad.last)"
                log.error(at.location, at.path, "tag '\(tag.name)' of template '\(t.name)' lies in neverRead \(range)")
            }
        }
    }

    /// Two RTU buses cannot share one serial port.
    mutating func checkSerialPorts() {
        var ports: [String: YNode] = [:]
        for (bus, n) in draft.buses where bus.kind == .rtu {
            guard let dev = bus.device else { continue }
            if let first = ports[dev] {
                let at = Self.field(n, "device")
                let line = first.location.map { ", line \($0.line)" } ?? ""
                let firstName = first.node.mapping?["name"]?.scalar?.string ?? "?"
                log.error(
                    at.location, at.path,
                    "\(dev) is already the port of bus '\(firstName)' (first defined at \(first.path)\(line))")
            } else {
                ports[dev] = n
            }
        }
    }

    mutating func checkDevices() {
        let buses = Dictionary(draft.buses.map { ($0.0.name, $0.0) }, uniquingKeysWith: { a, _ in a })
        let templates = Dictionary(draft.templates.map { ($0.0.name, $0.0) }, uniquingKeysWith: { a, _ in a })
        var units: [String: String] = [:]
        var meters: [String: String] = [:]
        for (d, n) in draft.devices {
            if let gw = draft.gateway?.id, d.name == gw {
                let nn = Self.field(n, "name")
                log.error(
                    nn.location, nn.path,
                    "'\(gw)' is the gateway's id: the gateway's own health is stored as readings of that device; name this device otherwise"
                )
            }
            if let meter = d.efm?.meter {
                if let other = meters[meter] {
                    let mn = Self.field(Self.field(n, "efm"), "meter")
                    log.error(mn.location, mn.path, "meter '\(meter)' is already measured by device '\(other)'")
                } else {
                    meters[meter] = d.name
                }
            }
            if let bus = buses[d.bus] {
                let un = Self.field(n, "unit")
                if let why = UnitID.refusal(d.unit, on: bus.kind) {
                    log.error(un.location, un.path, why)
                }
                let key = "\(d.bus)#\(d.unit)"
                if let other = units[key] {
                    log.error(un.location, un.path, "unit \(d.unit) on bus \(d.bus) is already device '\(other)'")
                } else {
                    units[key] = d.name
                }
            } else if !draft.broken.contains(d.bus) {
                let bn = Self.field(n, "bus")
                log.error(
                    bn.location, bn.path,
                    "unknown bus '\(d.bus)'\(Suggestion.hint(for: d.bus, in: buses.keys.sorted()))")
            }
            guard let t = templates[d.template] else {
                // A template that failed to read has been reported already; do not repeat it per device.
                if !draft.broken.contains(d.template) && !draft.brokenInclude {
                    let tn = Self.field(n, "template")
                    log.error(
                        tn.location, tn.path,
                        "unknown template '\(d.template)'\(Suggestion.hint(for: d.template, in: templates.keys.sorted()))"
                    )
                }
                continue
            }
            if d.efm != nil, t.efm == nil {
                let en = Self.field(n, "efm")
                log.error(
                    en.location, en.path,
                    "template '\(t.name)' names no EFM profile; add `efm: <profile>` (\(EFMProfile.builtInNames.joined(separator: ", "))) to the template to collect this device's records"
                )
            }
            let tagsNode = Self.field(n, "tags")
            for name in d.tagOverrides.keys.sorted() where t.tag(named: name) == nil {
                let at = tagsNode.node.mapping?.first { $0.key.scalar?.string == name }.map {
                    YNode(node: $0.key, path: tagsNode.path, file: n.file)
                }
                log.error(
                    (at ?? tagsNode).location, "\(tagsNode.path).\(name)",
                    "template '\(t.name)' has no tag '\(name)'\(Suggestion.hint(for: name, in: t.tags.map(\.name)))")
            }
            for (name, o) in d.tagOverrides {
                guard case .percentOfSpan? = o.deadband, let tag = t.tag(named: name), tag.span == nil, o.span == nil
                else { continue }
                let on = tagsNode.node.mapping?[name].map { tagsNode.child(name, $0) }
                let at = on.map { Self.field($0, "deadband") } ?? tagsNode
                log.error(
                    at.location, at.path, "a deadband in % needs the tag's span; give an absolute deadband instead")
            }
        }
    }

    func tagsOf(device name: String) -> (DeviceConfig, [TagDefinition])? {
        guard let d = draft.devices.first(where: { $0.0.name == name })?.0,
            let t = draft.templates.first(where: { $0.0.name == d.template })?.0
        else { return nil }
        return (d, t.tags.map { tag in d.tagOverrides[tag.name].map { $0.applied(to: tag) } ?? tag })
    }

    mutating func checkAlarms() {
        let deviceNames = draft.devices.map(\.0.name)
        for (a, n) in draft.alarms {
            if a.kind == .deviceAlarm, let d = draft.devices.first(where: { $0.0.name == a.device })?.0,
                d.efm == nil
            {
                let dn = Self.field(n, "device")
                log.error(
                    dn.location, dn.path,
                    "a device-alarm comes from the flow computer's event log: device '\(a.device)' needs `efm: {meter: ...}` (and a template with an EFM profile)"
                )
            }
            guard let (device, tags) = tagsOf(device: a.device) else {
                if !deviceNames.contains(a.device) && !draft.broken.contains(a.device) {
                    let dn = Self.field(n, "device")
                    log.error(
                        dn.location, dn.path,
                        "unknown device '\(a.device)'\(Suggestion.hint(for: a.device, in: deviceNames))")
                }
                continue
            }
            if let tagName = a.tag {
                let tn = Self.field(n, "tag")
                guard let tag = tags.first(where: { $0.name == tagName }) else {
                    log.error(
                        tn.location, tn.path,
                        "device '\(a.device)' (template \(device.template)) has no tag '\(tagName)'\(Suggestion.hint(for: tagName, in: tags.map(\.name)))"
                    )
                    continue
                }
                let numeric = ![.bool, .bit, .string].contains(tag.type)
                switch a.kind {
                case .limit where !numeric, .rate where !numeric:
                    log.error(
                        tn.location, tn.path,
                        "a \(a.kind.rawValue) alarm needs a numeric tag; '\(tagName)' is \(tag.type.rawValue)")
                case .state where tag.type == .string || tag.type == .float32 || tag.type == .float64:
                    log.error(
                        tn.location, tn.path,
                        "a state alarm needs a bool, bit or integer tag; '\(tagName)' is \(tag.type.rawValue)")
                case .state:
                    let sn = Self.field(n, "states")
                    let items = (sn.node.sequence.map(Array.init) ?? []).enumerated().map {
                        sn.item($0.offset, $0.element)
                    }
                    for name in a.alarmStateNames where tag.stateValue(named: name) == nil {
                        let known = tag.stateNames.sorted()
                        let hint =
                            known.isEmpty ? " (the tag defines no states)" : Suggestion.hint(for: name, in: known)
                        let at = items.first { $0.scalarText == name } ?? sn
                        log.error(at.location, at.path, "'\(name)' is not a state of \(a.device).\(tagName)\(hint)")
                    }
                case .stale:
                    if let after = a.after, after <= device.poll {
                        let an = Self.field(n, "after")
                        log.error(
                            an.location, an.path,
                            "\(after) is not longer than the device's poll interval \(device.poll); the alarm would chatter"
                        )
                    }
                default: break
                }
            }
            if let cond = a.suppressWhen { checkCondition(cond, alarm: a, Self.field(n, "suppressWhen")) }
        }
    }

    mutating func checkCondition(_ cond: ConditionExpression, alarm: AlarmRule, _ at: YNode) {
        for (ref, _, lit) in cond.condition.comparisons {
            let deviceName = ref.device ?? alarm.device
            guard let (_, tags) = tagsOf(device: deviceName) else {
                log.error(
                    at.location, at.path,
                    "condition refers to unknown device '\(deviceName)'\(Suggestion.hint(for: deviceName, in: draft.devices.map(\.0.name)))"
                )
                continue
            }
            guard let tag = tags.first(where: { $0.name == ref.tag }) else {
                log.error(
                    at.location, at.path,
                    "condition refers to '\(ref)', but device '\(deviceName)' has no tag '\(ref.tag)'\(Suggestion.hint(for: ref.tag, in: tags.map(\.name)))"
                )
                continue
            }
            if case .state(let s) = lit, tag.stateValue(named: s) == nil {
                let known = tag.stateNames.sorted()
                let hint = known.isEmpty ? " (the tag defines no states)" : Suggestion.hint(for: s, in: known)
                log.error(at.location, at.path, "'\(s)' is not a state of \(deviceName).\(ref.tag)\(hint)")
            }
            if tag.type == .string {
                log.error(
                    at.location, at.path,
                    "condition compares string tag '\(ref)'; only numeric, bool and bit tags can be compared")
            }
        }
    }

    func resolveStates(_ a: inout AlarmRule) {
        guard a.kind == .state, let tagName = a.tag, let (_, tags) = tagsOf(device: a.device),
            let tag = tags.first(where: { $0.name == tagName })
        else { return }
        for name in a.alarmStateNames {
            if let v = tag.stateValue(named: name) { a.alarmStates = (a.alarmStates ?? []) + [Double(v)] }
        }
    }

    /// Each device's cycle must fit its poll interval; all devices of a bus together must fit the bus.
    mutating func checkBusCapacity() {
        for (bus, bn) in draft.buses {
            var load = 0.0
            var names: [String] = []
            var deviceTooSlow = false
            for (d, n) in draft.devices where d.bus == bus.name && d.enabled {
                guard let t = draft.templates.first(where: { $0.0.name == d.template })?.0 else { continue }
                let limits = d.limitOverrides?.applied(to: t.limits) ?? t.limits
                let tags = t.tags.map { tag in d.tagOverrides[tag.name].map { $0.applied(to: tag) } ?? tag }
                let plan = ReadPlanner.plan(
                    tags: tags, limits: limits, timing: BusTiming.of(bus, turnaround: limits.turnaround))
                let cycle = plan.busSeconds
                if cycle > d.poll.seconds {
                    let pn = Self.field(n, "poll")
                    let speed = bus.kind == .tcp ? "" : bus.serial.map { " at \($0.baud) baud" } ?? ""
                    let fix =
                        bus.kind == .tcp
                        ? "lengthen the poll interval" : "lengthen the poll interval or raise the baud rate"
                    log.error(
                        pn.location, pn.path,
                        "\(d.poll) is shorter than one poll cycle of '\(d.name)': \(plan.requests.count) request\(plan.requests.count == 1 ? "" : "s") take \(Self.ms(cycle))\(speed) on bus \(bus.name); \(fix)"
                    )
                    deviceTooSlow = true
                }
                load += cycle / d.poll.seconds
                names.append(d.name)
            }
            if load > 1 && !deviceTooSlow {
                let at = Self.field(bn, "name")
                log.warning(
                    at.location, bn.path,
                    "bus \(bus.name) needs \(Int((load * 100).rounded()))% of its time to poll \(names.joined(separator: ", ")) on schedule; polls will run late (lengthen poll intervals\(bus.kind == .tcp ? "" : " or raise the baud rate"))"
                )
            }
        }
    }

    static func ms(_ seconds: Double) -> String {
        seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : String(format: "%.2f s", seconds)
    }

    mutating func checkFiles() {
        if let (path, n) = draft.tokenFile {
            if let mode = files.permissions(path) {
                if mode & 0o077 != 0 {
                    log.error(
                        n.location, n.path,
                        "token file \(path) is readable by others (mode \(String(mode & 0o777, radix: 8))); run: chmod 600 \(path)"
                    )
                }
            } else {
                log.warning(
                    n.location, n.path,
                    "token file \(path) does not exist; readings are buffered but not uploaded until it does")
            }
        }
        for (path, n) in draft.tlsFiles where files.permissions(path) == nil {
            log.warning(n.location, n.path, "\(path) does not exist; the uplink cannot connect until it does")
        }
    }
}
