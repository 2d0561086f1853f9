import Foundation
import Yams

/// Turns YAML nodes into the config model, recording every problem instead of stopping at the first.
///
/// The parser checks what one field can tell on its own (types, ranges, keys that apply); cross-references
/// and bus capacity are `ConfigValidator`'s.
struct ConfigParser {
    var r = YAMLReader()
    /// Template files to read: (path as written, node where it was named).
    var includes: [(path: String, at: YNode)] = []
    /// The text of each file read, by line, for placing errors inside multi-line scalars.
    var sources: [String: [Substring]] = [:]

    static let topKeys = ["gateway", "uplink", "storage", "buses", "templates", "devices", "alarms"]

    /// Parts of the document, each nil when it could not be read.
    struct Draft {
        var gateway: GatewayConfig?
        var uplink: UplinkConfig?
        var storage: StorageConfig?
        var buses: [(BusConfig, YNode)] = []
        /// Each template with its root node and the nodes of its tags, in the order of `tags`.
        var templates: [(DeviceTemplate, YNode)] = []
        var tagNodes: [[YNode]] = []
        /// Names of buses, templates and devices that were written but could not be read: references to
        /// them are not reported again as unknown.
        var broken: Set<String> = []
        /// An included template file could not be read or parsed.
        var brokenInclude = false
        var endpointNode: YNode?
        var devicesNode: YNode?
        var devices: [(DeviceConfig, YNode)] = []
        var alarms: [(AlarmRule, YNode)] = []
        var tokenFile: (String, YNode)?
        var tlsFiles: [(String, YNode)] = []

        mutating func markBroken(_ n: YNode) {
            if let name = n.node.mapping?["name"]?.scalar?.string { broken.insert(name) }
        }
    }

    mutating func parseDocument(_ root: YNode) -> Draft {
        var d = Draft()
        guard let m = r.map(root, known: Self.topKeys) else { return d }
        if let n = r.present(m, "gateway", required: true) { d.gateway = gateway(n) }
        if let n = r.present(m, "uplink", required: true) { d.uplink = uplink(n, &d) }
        if let n = r.present(m, "storage", required: true) { d.storage = storage(n) }
        d.endpointNode = m["uplink"].map { ConfigValidator.field($0, "endpoint") }
        d.devicesNode = m["devices"]
        for n in r.list(m, "buses", required: true) ?? [] {
            if let b = bus(n) { d.buses.append((b, n)) } else { d.markBroken(n) }
        }
        for n in r.list(m, "templates") ?? [] {
            if let (t, tags) = templateEntry(n) {
                d.templates.append((t, n)); d.tagNodes.append(tags)
            } else {
                d.markBroken(n)
            }
        }
        for n in r.list(m, "devices", required: true) ?? [] {
            if let dev = device(n) { d.devices.append((dev, n)) } else { d.markBroken(n) }
        }
        for n in r.list(m, "alarms") ?? [] {
            if let a = alarm(n) { d.alarms.append((a, n)) }
        }
        return d
    }

    // MARK: gateway, uplink, storage

    mutating func gateway(_ n: YNode) -> GatewayConfig? {
        guard let m = r.map(n, known: ["id", "site", "tenant", "healthInterval"]) else { return nil }
        let health = r.duration(m, "healthInterval", min: .seconds(10), max: .hours(24)) ?? .minutes(5)
        let id = r.name(m, "id")
        let site = r.string(m, "site", required: true)
        var tenant = r.string(m, "tenant", required: true)
        if let t = tenant, !Self.isDNSLabel(t), let tn = m["tenant"] {
            r.log.error(
                tn.location, tn.path,
                "'\(t)' is not a tenant slug (lowercase letters, digits and '-', as in <tenant>.wellpulse.io)")
            tenant = nil
        }
        guard let id, let site, let tenant else { return nil }
        return GatewayConfig(id: id, site: site, tenant: tenant, healthInterval: health)
    }

    static func isDNSLabel(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 63 && !s.hasPrefix("-") && !s.hasSuffix("-")
            && s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }

    mutating func uplink(_ n: YNode, _ d: inout Draft) -> UplinkConfig? {
        guard
            let m = r.map(
                n,
                known: [
                    "endpoint", "tls", "token", "batch", "monthlyBudget",
                    "connectTimeout", "requestTimeout", "proxy"
                ])
        else { return nil }
        var endpoint = r.string(m, "endpoint", required: true)
        if let e = endpoint, let en = m["endpoint"] {
            let url = URL(string: e)
            if url?.scheme?.lowercased() != "https" {
                r.log.error(en.location, en.path, "'\(e)' is not an https URL; the uplink only speaks TLS")
                endpoint = nil
            } else if url?.host?.isEmpty ?? true {
                r.log.error(en.location, en.path, "'\(e)' has no host")
                endpoint = nil
            }
        }
        var tls = TLSSettings()
        if let tn = m["tls"], let tm = r.map(tn, known: ["caFile", "pinnedPublicKey", "clientCertificate", "clientKey"])
        {
            tls.caFile = r.string(tm, "caFile")
            tls.pinnedPublicKey = r.string(tm, "pinnedPublicKey")
            tls.clientCertificate = r.string(tm, "clientCertificate")
            tls.clientKey = r.string(tm, "clientKey")
            if let pin = tls.pinnedPublicKey, let pn = tm["pinnedPublicKey"] {
                let b64 = pin.hasPrefix("sha256//") ? String(pin.dropFirst(8)) : ""
                if Data(base64Encoded: b64)?.count != 32 {
                    r.log.error(
                        pn.location, pn.path,
                        "expected 'sha256//' and the base64 SHA-256 of the server's public key, got '\(pin)'")
                }
            }
            if (tls.clientCertificate == nil) != (tls.clientKey == nil) {
                r.log.error(tn.location, tn.path, "clientCertificate and clientKey go together (mutual TLS needs both)")
            }
            for key in ["caFile", "clientCertificate", "clientKey"] {
                if let fn = tm[key], let path = fn.scalarText { d.tlsFiles.append((path, fn)) }
            }
        }
        var token: TokenSource?
        if let tn = r.present(m, "token", required: true), let tm = r.map(tn, known: ["file", "credential"]) {
            let file = r.string(tm, "file")
            let cred = r.name(tm, "credential", required: false)
            switch (file, cred) {
            case (let f?, nil):
                token = .file(f)
                d.tokenFile = (f, tm["file"]!)
            case (nil, let c?): token = .credential(c)
            case (nil, nil):
                if tm.keys.isEmpty {
                    r.log.error(
                        tn.location, tn.path,
                        "give the token as 'file: PATH' (mode 0600) or 'credential: NAME' (systemd LoadCredential=)")
                }
            default:
                r.log.error(tn.location, tn.path, "give either 'file' or 'credential', not both")
            }
        }
        var batch = BatchLimits.default
        if let bn = m["batch"], let bm = r.map(bn, known: ["maxRecords", "maxBytes", "maxAge"]) {
            if let v = r.int(bm, "maxRecords", range: 1...100_000) { batch.maxRecords = v }
            if let v = r.bytes(bm, "maxBytes", min: ByteCount(bytes: 4096)) { batch.maxBytes = v }
            if let v = r.duration(bm, "maxAge", min: .seconds(1), max: .hours(24)) { batch.maxAge = v }
        }
        let budget = r.bytes(m, "monthlyBudget", min: ByteCount(bytes: 100_000))
        let connect = r.duration(m, "connectTimeout", min: .seconds(1), max: .minutes(5)) ?? .seconds(15)
        let request = r.duration(m, "requestTimeout", min: .seconds(1), max: .minutes(30)) ?? .seconds(120)
        var proxy = r.string(m, "proxy")
        if let p = proxy, let pn = m["proxy"], URL(string: p)?.host == nil {
            r.log.error(pn.location, pn.path, "'\(p)' is not a proxy URL such as http://proxy.example:3128")
            proxy = nil
        }
        guard let endpoint, let token else { return nil }
        return UplinkConfig(
            endpoint: endpoint, tls: tls, token: token, batch: batch, monthlyBudget: budget,
            connectTimeout: connect, requestTimeout: request, proxy: proxy)
    }

    mutating func storage(_ n: YNode) -> StorageConfig? {
        guard let m = r.map(n, known: ["path", "maxBytes", "retention", "stuckAfter"]) else { return nil }
        let path = r.string(m, "path", required: true)
        let maxBytes = r.bytes(m, "maxBytes", min: ByteCount(bytes: 1 << 20)) ?? ByteCount(bytes: 256 << 20)
        let retention = r.duration(m, "retention", min: .hours(1)) ?? .hours(24 * 90)
        let stuckAfter = r.duration(m, "stuckAfter", min: .seconds(2), max: .hours(1)) ?? .seconds(60)
        guard let path else { return nil }
        return StorageConfig(path: path, maxBytes: maxBytes, retention: retention, stuckAfter: stuckAfter)
    }

    // MARK: buses

    static let busKeys: [BusConfig.Kind: Set<String>] = {
        let common: Set = ["name", "type", "interFrameDelay", "responseTimeout", "retries"]
        let serial: Set = ["baud", "parity", "dataBits", "stopBits", "byteTimeout"]
        let tcp: Set = ["host", "port", "connectTimeout"]
        return [
            .rtu: common.union(serial).union(["device", "rs485"]),
            .tcp: common.union(tcp),
            .rtuOverTCP: common.union(serial).union(tcp)
        ]
    }()

    mutating func bus(_ n: YNode) -> BusConfig? {
        let all = Self.busKeys.values.reduce(into: Set<String>()) { $0.formUnion($1) }
        guard let m = r.map(n, known: all.sorted()) else { return nil }
        let name = r.name(m, "name")
        guard let kind = r.word(m, "type", as: BusConfig.Kind.self, required: true) else { return nil }
        for key in m.keys where !Self.busKeys[kind]!.contains(key) {
            let kn = m.keyNode(key) ?? n
            r.log.error(kn.location, kn.path, "'\(key)' does not apply to a bus of type \(kind.rawValue)")
        }
        let isSerial = kind != .tcp
        var serial: SerialLine?
        if isSerial {
            var line = SerialLine(baud: 9600, parity: .none, dataBits: 8, stopBits: 1)
            if let bn = m["baud"], let b = r.int(bn) {
                if SerialLine.standardBauds.contains(b) {
                    line.baud = b
                } else {
                    r.log.error(
                        bn.location, bn.path,
                        "\(b) is not a standard baud rate (\(SerialLine.standardBauds.map(String.init).joined(separator: ", ")))"
                    )
                }
            }
            if let p = r.word(m, "parity", as: SerialLine.Parity.self) { line.parity = p }
            if let v = r.int(m, "dataBits", range: 7...8) { line.dataBits = v }
            if let v = r.int(m, "stopBits", range: 1...2) { line.stopBits = v }
            serial = line
        }
        var device: String?
        if kind == .rtu {
            device = r.string(m, "device", required: true)
            if let dv = device, !dv.hasPrefix("/"), let dn = m["device"] {
                r.log.error(
                    dn.location, dn.path, "'\(dv)' is not a device path such as /dev/ttyS1 or /dev/serial/by-id/...")
                device = nil
            }
        }
        var rs485: RS485Settings?
        if kind == .rtu, let rn = m["rs485"],
            let rm = r.map(rn, known: ["rtsOnSend", "rtsAfterSend", "delayBeforeSend", "delayAfterSend"])
        {
            rs485 = RS485Settings(
                rtsOnSend: r.bool(rm, "rtsOnSend") ?? true,
                rtsAfterSend: r.bool(rm, "rtsAfterSend") ?? false,
                delayBeforeSend: r.duration(rm, "delayBeforeSend", max: .seconds(1)) ?? TimeSpan(milliseconds: 0),
                delayAfterSend: r.duration(rm, "delayAfterSend", max: .seconds(1)) ?? TimeSpan(milliseconds: 0))
        }
        var endpoint: TCPEndpoint?
        if kind != .rtu {
            let host = r.string(m, "host", required: true)
            let port = r.int(m, "port", range: 1...65535, required: kind == .rtuOverTCP) ?? 502
            let connect =
                r.duration(m, "connectTimeout", min: TimeSpan(milliseconds: 100), max: .minutes(1)) ?? .seconds(3)
            if let host { endpoint = TCPEndpoint(host: host, port: port, connectTimeout: connect) }
        }
        let ifd = r.duration(m, "interFrameDelay", max: .seconds(10)) ?? TimeSpan(milliseconds: isSerial ? 50 : 0)
        let resp = r.duration(m, "responseTimeout", min: TimeSpan(milliseconds: 10), max: .seconds(60)) ?? .seconds(1)
        let byteTimeout =
            isSerial
            ? (r.duration(m, "byteTimeout", min: TimeSpan(milliseconds: 1), max: .seconds(10))
                ?? TimeSpan(milliseconds: 50)) : nil
        let retries = r.int(m, "retries", range: 0...5) ?? 1
        guard let name, kind != .rtu || device != nil, kind == .rtu || endpoint != nil else { return nil }
        return BusConfig(
            name: name, kind: kind, device: device, serial: serial, rs485: rs485, endpoint: endpoint,
            interFrameDelay: ifd, responseTimeout: resp, byteTimeout: byteTimeout, retries: retries)
    }

    // MARK: devices

    mutating func device(_ n: YNode) -> DeviceConfig? {
        guard
            let m = r.map(
                n,
                known: [
                    "name", "bus", "unit", "template", "poll", "enabled", "offlineAfter",
                    "maxBackoff", "limits", "tags", "description", "efm"
                ])
        else { return nil }
        let name = r.name(m, "name")
        let bus = r.name(m, "bus")
        let unit = r.int(m, "unit", range: 0...255, required: true)
        let template = r.name(m, "template")
        let poll = r.duration(m, "poll", min: TimeSpan(milliseconds: 100), max: .hours(24)) ?? .seconds(10)
        let enabled = r.bool(m, "enabled") ?? true
        let offlineAfter = r.int(m, "offlineAfter", range: 1...100) ?? 3
        let maxBackoff = r.duration(m, "maxBackoff", min: .seconds(1), max: .hours(1)) ?? .minutes(5)
        _ = r.string(m, "description")
        var limits: LimitOverrides?
        if let ln = m["limits"], let lm = r.map(ln, known: ["maxRegisters", "maxBits", "maxGap", "turnaround"]) {
            limits = LimitOverrides(
                maxRegisters: r.int(lm, "maxRegisters", range: 1...125),
                maxBits: r.int(lm, "maxBits", range: 1...2000),
                maxGap: r.int(lm, "maxGap", range: 0...124),
                turnaround: r.duration(lm, "turnaround", max: .seconds(10)))
        }
        var overrides: [String: TagOverride] = [:]
        if let tn = m["tags"], let mapping = tn.node.mapping {
            for (k, v) in mapping {
                guard let tag = k.scalar?.string else { continue }
                let child = tn.child(tag, v)
                guard let om = r.map(child, known: ["scale", "offset", "span", "units", "deadband", "integrity"]) else {
                    continue
                }
                let span = om["span"].flatMap { self.span($0) }
                if span != nil, om.has("scale") || om.has("offset") {
                    r.log.error(child.location, child.path, "give either span or scale/offset, not both")
                }
                overrides[tag] = TagOverride(
                    scale: r.double(om, "scale"), offset: r.double(om, "offset"), span: span,
                    units: r.string(om, "units"), deadband: deadband(om, span: span, spanCheckedLater: true),
                    integrity: r.duration(om, "integrity", min: .seconds(1), max: .hours(24 * 7)))
            }
        } else if let tn = m["tags"] {
            r.log.error(tn.location, tn.path, "expected a mapping of tag name to overrides, got \(tn.kindDescription)")
        }
        let efm = m["efm"].flatMap { efmDevice($0) }
        guard let name, let bus, let unit, let template else { return nil }
        return DeviceConfig(
            name: name, bus: bus, unit: unit, template: template, poll: poll, enabled: enabled,
            offlineAfter: offlineAfter, maxBackoff: maxBackoff, limitOverrides: limits, tagOverrides: overrides,
            efm: efm)
    }

    /// A device's `efm:` block: `{meter: PECOS17-M1, contractHour: 9, collect: true}`.
    mutating func efmDevice(_ n: YNode) -> EFMDeviceConfig? {
        guard let m = r.map(n, known: ["meter", "contractHour", "collect", "check"]) else { return nil }
        let meter = r.string(m, "meter", required: true)
        if let meter, let mn = m["meter"], !Self.isMeterID(meter) {
            r.log.error(
                mn.location, mn.path,
                "'\(meter)' is not a meter id (1–64 letters, digits, '.', '-' and '_', starting with a letter or digit)"
            )
        }
        let contractHour = r.int(m, "contractHour", range: 0...23)
        let collect = r.bool(m, "collect") ?? true
        let check = r.duration(m, "check", min: .seconds(1), max: .hours(1)) ?? .minutes(1)
        guard let meter, Self.isMeterID(meter) else { return nil }
        return EFMDeviceConfig(meter: meter, contractHour: contractHour, collect: collect, check: check)
    }

    static func isMeterID(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, s.unicodeScalars.count <= 64,
            CharacterSet.alphanumerics.contains(first), first.isASCII
        else { return false }
        return s.unicodeScalars.allSatisfy {
            $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0))
        }
    }
}
