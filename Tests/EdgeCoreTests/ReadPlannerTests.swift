@testable import EdgeCore
import EdgeTestSupport
import Testing

@Suite struct ReadPlannerTests {
    static func tag(_ name: String, _ address: Int, _ type: ValueType = .uint16) -> TagDefinition {
        tag(name, .holding, address, type)
    }
    static func tag(_ name: String, _ table: RegisterTable, _ address: Int, _ type: ValueType = .uint16)
        -> TagDefinition
    {
        TagDefinition(
            name: name, table: table, address: address, type: type, bit: nil, length: nil, order: nil,
            scale: 1, offset: 0, span: nil, units: nil, deadband: nil, integrity: nil, states: nil)
    }
    let rtu9600 = BusTiming.of(
        BusConfig(
            name: "b", kind: .rtu, device: "/dev/x",
            serial: SerialLine(baud: 9600, parity: .none, dataBits: 8, stopBits: 1),
            rs485: nil, endpoint: nil, interFrameDelay: TimeSpan(milliseconds: 50),
            responseTimeout: .seconds(1), byteTimeout: nil, retries: 0),
        turnaround: TimeSpan(milliseconds: 10))

    @Test func mergesAcrossSmallGapsOnly() {
        let tags = [Self.tag("a", 0), Self.tag("b", 1), Self.tag("c", 5), Self.tag("d", 100)]
        let plan = ReadPlanner.plan(tags: tags, limits: DeviceLimits(maxRegisters: 125, maxGap: 10), timing: rtu9600)
        #expect(plan.requests.map { [$0.start, $0.count] } == [[0, 6], [100, 1]])
        #expect(plan.requests[0].tagIndexes == [0, 1, 2])
    }

    @Test func respectsMaxRegistersAndNeverRead() {
        let tags = (0..<10).map { Self.tag("t\($0)", $0 * 2, .float32) }  // 0..19, contiguous floats
        let limits = DeviceLimits(
            maxRegisters: 8, maxGap: 4, neverRead: [AddressRange(table: .holding, first: 10, last: 11)])
        let plan = ReadPlanner.plan(tags: tags, limits: limits, timing: rtu9600)
        for r in plan.requests {
            #expect(r.count <= 8)
            #expect(!(r.start...r.end).contains(10) && !(r.start...r.end).contains(11))
        }
        // t5 (10..11) lies in neverRead and cannot be read; every other tag is planned exactly once.
        #expect(plan.requests.flatMap(\.tagIndexes).sorted() == [0, 1, 2, 3, 4, 6, 7, 8, 9])
    }

    @Test func separatesTablesAndFunctionCodes() {
        let tags = [
            Self.tag("h", .holding, 0), Self.tag("i", .input, 0), Self.tag("c", .coil, 0, .bool),
            Self.tag("d", .discrete, 3, .bool)
        ]
        let plan = ReadPlanner.plan(tags: tags, limits: DeviceLimits(), timing: rtu9600)
        #expect(plan.requests.map(\.table.readFunction) == [1, 2, 3, 4])
    }

    /// Cheapest plan by trying every partition of the tags into requests.
    static func bruteForce(_ tags: [TagDefinition], _ limits: DeviceLimits, _ timing: BusTiming) -> Double {
        let idx = tags.indices.filter {
            ReadPlanner.group([$0][...], table: tags[$0].table, tags: tags, limits: limits) != nil
        }
        var best = Double.infinity
        func cost(_ group: [Int]) -> Double? {
            let sorted = group.sorted {
                (tags[$0].address, tags[$0].lastAddress) < (tags[$1].address, tags[$1].lastAddress)
            }
            guard
                let (lo, hi) = ReadPlanner.group(sorted[...], table: tags[sorted[0]].table, tags: tags, limits: limits)
            else { return nil }
            return timing.cost(table: tags[sorted[0]].table, count: hi - lo + 1)
        }
        func go(_ i: Int, _ groups: [[Int]]) {
            if i == idx.count {
                var total = 0.0
                for g in groups { guard let c = cost(g) else { return }; total += c }
                best = min(best, total)
                return
            }
            let t = idx[i]
            for g in groups.indices where tags[groups[g][0]].table == tags[t].table {
                var next = groups; next[g].append(t); go(i + 1, next)
            }
            go(i + 1, groups + [[t]])
        }
        go(0, [])
        return idx.isEmpty ? 0 : best
    }

    @Test func matchesBruteForceOnRandomMaps() {
        var rng = SplitMix64(seed: 0xED6E)
        for _ in 0..<300 {
            let n = Int.random(in: 1...7, using: &rng)
            let tags = (0..<n).map { i -> TagDefinition in
                let type = [ValueType.uint16, .uint16, .float32, .float64].randomElement(using: &rng)!
                let table: RegisterTable = Bool.random(using: &rng) ? .holding : .input
                return Self.tag("t\(i)", table, Int.random(in: 0...40, using: &rng), type)
            }
            var limits = DeviceLimits(
                maxRegisters: Int.random(in: 4...24, using: &rng), maxGap: Int.random(in: 0...8, using: &rng))
            if Bool.random(using: &rng) {
                let a = Int.random(in: 0...40, using: &rng)
                limits.neverRead = [
                    AddressRange(table: .holding, first: a, last: a + Int.random(in: 0...3, using: &rng))
                ]
            }
            let plan = ReadPlanner.plan(tags: tags, limits: limits, timing: rtu9600)
            let expected = Self.bruteForce(tags, limits, rtu9600)
            #expect(
                abs(plan.busSeconds - expected) < 1e-9,
                "tags \(tags.map { ($0.table, $0.address, $0.width) }) limits \(limits)")
            // And the plan's requests really cost what it says and cover their tags.
            let recomputed = plan.requests.reduce(0.0) { $0 + rtu9600.cost(table: $1.table, count: $1.count) }
            #expect(abs(recomputed - plan.busSeconds) < 1e-9)
            for r in plan.requests {
                for i in r.tagIndexes { #expect(tags[i].address >= r.start && tags[i].lastAddress <= r.end) }
            }
        }
    }
}
