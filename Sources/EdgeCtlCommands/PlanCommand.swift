import ArgumentParser
import EdgeCore
import Foundation

/// `edgectl plan`: the read requests each device's poll cycle makes and the bus time they cost.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Show the read requests per poll cycle and the bus time they take.")
    @Option(help: "Configuration file.") var config: String = ConfigLoader.defaultPath
    @Option(help: "Only this device.") var device: String?
    @Flag(help: "JSON output.") var json = false

    struct DevicePlan: Codable {
        var device: String
        var bus: String
        var poll: TimeSpan
        var plan: ReadPlan
        var tagsPerRequest: [[String]]
        var oneRequestPerTagSeconds: Double
        /// For a device that collects EFM: its history requests' bus time (absent otherwise).
        var efm: EFMPlan?
    }

    /// What a flow computer's EFM collection costs on its bus (`EFMBusModel`, docs/efm.md).
    struct EFMPlan: Codable {
        var profile: String
        var meter: String
        /// Bus seconds of one request of each kind (`EFMBusModel.Request` names).
        var requestSeconds: [String: Double]
        var checkSeconds: Double
        var steadyStateSecondsPerHour: Double
        /// Share of the bus's time collection takes once caught up (0.01 is 1 %).
        var steadyStateShare: Double
        /// Bus seconds per second the live polls of the bus take.
        var liveLoad: Double
        var backfill: Backfill

        struct Backfill: Codable {
            var days: Int
            var hourlyRecords: Int
            var dailyRecords: Int
            /// Nil when the live polls never leave the slack a history request needs.
            var seconds: Double?
        }

        init(_ m: EFMBusModel, meter: String, days: Int = 35) {
            profile = m.profile.name
            self.meter = meter
            requestSeconds = Dictionary(
                uniqueKeysWithValues: EFMBusModel.Request.allCases.map { ($0.rawValue, m.seconds($0)) })
            checkSeconds = m.checkSeconds
            steadyStateSecondsPerHour = m.steadyStateSecondsPerHour
            steadyStateShare = m.steadyStateShare
            liveLoad = m.liveLoad
            backfill = Backfill(
                days: days, hourlyRecords: 24 * days, dailyRecords: days,
                seconds: m.backfillSeconds(hourly: 24 * days, daily: days))
        }
    }

    func run() throws {
        let c = try loadConfigOrExit(config, quietWarnings: true).config
        var devices = c.devices
        if let name = device {
            guard let d = c.device(named: name) else {
                Console.error(
                    "no device '\(name)' in \(config); devices: \(c.devices.map(\.name).joined(separator: ", "))")
                throw ExitCode(1)
            }
            devices = [d]
        }
        var out: [DevicePlan] = []
        for d in devices {
            guard let bus = c.bus(named: d.bus) else { continue }
            let tags = c.effectiveTags(of: d)
            let limits = c.effectiveLimits(of: d)
            let timing = BusTiming.of(bus, turnaround: limits.turnaround)
            let plan = ReadPlanner.plan(tags: tags, limits: limits, timing: timing)
            let naive = tags.reduce(0.0) { $0 + timing.cost(table: $1.table, count: $1.width) }
            out.append(
                DevicePlan(
                    device: d.name, bus: bus.name, poll: d.poll, plan: plan,
                    tagsPerRequest: plan.requests.map { $0.tagIndexes.map { tags[$0].name } },
                    oneRequestPerTagSeconds: naive,
                    efm: EFMBusModel(device: d, in: c).map { EFMPlan($0, meter: d.efm?.meter ?? d.name) }))
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(out), as: UTF8.self))
            return
        }
        for p in out {
            let bus = c.bus(named: p.bus)!
            let speed = bus.serial.map { " at \($0.baud) baud" } ?? ""
            print(
                "\(p.device) on \(p.bus)\(bus.kind == .tcp ? "" : speed): \(p.plan.requests.count) requests, "
                    + "\(ms(p.plan.busSeconds)) per cycle (one request per tag: \(ms(p.oneRequestPerTagSeconds))), poll every \(p.poll)"
            )
            for (r, names) in zip(p.plan.requests, p.tagsPerRequest) {
                print("  \(r)  \(names.joined(separator: ", "))")
            }
            if let e = p.efm { printEFM(e, speed: speed) }
        }
    }

    /// The EFM section of a device: per-request bus time, the share once caught up, a 35-day backfill.
    func printEFM(_ e: EFMPlan, speed: String) {
        let r = e.requestSeconds
        func t(_ k: EFMBusModel.Request) -> String { ms(r[k.rawValue] ?? 0) }
        print("  EFM \(e.profile), meter \(e.meter): history requests go in the live polls' slack")
        print(
            "    per request: pointers \(t(.pointers)), hourly record \(t(.hourlyRecord)), daily record "
                + "\(t(.dailyRecord)), event read \(t(.eventReadEmpty)) (full: \(t(.eventReadFull))), "
                + "acknowledge \(t(.acknowledge))")
        print(
            "    caught up: \(String(format: "%.1f", e.steadyStateSecondsPerHour)) s of bus time per hour "
                + "(\(String(format: "%.2f", e.steadyStateShare * 100)) % of the bus), pointers checked every "
                + "\(TimeSpan(milliseconds: Int64((e.checkSeconds * 1000).rounded())))")
        let b = e.backfill
        let took =
            b.seconds.map { "about \(String(format: "%.1f", $0 / 60)) min" }
            ?? "never: no gap between live polls leaves the response timeout"
        print(
            "    backfill of \(b.days) days (\(b.hourlyRecords) hourly + \(b.dailyRecords) daily records): \(took)"
                + "\(speed) beside \(String(format: "%.1f", e.liveLoad * 100)) % live load")
    }

    func ms(_ s: Double) -> String { String(format: "%.1f ms", s * 1000) }
}
