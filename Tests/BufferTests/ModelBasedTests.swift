@_spi(Testing) import EdgeBuffer
import EdgeCore
import EdgeTestSupport
import Foundation
import Testing

/// Random sequences of ingest, dequeue, acknowledge, dead-letter, restart and crash, checked after every
/// step against a simple in-memory model of what the buffer must hold.
///
/// Invariants: every record the store confirmed is acknowledged, dead-lettered, still queued (unchanged),
/// or covered by a gap record — and the gap counts add up to exactly the records missing; nothing the store
/// did not confirm appears; no seq is reused (also across restarts, crashes and a drained queue); the alarm
/// lane comes first and each lane is in seq order; a batch is the head of the queue; the stats agree with
/// the contents; db + WAL + shm stay within the budget.
@Suite("Model-based")
struct ModelBasedTests {
    struct Scenario: CustomTestStringConvertible, Sendable {
        var seed: UInt64
        var budget: Int64
        var maxIngest: Int
        var steps: Int
        /// Whether the queue is sometimes drained (small budgets must fill up to evict).
        var drains = true
        var testDescription: String { "seed \(seed), budget \(budget >> 10) KiB" }
    }

    static let scenarios = [
        Scenario(seed: 1, budget: 64 << 20, maxIngest: 300, steps: 160),
        Scenario(seed: 2, budget: 64 << 20, maxIngest: 300, steps: 160),
        Scenario(seed: 3, budget: 1 << 20, maxIngest: 3000, steps: 140, drains: false),
        Scenario(seed: 4, budget: 1 << 20, maxIngest: 3000, steps: 140, drains: false)
    ]

    enum Expected: Equatable { case reading(StoredReading), alarm(AlarmEventRecord) }

    /// What the buffer must hold.
    struct Model {
        var queued: [Int64: Expected] = [:]
        var maxSeq: Int64 = 0
        var acked = Set<Int64>()
        var dead: [Int64: Expected] = [:]
        var evicted = Set<Int64>()
        /// Gap records the server got (acknowledged while still queued), and the ones dead-lettered.
        var deliveredGaps: [Int64: GapRecord] = [:]
        var deadGaps: [Int64: GapRecord] = [:]
        /// Gap records in the store at the last check.
        var queuedGaps: [Int64: GapRecord] = [:]
        var lastQueue: [BufferedRecord] = []

        mutating func confirmed(_ seqs: ClosedRange<Int64>, _ readings: [Reading]) {
            precondition(seqs.count == readings.count)
            #expect(seqs.lowerBound > maxSeq, "seq \(seqs.lowerBound) reused (max so far \(maxSeq))")
            for (s, r) in zip(seqs, readings) { queued[s] = .reading(Fixtures.stored(r)) }
            maxSeq = max(maxSeq, seqs.upperBound)
        }
        mutating func confirmed(_ seq: Int64, _ alarm: AlarmEventRecord) {
            #expect(seq > maxSeq, "seq \(seq) reused (max so far \(maxSeq))")
            queued[seq] = .alarm(alarm)
            maxSeq = max(maxSeq, seq)
        }
        var allGaps: [GapRecord] { Array(queuedGaps.values) + Array(deliveredGaps.values) + Array(deadGaps.values) }
    }

    @Test(arguments: scenarios)
    func randomOperationsKeepTheInvariants(_ scenario: Scenario) async throws {
        var rng = SplitMix64(seed: scenario.seed)
        let dir = TempDir("edged-model")
        let path = dir.file("buffer.db")
        let budget = ByteCount(bytes: scenario.budget)
        func open() throws -> BufferStore {
            try BufferStore.open(path: path, maxBytes: budget, logger: quietLogger, options: fastCommit).0
        }
        var store = try open()
        let epoch = store.epoch
        var model = Model()
        var inFlight: [BufferBatch] = []
        var next = 0
        var alarmNo = 0
        var counts: [String: Int] = [:]
        defer { store.close() }

        func readings(_ n: Int) -> [Reading] {
            defer { next += n }
            return Fixtures.readings(n, start: next)
        }

        for step in 0..<scenario.steps {
            let roll = Int.random(in: 0..<100, using: &rng)
            switch roll {
            case 0..<30:
                counts["ingest", default: 0] += 1
                let rs = readings(Int.random(in: 1...scenario.maxIngest, using: &rng))
                model.confirmed(try #require(try await store.append(readings: rs, units: Fixtures.units)), rs)
            case 30..<38:
                counts["concurrent ingest", default: 0] += 1
                let groups = (0..<Int.random(in: 2...5, using: &rng)).map { _ in
                    readings(Int.random(in: 1...200, using: &rng))
                }
                alarmNo += 1
                let alarm = Fixtures.alarm(alarmNo)
                let s = store
                let (ranges, alarmSeq) = try await withThrowingTaskGroup(of: (Int, ClosedRange<Int64>?, Int64?).self) {
                    group in
                    for (i, g) in groups.enumerated() {
                        group.addTask { (i, try await s.append(readings: g, units: Fixtures.units), nil) }
                    }
                    group.addTask { (-1, nil, try await s.append(alarm: alarm)) }
                    var out: [Int: ClosedRange<Int64>] = [:]
                    var a: Int64 = 0
                    for try await (i, r, seq) in group { if let r { out[i] = r } else { a = seq! } }
                    return (out, a)
                }
                // Confirm in seq order (the model checks that seqs only grow).
                var confirmations: [(Int64, () -> Void)] = []
                for (i, g) in groups.enumerated() {
                    let r = ranges[i]!; confirmations.append((r.lowerBound, { model.confirmed(r, g) }))
                }
                confirmations.append((alarmSeq, { model.confirmed(alarmSeq, alarm) }))
                for (_, c) in confirmations.sorted(by: { $0.0 < $1.0 }) { c() }
            case 38..<45:
                counts["alarm", default: 0] += 1
                alarmNo += 1
                let alarm = Fixtures.alarm(alarmNo, transition: AlarmTransition.allCases.randomElement(using: &rng)!)
                model.confirmed(try await store.append(alarm: alarm), alarm)
            case 45..<62:
                counts["dequeue", default: 0] += 1
                let maxRecords = Int.random(in: 1...800, using: &rng)
                let maxBytes = Int.random(in: 100...300_000, using: &rng)
                if let batch = try await store.nextBatch(maxRecords: maxRecords, maxBytes: maxBytes) {
                    #expect(batch.epoch == epoch)
                    #expect(batch.count <= maxRecords)
                    #expect(batch.count == 1 || batch.estimatedBytes <= maxBytes)
                    // A batch is the head of the queue as checked after the last step.
                    #expect(batch.records == Array(model.lastQueue.prefix(batch.count)))
                    inFlight.append(batch)
                } else {
                    #expect(model.lastQueue.isEmpty)
                }
            case 62..<80:
                guard !inFlight.isEmpty else { continue }
                counts["ack", default: 0] += 1
                let batch = inFlight.remove(at: Int.random(in: 0..<inFlight.count, using: &rng))
                let present = try store.presentSeqs(batch.records.map(\.seq))
                try await store.acknowledge(batch)
                for r in batch.records where present.contains(r.seq) {
                    if let g = r.gap {
                        model.deliveredGaps[r.seq] = g; model.queuedGaps[r.seq] = nil
                    } else {
                        #expect(model.queued.removeValue(forKey: r.seq) != nil)
                        model.acked.insert(r.seq)
                    }
                }
            case 80..<83:
                guard !inFlight.isEmpty else { continue }
                counts["dead-letter", default: 0] += 1
                let batch = inFlight.removeFirst()
                let present = try store.presentSeqs(batch.records.map(\.seq))
                try await store.deadLetter(batch, reason: "HTTP 400 schema (step \(step))")
                for r in batch.records where present.contains(r.seq) {
                    if let g = r.gap {
                        model.deadGaps[r.seq] = g; model.queuedGaps[r.seq] = nil
                    } else {
                        model.dead[r.seq] = model.queued.removeValue(forKey: r.seq)
                    }
                }
            case 83..<88:
                guard scenario.drains else { continue }
                counts["drain", default: 0] += 1
                while let b = try await store.nextBatch(maxRecords: 5000, maxBytes: 1 << 30) {
                    let present = try store.presentSeqs(b.records.map(\.seq))
                    try await store.acknowledge(b)
                    for r in b.records where present.contains(r.seq) {
                        if let g = r.gap {
                            model.deliveredGaps[r.seq] = g; model.queuedGaps[r.seq] = nil
                        } else {
                            model.queued[r.seq] = nil; model.acked.insert(r.seq)
                        }
                    }
                }
            case 88..<94:
                counts["restart", default: 0] += 1
                store.close()
                store = try open()
                #expect(store.epoch == epoch)
            default:
                counts["crash", default: 0] += 1
                // Appends in flight when the process dies: those confirmed are stored, the others are not.
                let groups = (0..<Int.random(in: 1...4, using: &rng)).map { _ in
                    readings(Int.random(in: 1...300, using: &rng))
                }
                let s = store
                let tasks = groups.map { g in
                    Task { () async throws(BufferError) -> ClosedRange<Int64>? in
                        try await s.append(readings: g, units: Fixtures.units)
                    }
                }
                if Bool.random(using: &rng) {
                    try await Task.sleep(for: .milliseconds(Int.random(in: 0...6, using: &rng)))
                }
                store.simulateCrash()
                var results: [(ClosedRange<Int64>, [Reading])] = []
                for (t, g) in zip(tasks, groups) {
                    switch await t.result {
                    case .success(let r): results.append((r!, g))
                    case .failure(let e): #expect((e as? BufferError)?.code == .closed, "\(e)")
                    }
                }
                for (r, g) in results.sorted(by: { $0.0.lowerBound < $1.0.lowerBound }) { model.confirmed(r, g) }
                store = try open()
                #expect(store.epoch == epoch)
            }
            try check(store, &model, path: path, budget: scenario.budget, step: step)
        }
        print(
            "model \(scenario.testDescription): \(counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); "
                + "acked \(model.acked.count), dead \(model.dead.count), evicted \(model.evicted.count), max seq \(model.maxSeq)"
        )
        if scenario.budget < 2 << 20 { #expect(!model.evicted.isEmpty, "the small budget never evicted") }
    }

    func check(_ store: BufferStore, _ model: inout Model, path: String, budget: Int64, step: Int) throws {
        let all = try queued(store)
        let alarms = all.prefix { $0.lane == .alarm }
        let rest = all.dropFirst(alarms.count)
        #expect(rest.allSatisfy { $0.lane == .reading }, "step \(step): alarm after a reading")
        #expect(zip(alarms, alarms.dropFirst()).allSatisfy { $0.seq < $1.seq }, "step \(step): alarm lane out of order")
        #expect(zip(rest, rest.dropFirst()).allSatisfy { $0.seq < $1.seq }, "step \(step): reading lane out of order")

        var gapsNow: [Int64: GapRecord] = [:]
        var present = Set<Int64>()
        for r in all {
            model.maxSeq = max(model.maxSeq, r.seq)
            present.insert(r.seq)
            switch r.payload {
            case .gap(let g): gapsNow[r.seq] = g
            case .reading(let s):
                #expect(model.queued[r.seq] == .reading(s), "step \(step): seq \(r.seq) not what was stored")
            case .alarm(let a):
                #expect(model.queued[r.seq] == .alarm(a), "step \(step): seq \(r.seq) not what was stored")
            case .efm, .efmGap:
                Issue.record("step \(step): seq \(r.seq) is an EFM record; this model stores none")
            }
        }
        let dead = try store.deadLetters(maxRecords: 1 << 30)
        let deadPresent = Set(dead.map(\.seq))
        model.queuedGaps = gapsNow
        let gaps = model.allGaps
        // Missing records were evicted, and a gap record says so.
        for seq in model.queued.keys where !present.contains(seq) {
            #expect(gaps.contains { $0.covers(seq) }, "step \(step): seq \(seq) vanished without a gap record")
            model.queued[seq] = nil
            model.evicted.insert(seq)
        }
        for seq in model.dead.keys where !deadPresent.contains(seq) {
            #expect(gaps.contains { $0.covers(seq) }, "step \(step): dead letter \(seq) vanished without a gap record")
            model.dead[seq] = nil
            model.evicted.insert(seq)
        }
        for seq in model.deadGaps.keys where !deadPresent.contains(seq) { model.deadGaps[seq] = nil }
        #expect(present.count == model.queued.count + gapsNow.count, "step \(step): records the store never confirmed")
        let gapCount = model.allGaps.reduce(0) { $0 + $1.count }
        #expect(
            gapCount == Int64(model.evicted.count),
            "step \(step): gaps count \(gapCount), evicted \(model.evicted.count)")

        let stats = try store.stats()
        #expect(stats.alarmRecords == Int64(alarms.count) && stats.readingRecords == Int64(rest.count))
        #expect(stats.gapRecords == Int64(gapsNow.count) && stats.deadLetterRecords == Int64(dead.count))
        #expect(
            stats.bytesOnDisk <= budget && stats.peakBytesOnDisk <= budget,
            "step \(step): peak \(stats.peakBytesOnDisk) bytes, now db \(stats.databaseBytes) wal \(stats.walBytes) shm \(stats.shmBytes)"
        )
        #expect(stats.lastSeq <= model.maxSeq + 0 || stats.lastSeq == model.maxSeq)
        model.maxSeq = max(model.maxSeq, stats.lastSeq)
        model.lastQueue = all
    }
}
