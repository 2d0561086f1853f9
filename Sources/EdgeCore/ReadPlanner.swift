/// One read request: a function code over a contiguous address range, serving some tags.
public struct ReadRequest: Sendable, Equatable, Codable, CustomStringConvertible {
    public var table: RegisterTable
    public var start: Int
    /// Registers (or bits) read.
    public var count: Int
    /// Indexes into the tag list the plan was made from.
    public var tagIndexes: [Int]
    public var end: Int { start + count - 1 }
    public var description: String {
        "FC\(String(format: "%02d", table.readFunction)) \(table.rawValue) \(start)..\(end) (\(count))"
    }
}

/// The requests that read every tag of a device once, and what a cycle costs on the bus.
public struct ReadPlan: Sendable, Equatable, Codable {
    public var requests: [ReadRequest]
    /// Seconds of bus time one poll cycle takes.
    public var busSeconds: Double
}

/// The bus-time cost of one Modbus transaction: frames on the wire, silent intervals, device turnaround.
public struct BusTiming: Sendable, Equatable {
    public init(characterTime: Double, perTransaction: Double, framingBytes: Int) {
        self.characterTime = characterTime; self.perTransaction = perTransaction; self.framingBytes = framingBytes
    }
    /// Seconds per character on the wire (0 for TCP, where framing time is negligible).
    public var characterTime: Double
    /// Fixed seconds per transaction: turnaround, inter-frame delay, RTU silent intervals, network round trip.
    public var perTransaction: Double
    /// Bytes of framing in request + response beyond the data (RTU: 8 + 5; TCP/MBAP: 12 + 9).
    public var framingBytes: Int

    /// Cost model for a bus: RTU (and RTU over TCP) at its baud rate; TCP by round trip.
    public static func of(_ bus: BusConfig, turnaround: TimeSpan) -> BusTiming {
        let gap = bus.interFrameDelay.seconds + turnaround.seconds
        switch bus.kind {
        case .tcp:
            // Loopback or LAN: ~1 ms round trip; the device turnaround dominates.
            return BusTiming(characterTime: 8.0 / 10_000_000, perTransaction: gap + 0.001, framingBytes: 21)
        case .rtu, .rtuOverTCP:
            let line = bus.serial ?? SerialLine(baud: 9600, parity: .none, dataBits: 8, stopBits: 1)
            let c = line.characterTime
            // Two 3.5-character silent intervals (end of request, end of response).
            return BusTiming(characterTime: c, perTransaction: gap + 7 * c, framingBytes: 13)
        }
    }

    /// Seconds one read of `count` registers (or bits) costs.
    public func cost(table: RegisterTable, count: Int) -> Double {
        cost(replyDataBytes: table.isBitTable ? (count + 7) / 8 : 2 * count)
    }

    /// Seconds one transaction costs whose reply carries `replyDataBytes` beyond a read reply's framing (an
    /// Enron archive record: the record's bytes, whatever the request's quantity field says).
    public func cost(replyDataBytes: Int) -> Double {
        perTransaction + Double(framingBytes + replyDataBytes) * characterTime
    }
}

/// Groups a device's tags into the read requests that cost the least bus time per cycle.
///
/// Within one table, the tags sorted by address are split into consecutive groups (an optimal plan never
/// interleaves groups: swapping tags between crossing groups never lengthens either). Dynamic programming
/// over split points finds the cheapest partition exactly, subject to the device limits: registers (or
/// bits) per request, the largest unused gap read through, and addresses never to read.
public enum ReadPlanner {
    public static func plan(tags: [TagDefinition], limits: DeviceLimits, timing: BusTiming) -> ReadPlan {
        var requests: [ReadRequest] = []
        var total = 0.0
        let byTable = Dictionary(grouping: tags.indices, by: { tags[$0].table })
        for table in byTable.keys.sorted() {
            let items = byTable[table]!.sorted {
                (tags[$0].address, tags[$0].lastAddress) < (tags[$1].address, tags[$1].lastAddress)
            }
            let (reqs, cost) = planTable(table, items: items, tags: tags, limits: limits, timing: timing)
            requests += reqs
            total += cost
        }
        return ReadPlan(requests: requests, busSeconds: total)
    }

    /// Whether tags at `items[i...j]` (sorted) can share one request; the range read and its cost.
    static func group(_ items: ArraySlice<Int>, table: RegisterTable, tags: [TagDefinition], limits: DeviceLimits) -> (
        Int, Int
    )? {
        let maxCount = table.isBitTable ? limits.maxBits : limits.maxRegisters
        guard let first = items.first else { return nil }
        let lo = tags[first].address
        var hi = tags[first].lastAddress
        for idx in items.dropFirst() {
            let t = tags[idx]
            if t.address > hi + 1 + limits.maxGap { return nil }
            hi = max(hi, t.lastAddress)
        }
        guard hi - lo + 1 <= maxCount else { return nil }
        if limits.neverRead.contains(where: { $0.overlaps(table: table, lo, hi) }) { return nil }
        return (lo, hi)
    }

    private static func planTable(
        _ table: RegisterTable, items: [Int], tags: [TagDefinition],
        limits: DeviceLimits, timing: BusTiming
    ) -> ([ReadRequest], Double) {
        let n = items.count
        let maxCount = table.isBitTable ? limits.maxBits : limits.maxRegisters
        // best[k]: cheapest cost of reading items[0..<k]; cut[k]: where the last group starts.
        var best = [Double](repeating: .infinity, count: n + 1)
        var cut = [Int](repeating: -1, count: n + 1)
        var range = [(Int, Int)](repeating: (0, 0), count: n + 1)
        best[0] = 0
        for i in 0..<n where best[i].isFinite {
            let lo = tags[items[i]].address
            var hi = tags[items[i]].lastAddress
            for j in i..<n {
                let t = tags[items[j]]
                if j > i && t.address > hi + 1 + limits.maxGap { break }
                hi = max(hi, t.lastAddress)
                if hi - lo + 1 > maxCount { break }
                if limits.neverRead.contains(where: { $0.overlaps(table: table, lo, hi) }) { break }
                let c = best[i] + timing.cost(table: table, count: hi - lo + 1)
                if c < best[j + 1] { best[j + 1] = c; cut[j + 1] = i; range[j + 1] = (lo, hi) }
            }
        }
        // A tag that cannot be read at all (wider than the limit, or inside neverRead) is left out;
        // the validator reports it. Plan the rest.
        guard best[n].isFinite else {
            let readable = items.filter { group([$0], table: table, tags: tags, limits: limits) != nil }
            if readable.count == n { return ([], 0) }
            return planTable(table, items: readable, tags: tags, limits: limits, timing: timing)
        }
        var out: [ReadRequest] = []
        var k = n
        while k > 0 {
            let i = cut[k]
            let (lo, hi) = range[k]
            out.append(ReadRequest(table: table, start: lo, count: hi - lo + 1, tagIndexes: Array(items[i..<k])))
            k = i
        }
        return (out.reversed(), best[n])
    }
}
