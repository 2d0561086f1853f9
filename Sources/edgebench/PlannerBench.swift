import ArgumentParser
import EdgeCore

/// Bus time per poll cycle of the example pad: the planner beside one request per tag and a greedy merge.
struct PlannerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "planner", abstract: "Bus time per cycle: planner vs naive vs greedy.")

    /// First-fit greedy: walk the tags by address and extend the current request while it stays within the
    /// limits, as most gateways do.
    static func greedy(_ tags: [TagDefinition], _ limits: DeviceLimits, _ timing: BusTiming) -> (Int, Double) {
        var requests = 0
        var cost = 0.0
        for table in RegisterTable.allCases {
            let ts = tags.filter { $0.table == table }.sorted { $0.address < $1.address }
            var current: (lo: Int, hi: Int)?
            let maxCount = table.isBitTable ? limits.maxBits : limits.maxRegisters
            func flush() {
                if let c = current { requests += 1; cost += timing.cost(table: table, count: c.hi - c.lo + 1) }
            }
            for t in ts {
                if let c = current, t.address <= c.hi + 1 + limits.maxGap,
                    max(c.hi, t.lastAddress) - c.lo + 1 <= maxCount,
                    !limits.neverRead.contains(where: { $0.overlaps(table: table, c.lo, max(c.hi, t.lastAddress)) })
                {
                    current = (c.lo, max(c.hi, t.lastAddress))
                } else {
                    flush()
                    current = (t.address, t.lastAddress)
                }
            }
            flush()
        }
        return (requests, cost)
    }

    func run() throws {
        Report.section("read planning (example pad, bus time per poll cycle)")
        let pad = try BenchPad.load()
        var totals = (planner: 0.0, naive: 0.0, greedy: 0.0)
        for d in pad.devices {
            let bus = pad.bus(named: d.bus)!
            let tags = pad.effectiveTags(of: d), limits = pad.effectiveLimits(of: d)
            let timing = BusTiming.of(bus, turnaround: limits.turnaround)
            let plan = ReadPlanner.plan(tags: tags, limits: limits, timing: timing)
            let naive = tags.reduce(0.0) { $0 + timing.cost(table: $1.table, count: $1.width) }
            let (gReq, gCost) = Self.greedy(tags, limits, timing)
            totals.planner += plan.busSeconds; totals.naive += naive; totals.greedy += gCost
            let speed = bus.serial.map { " @\($0.baud)" } ?? " tcp"
            Report.figure(
                "\(d.name)\(speed): planner \(plan.requests.count) req", plan.busSeconds * 1000, "ms",
                reference: ("greedy \(gReq) req", gCost * 1000), higherIsBetter: false)
            Report.figure(
                "", plan.busSeconds * 1000, "ms", reference: ("one per tag \(tags.count) req", naive * 1000),
                higherIsBetter: false)
        }
        Report.figure(
            "whole pad: planner", totals.planner * 1000, "ms", reference: ("greedy", totals.greedy * 1000),
            higherIsBetter: false)
        Report.figure(
            "whole pad: planner", totals.planner * 1000, "ms", reference: ("one request per tag", totals.naive * 1000),
            higherIsBetter: false)

        // Field maps are rarely that tidy: scattered registers, mixed widths, firmware capped at 16 registers
        // per read and unmapped blocks. Same cost model (9600 baud, 10 ms turnaround, 100 ms inter-frame delay).
        var rng = SystemRandomNumberGenerator()
        let bus = pad.bus(named: "rs485-wells")!
        let limits = DeviceLimits(maxRegisters: 16, maxGap: 6, neverRead: [], turnaround: TimeSpan(milliseconds: 10))
        let timing = BusTiming.of(bus, turnaround: limits.turnaround)
        var planner = 0.0, greedy = 0.0, worse = 0
        let maps = 1000
        for _ in 0..<maps {
            var address = 0
            let tags = (0..<30).map { i -> TagDefinition in
                address += Int.random(in: 0...5, using: &rng)
                let type = [ValueType.uint16, .int16, .float32, .float32, .uint32, .float64].randomElement(using: &rng)!
                let t = TagDefinition(
                    name: "t\(i)", table: .holding, address: address, type: type, bit: nil, length: nil, order: nil,
                    scale: 1, offset: 0, span: nil, units: nil, deadband: nil, integrity: nil, states: nil)
                address += t.width
                return t
            }
            let p = ReadPlanner.plan(tags: tags, limits: limits, timing: timing).busSeconds
            let g = Self.greedy(tags, limits, timing).1
            planner += p; greedy += g
            if g > p + 1e-9 { worse += 1 }
        }
        Report.figure(
            "random maps (30 tags, max 16 regs): planner", planner / Double(maps) * 1000, "ms",
            reference: ("greedy (worse on \(worse)/\(maps) maps)", greedy / Double(maps) * 1000), higherIsBetter: false)
    }
}
