import Foundation
import Yams

extension ConfigParser {
    static let templateKeys = ["name", "description", "addressing", "limits", "tags", "efm"]

    /// A `templates:` entry: `{include: path}` or an inline template. Includes are read later by the loader
    /// and return nil here.
    mutating func templateEntry(_ n: YNode) -> (DeviceTemplate, [YNode])? {
        if let m = n.node.mapping, m.keys.contains(where: { $0.scalar?.string == "include" }) {
            for (k, _) in m where k.scalar?.string != "include" {
                let kn = YNode(node: k, path: n.path, file: n.file)
                r.log.error(
                    kn.location, n.child(k.scalar?.string ?? "?", k).path,
                    "unknown key '\(k.scalar?.string ?? "?")'; an include entry takes only 'include' (the template file holds the rest)"
                )
            }
            let im = n.child("include", m["include"]!)
            if let path = r.scalar(im, expected: "a template file path") { includes.append((path, im)) }
            return nil
        }
        return template(n, file: nil)
    }

    /// A template and the nodes of its tags (parallel to `tags`).
    mutating func template(_ n: YNode, file: String?) -> (DeviceTemplate, [YNode])? {
        guard let m = r.map(n, known: Self.templateKeys) else { return nil }
        let name = r.name(m, "name")
        let description = r.string(m, "description")
        guard let addressing = r.word(m, "addressing", as: AddressConvention.self, required: true) else {
            _ = r.list(m, "tags")
            return nil
        }
        var limits = DeviceLimits()
        if let ln = m["limits"],
            let lm = r.map(ln, known: ["maxRegisters", "maxBits", "maxGap", "neverRead", "turnaround"])
        {
            if let v = r.int(lm, "maxRegisters", range: 1...125) { limits.maxRegisters = v }
            if let v = r.int(lm, "maxBits", range: 1...2000) { limits.maxBits = v }
            if let v = r.int(lm, "maxGap", range: 0...124) { limits.maxGap = v }
            if let v = r.duration(lm, "turnaround", max: .seconds(10)) { limits.turnaround = v }
            for item in r.list(lm, "neverRead") ?? [] {
                if let range = neverRead(item, addressing) { limits.neverRead.append(range) }
            }
        }
        var efm: String?
        if let en = m["efm"], let profile = r.scalar(en, expected: "an EFM profile name") {
            // Kept even when unknown (reported here): its devices are not told again that it names none.
            efm = profile
            if EFMProfile.builtIn(named: profile) == nil {
                r.log.error(
                    en.location, en.path,
                    "unknown EFM profile '\(profile)'; the built-in profiles are \(EFMProfile.builtInNames.joined(separator: ", "))"
                        + Suggestion.hint(for: profile, in: EFMProfile.builtInNames))
            }
        }
        var tags: [TagDefinition] = []
        var nodes: [YNode] = []
        let tagNodes = r.list(m, "tags", required: true) ?? []
        if tagNodes.isEmpty, let tn = m["tags"] {
            r.log.error(tn.location, tn.path, "a template needs at least one tag")
        }
        for tn in tagNodes {
            if let t = tag(tn, addressing) { tags.append(t); nodes.append(tn) }
        }
        guard let name else { return nil }
        return (
            DeviceTemplate(
                name: name, description: description, sourceFile: file, addressing: addressing,
                limits: limits, tags: tags, efm: efm), nodes
        )
    }

    /// A neverRead entry: `"40101-40199"` (Modicon numbering) or `{table: holding, from: 100, to: 199}`.
    mutating func neverRead(_ n: YNode, _ conv: AddressConvention) -> AddressRange? {
        if let text = n.node.scalar?.string {
            guard conv == .modicon else {
                r.log.error(n.location, n.path, "with wire addressing, write {table: holding, from: A, to: B}")
                return nil
            }
            let parts = text.split(separator: "-", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
            guard let a = Modicon.parse(parts[0]), let b = Modicon.parse(parts.count > 1 ? parts[1] : parts[0]),
                a.table == b.table
            else {
                r.log.error(n.location, n.path, "'\(text)' is not a Modicon address or range such as 40101-40199")
                return nil
            }
            guard a.address <= b.address else {
                r.log.error(n.location, n.path, "range '\(text)' runs backwards"); return nil
            }
            return AddressRange(table: a.table, first: a.address, last: b.address)
        }
        guard let m = r.map(n, known: ["table", "from", "to"]) else { return nil }
        var table = r.word(m, "table", as: RegisterTable.self, required: conv == .wire)
        guard let fn = r.present(m, "from", required: true), var from = address(fn, conv, &table) else { return nil }
        var to = from
        if let tn = m["to"], let t = address(tn, conv, &table) { to = t }
        if from > to { r.log.error(n.location, n.path, "'from' is after 'to'"); swap(&from, &to) }
        guard let table else { return nil }
        return AddressRange(table: table, first: from, last: to)
    }

    /// Reads an address in the template's convention; a Modicon number also names (or must agree with) the table.
    mutating func address(_ n: YNode, _ conv: AddressConvention, _ table: inout RegisterTable?) -> Int? {
        guard let text = r.scalar(n, expected: "an address") else { return nil }
        switch conv {
        case .enron:
            guard let v = Int(text), let width = EnronRegister.width(of: v) else {
                r.log.error(
                    n.location, n.path,
                    "'\(text)' is not an Enron register (1001-1999 booleans, 3001-3999 int16, 5001-5999 int32, 7000-9999 float32)"
                )
                return nil
            }
            let inferred: RegisterTable = width == .boolean ? .coil : .holding
            if let t = table, t != inferred {
                r.log.error(
                    n.location, n.path,
                    "Enron register \(v) is read as \(inferred.rawValue), not \(t.rawValue); leave 'table' out")
                return nil
            }
            table = inferred
            return v
        case .wire:
            let v = text.lowercased().hasPrefix("0x") ? Int(text.dropFirst(2), radix: 16) : Int(text)
            guard let v, (0...65535).contains(v) else {
                r.log.error(n.location, n.path, "'\(text)' is not a wire address 0...65535"); return nil
            }
            return v
        case .modicon:
            guard let parsed = Modicon.parse(text) else {
                r.log.error(
                    n.location, n.path,
                    "'\(text)' is not a Modicon address (00001-09999, 10001-19999, 30001-39999, 40001-49999, or six digits)"
                )
                return nil
            }
            if let t = table, t != parsed.table {
                r.log.error(
                    n.location, n.path,
                    "Modicon address \(text) is in the \(parsed.table.rawValue) table, not \(t.rawValue)")
                return nil
            }
            table = parsed.table
            return parsed.address
        }
    }

    /// The value type an Enron register's range decides.
    static func enronType(_ register: Int) -> ValueType? {
        switch EnronRegister.width(of: register) {
        case .boolean?: .bool
        case .int16?: .int16
        case .int32?: .int32
        case .float32?: .float32
        case nil: nil
        }
    }

    static let tagKeys = [
        "name", "table", "address", "type", "bit", "length", "order", "scale", "offset", "span",
        "units", "deadband", "integrity", "states", "description"
    ]

    mutating func tag(_ n: YNode, _ conv: AddressConvention) -> TagDefinition? {
        guard let m = r.map(n, known: Self.tagKeys) else { return nil }
        let name = r.name(m, "name", identifier: true)
        _ = r.string(m, "description")
        var table = r.word(m, "table", as: RegisterTable.self, required: conv == .wire)
        let addr = r.present(m, "address", required: true).flatMap { address($0, conv, &table) }
        guard let table else { return nil }
        let enronType: ValueType? = conv == .enron ? addr.flatMap(Self.enronType) : nil
        let type = r.word(m, "type", as: ValueType.self) ?? enronType ?? (table.isBitTable ? .bool : .uint16)
        let typeNode = m["type"] ?? n
        if let enronType, type != enronType, !(enronType == .int16 && [.uint16, .bit].contains(type)) {
            r.log.error(
                typeNode.location, typeNode.path,
                "Enron register \(addr ?? 0) holds \(enronType.rawValue), not \(type.rawValue); leave 'type' out")
        }
        if table.isBitTable && type != .bool {
            r.log.error(typeNode.location, typeNode.path, "\(table.rawValue) tables hold single bits; use type bool")
        } else if !table.isBitTable && type == .bool {
            r.log.error(
                typeNode.location, typeNode.path,
                "bool is for coils and discrete inputs; for one bit of a register use type bit with 'bit: N'")
        }
        var bit: Int?
        if type == .bit {
            bit = r.int(m, "bit", range: 0...15, required: true)
        } else if let bn = m["bit"] {
            r.log.error(bn.location, bn.path, "'bit' applies only to type bit")
        }
        var length: Int?
        if type == .string {
            length = r.int(m, "length", range: 1...123, required: true)
        } else if let ln = m["length"] {
            r.log.error(
                ln.location, ln.path,
                "'length' applies only to type string; \(type.rawValue) is \(type.registerCount(stringLength: 0)) register(s)"
            )
        }
        var order: WordOrder?
        if let on = m["order"] {
            order = r.word(on, as: WordOrder.self)
            if type == .string {
                if let o = order, o != .abcd && o != .badc {
                    r.log.error(on.location, on.path, "strings take ABCD (high byte first) or BADC (bytes swapped)")
                }
            } else if !type.isMultiRegister {
                r.log.error(
                    on.location, on.path,
                    "order applies to 32- and 64-bit values; \(type.rawValue) is a single register")
                order = nil
            }
        }
        let numeric = ![.bool, .bit, .string].contains(type)
        let span = m["span"].flatMap { self.span($0) }
        if !numeric {
            for key in ["scale", "offset", "span", "deadband"] where m.has(key) {
                r.log.error(m[key]!.location, m[key]!.path, "'\(key)' applies to numeric types, not \(type.rawValue)")
            }
        } else if span != nil, m.has("scale") || m.has("offset") {
            r.log.error(m["span"]!.location, m["span"]!.path, "give either span or scale/offset, not both")
        }
        let scale = r.double(m, "scale") ?? 1
        if scale == 0, let sn = m["scale"] { r.log.error(sn.location, sn.path, "scale must not be 0") }
        let offset = r.double(m, "offset") ?? 0
        let units = r.string(m, "units")
        let deadband = numeric ? deadband(m, span: span) : nil
        let integrity = r.duration(m, "integrity", min: .seconds(1), max: .hours(24 * 7))
        var states: [NamedState]?
        if let sn = m["states"] {
            if let mapping = sn.node.mapping {
                var out: [Int: String] = [:]
                for (k, v) in mapping {
                    let kn = YNode(node: k, path: sn.path, file: sn.file)
                    guard let key = r.int(kn) else { continue }
                    let vn = sn.child(String(key), v)
                    guard let label = r.scalar(vn, expected: "a state name") else { continue }
                    guard NameRules.isValid(label, identifier: true) else {
                        r.log.error(
                            vn.location, vn.path, "'\(label)' is not a valid state name (letters, digits and '_')")
                        continue
                    }
                    if out.values.contains(label) {
                        r.log.error(vn.location, vn.path, "state name '\(label)' is used twice")
                    }
                    out[key] = label
                }
                states = out.keys.sorted().map { NamedState(value: $0, name: out[$0]!) }
            } else {
                r.log.error(
                    sn.location, sn.path, "expected a mapping of value to state name, e.g. {0: stopped, 1: running}")
            }
        }
        guard let name, let addr else { return nil }
        var tag = TagDefinition(
            name: name, table: table, address: addr, type: type, bit: bit, length: length,
            order: order, scale: scale, offset: offset, span: span, units: units,
            deadband: deadband, integrity: integrity, states: states)
        if conv == .enron { tag.enron = true }
        if tag.lastAddress > 65535, let an = m["address"] {
            r.log.error(
                an.location, an.path,
                "\(tag.type.rawValue) at wire address \(addr) needs \(tag.width) registers and runs past 65535")
            return nil
        }
        return tag
    }

    mutating func span(_ n: YNode) -> Span? {
        guard let m = r.map(n, known: ["raw", "eng"]) else { return nil }
        func pair(_ key: String) -> (Double, Double)? {
            guard let items = r.list(m, key, required: true) else { return nil }
            guard items.count == 2 else {
                r.log.error(m[key]!.location, m[key]!.path, "expected [low, high]")
                return nil
            }
            guard let a = r.double(items[0]), let b = r.double(items[1]) else { return nil }
            return (a, b)
        }
        guard let raw = pair("raw"), let eng = pair("eng") else { return nil }
        if raw.0 == raw.1 {
            r.log.error(m["raw"]!.location, m["raw"]!.path, "raw low and high must differ")
            return nil
        }
        return Span(rawLow: raw.0, rawHigh: raw.1, engLow: eng.0, engHigh: eng.1)
    }

    /// `deadband: 0.5` (engineering units) or `deadband: 1%` (of the span).
    mutating func deadband(_ m: YMap, span: Span?, spanCheckedLater: Bool = false) -> Deadband? {
        guard let n = m["deadband"], let text = r.scalar(n, expected: "a deadband") else { return nil }
        if text.hasSuffix("%") {
            guard let p = Double(text.dropLast().trimmingCharacters(in: .whitespaces)), p >= 0, p <= 100 else {
                r.log.error(n.location, n.path, "expected a percentage 0...100%, got '\(text)'"); return nil
            }
            if span == nil && !spanCheckedLater {
                r.log.error(
                    n.location, n.path, "a deadband in % needs the tag's span; give an absolute deadband instead")
                return nil
            }
            return .percentOfSpan(p)
        }
        guard let v = Double(text), v >= 0 else {
            r.log.error(n.location, n.path, "expected a non-negative number or a percentage such as 1%, got '\(text)'");
            return nil
        }
        return .absolute(v)
    }
}

/// Modicon register numbering: 0xxxx coils, 1xxxx discrete inputs, 3xxxx input registers, 4xxxx holding
/// registers, five digits (up to 9999 per table) or six (up to 65536). 40001 is holding wire address 0.
public enum Modicon {
    public static func parse(_ text: String) -> (table: RegisterTable, address: Int)? {
        let digits = text.trimmingCharacters(in: .whitespaces)
        guard !digits.isEmpty, digits.allSatisfy(\.isNumber), let value = Int(digits) else { return nil }
        let width = digits.count == 6 ? 6 : 5
        guard digits.count <= 6 else { return nil }
        let base = width == 6 ? 100_000 : 10_000
        let prefix = digits.count < width ? 0 : value / base
        let number = value % base
        let table: RegisterTable
        switch prefix {
        case 0: table = .coil
        case 1: table = .discrete
        case 3: table = .input
        case 4: table = .holding
        default: return nil
        }
        guard number >= 1, number <= (width == 6 ? 65536 : 9999) else { return nil }
        return (table, number - 1)
    }

    /// The five- or six-digit Modicon number of a wire address.
    public static func format(_ table: RegisterTable, _ address: Int) -> String {
        let n = address + 1
        return n <= 9999
            ? "\(table.modiconPrefix)\(String(format: "%04d", n))"
            : "\(table.modiconPrefix)\(String(format: "%05d", n))"
    }
}
