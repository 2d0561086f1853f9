import ArgumentParser
import EdgeCore
import EdgeSystem
import Foundation
import ModbusPoller

/// Serial or TCP link options shared by `probe` and `scan`.
struct LinkOptions: ParsableArguments {
    @Option(help: "Modbus TCP endpoint HOST:PORT.") var tcp: String?
    @Option(help: "Serial device (RS-485 adapter).") var serial: String?
    @Option(help: "Baud rate.") var baud: Int = 9600
    @Option(help: "Parity: N, E or O.") var parity: String = "N"
    @Option(help: "Data bits.") var data: Int = 8
    @Option(help: "Stop bits.") var stop: Int = 1
    @Option(help: "Response timeout, e.g. 500ms.") var timeout: String = "1s"

    func bus(defaultTimeout: TimeSpan? = nil) throws -> BusConfig {
        let t = TimeSpan(parsing: timeout) ?? defaultTimeout ?? .seconds(1)
        if let tcp {
            let parts = tcp.split(separator: ":").map(String.init)
            guard parts.count == 2, let port = Int(parts[1]) else {
                throw ValidationError("--tcp takes HOST:PORT, got '\(tcp)'")
            }
            return BusConfig(
                name: tcp, kind: .tcp, device: nil, serial: nil, rs485: nil,
                endpoint: TCPEndpoint(host: parts[0], port: port, connectTimeout: .seconds(3)),
                interFrameDelay: TimeSpan(milliseconds: 0), responseTimeout: t, byteTimeout: nil, retries: 0)
        }
        guard let serial else { throw ValidationError("give --tcp HOST:PORT or --serial PATH") }
        let p: SerialLine.Parity =
            switch parity.uppercased() {
            case "E": .even;
            case "O": .odd;
            default: .none
            }
        return BusConfig(
            name: serial, kind: .rtu, device: serial,
            serial: SerialLine(baud: baud, parity: p, dataBits: data, stopBits: stop),
            rs485: nil, endpoint: nil, interFrameDelay: TimeSpan(milliseconds: 20), responseTimeout: t,
            byteTimeout: TimeSpan(milliseconds: 100), retries: 0)
    }
}

/// `edgectl probe`: read a device directly and show raw and decoded values.
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe", abstract: "Read registers from a device directly (no daemon needed).")
    @OptionGroup var link: LinkOptions
    @Option(help: "Unit id.") var unit: Int
    @Option(help: "holding, input, coil or discrete.") var table: String = "holding"
    @Option(help: "Wire address (0-based).") var address: Int
    @Option(help: "Registers or bits to read.") var count: Int = 1
    @Option(help: "Decode as this type (uint16, int16, uint32, int32, uint64, int64, float32, float64, string).")
    var type: String?
    @Option(help: "Word order for 32/64-bit types: ABCD, CDAB, BADC, DCBA.") var order: String = "ABCD"
    @Option(help: "Repeat every DURATION until interrupted, e.g. 1s.") var `repeat`: String?
    @Flag(help: "JSON output.") var json = false

    struct Output: Encodable {
        var unit: Int; var table: String; var address: Int; var raw: [UInt16]?; var bits: [Bool]?
        var decoded: [String]?; var error: String?; var latencyMillis: Double
    }

    func run() throws {
        guard let t = RegisterTable(rawValue: table) else {
            throw ValidationError("--table: one of holding, input, coil, discrete")
        }
        guard (1...(t.isBitTable ? 2000 : 125)).contains(count) else {
            throw ValidationError("--count: 1...\(t.isBitTable ? 2000 : 125) for \(t.rawValue)")
        }
        let vt = try type.map { s -> ValueType in
            guard let v = ValueType(rawValue: s), v != .bool, v != .bit else {
                throw ValidationError("--type: not a register type: \(s)")
            }
            return v
        }
        guard let wo = WordOrder(rawValue: order.uppercased()) else {
            throw ValidationError("--order: ABCD, CDAB, BADC or DCBA")
        }
        let bus = try link.bus()
        if let why = UnitID.refusal(unit, on: bus.kind) { throw ValidationError("--unit: \(why)") }
        let modbus = try ModbusLinks.make(for: bus)
        let every = `repeat`.flatMap(TimeSpan.init(parsing:))
        repeat {
            let t0 = SystemClock.monotonicNanos()
            var out = Output(unit: unit, table: t.rawValue, address: address, latencyMillis: 0)
            do {
                if t.isBitTable {
                    out.bits = try modbus.readBits(unit: unit, table: t, start: address, count: count)
                } else {
                    let regs = try modbus.readRegisters(unit: unit, table: t, start: address, count: count)
                    out.raw = regs
                    if let vt { out.decoded = Self.decode(regs, vt, wo, start: address) }
                }
            } catch {
                out.error = error.description
            }
            out.latencyMillis = Double(SystemClock.monotonicNanos() - t0) / 1e6
            print(json ? Self.json(out) : Self.text(out))
            fflush(nil)
            if let every { Thread.sleep(forTimeInterval: every.seconds) }
        } while every != nil
    }

    static func decode(_ regs: [UInt16], _ type: ValueType, _ order: WordOrder, start: Int) -> [String] {
        let width = type == .string ? regs.count : type.registerCount(stringLength: 0)
        var out: [String] = []
        var i = 0
        while i + width <= regs.count {
            let tag = TagDefinition(
                name: "v", table: .holding, address: start + i, type: type, bit: nil,
                length: type == .string ? width : nil,
                order: type.isMultiRegister ? order : nil, scale: 1, offset: 0, span: nil, units: nil,
                deadband: nil, integrity: nil, states: nil)
            let (v, q) = RegisterDecoder.decode(tag, registers: regs, start: start)
            out.append(v.map(\.description) ?? q.description)
            i += width
        }
        return out
    }

    static func text(_ o: Output) -> String {
        if let e = o.error { return "error: \(e)" }
        var lines: [String] = []
        if let raw = o.raw {
            for (i, r) in raw.enumerated() {
                lines.append(String(format: "%5d  0x%04X  %6u  %6d", o.address + i, r, r, Int16(bitPattern: r)))
            }
        }
        if let bits = o.bits { lines += bits.enumerated().map { "\(o.address + $0.offset)  \($0.element ? 1 : 0)" } }
        if let d = o.decoded { lines.append("decoded: " + d.joined(separator: ", ")) }
        lines.append(String(format: "(%.1f ms)", o.latencyMillis))
        return lines.joined(separator: "\n")
    }

    static func json<T: Encodable>(_ v: T) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: (try? e.encode(v)) ?? Data(), as: UTF8.self)
    }
}

/// `edgectl scan`: which unit ids answer on a line.
struct ScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan", abstract: "List the unit ids that answer on a serial line or TCP gateway.")
    @OptionGroup var link: LinkOptions
    @Option(help: "Unit ids to try, e.g. 1-247 or 1,2,10.") var units: String = "1-247"
    @Flag(help: "JSON output.") var json = false

    func run() throws {
        var ids: [Int] = []
        for part in units.split(separator: ",") {
            let r = part.split(separator: "-").compactMap { Int($0) }
            if r.count == 2, r[0] <= r[1] {
                ids += Array(r[0]...r[1])
            } else if r.count == 1 {
                ids.append(r[0])
            } else {
                throw ValidationError("--units: ranges like 1-247 or lists like 1,2,10")
            }
        }
        var bus = try link.bus()
        if let bad = ids.first(where: { !UnitID.isAddressable($0, on: bus.kind) }),
            let why = UnitID.refusal(bad, on: bus.kind)
        {
            throw ValidationError("--units: \(why)")
        }
        if link.timeout == "1s" { bus.responseTimeout = TimeSpan(milliseconds: 200) }
        let modbus = try ModbusLinks.make(for: bus)
        var found: [[String: String]] = []
        for u in ids {
            do {
                _ = try modbus.readRegisters(unit: u, table: .holding, start: 0, count: 1)
                found.append(["unit": "\(u)", "answer": "data"])
            } catch {
                switch error.kind {
                // A TCP gateway answers 0A/0B for unit ids with nothing behind them: not a device.
                case .exception(let c) where c != 10 && c != 11:
                    found.append(["unit": "\(u)", "answer": "exception \(c) (\(ModbusError.exceptionName(c)))"])
                case .link: Console.error(error.description); throw ExitCode(1)
                default: continue
                }
            }
            if !json {
                if let last = found.last, last["unit"] == "\(u)" {
                    print("unit \(u): answers (\(last["answer"]!))"); fflush(nil)
                }
            }
        }
        if json { print(ProbeCommand.json(found)) } else { print("\(found.count) of \(ids.count) unit ids answered") }
    }
}

/// `edgectl poll`: poll one configured device once through its template.
struct PollCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "poll", abstract: "Poll a configured device once and print every tag.")
    @Option(help: "Device name.") var device: String
    @Option(help: "Configuration file.") var config: String = ConfigLoader.defaultPath
    @Flag(help: "JSON output.") var json = false

    func run() throws {
        let c = try loadConfigOrExit(config, quietWarnings: true).config
        guard let d = c.device(named: device) else {
            Console.error(
                "no device '\(device)' in \(config); devices: \(c.devices.map(\.name).joined(separator: ", "))")
            throw ExitCode(1)
        }
        let bus = c.bus(named: d.bus)!
        let limits = c.effectiveLimits(of: d)
        let enron = c.template(named: d.template)?.addressing == .enron
        var poller = DevicePoller(
            config: d, tags: c.effectiveTags(of: d), limits: limits,
            timing: BusTiming.of(bus, turnaround: limits.turnaround),
            enron: enron ? (bus.kind == .tcp ? .tcp : .rtu) : nil)
        let outcome = poller.poll(over: try ModbusLinks.make(for: bus), bus: bus)
        if json {
            print(ProbeCommand.json(outcome.readings))
        } else {
            let units = Dictionary(poller.tags.map { ($0.name, $0.units ?? "") }, uniquingKeysWith: { a, _ in a })
            for r in outcome.readings {
                let value = r.value.map(\.description) ?? "—"
                print(
                    r.tag.padding(toLength: 28, withPad: " ", startingAt: 0)
                        + value.padding(toLength: 14, withPad: " ", startingAt: 0)
                        + (units[r.tag] ?? "").padding(toLength: 8, withPad: " ", startingAt: 0) + r.quality.description
                )
            }
            for e in outcome.errors { Console.error(e.description) }
            for a in poller.plan.adjustments { Console.error("plan: \(a)") }
        }
        if !outcome.answered { throw ExitCode(2) }
    }
}
