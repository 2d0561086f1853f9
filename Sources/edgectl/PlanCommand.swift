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
                    oneRequestPerTagSeconds: naive))
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
        }
    }

    func ms(_ s: Double) -> String { String(format: "%.1f ms", s * 1000) }
}
