@testable import EdgeCore
import Testing

/// The whole upload loop as a machine, driven on a virtual clock against an in-memory buffer and a scripted
/// server: hours of outage run in milliseconds. The live delivery tests (`UplinkDeliveryTests`) run the same
/// machine against the reference receiver.
@Suite struct UplinkSchedulerTests {
    /// Carries out the scheduler's steps as `UplinkService` does, with time that passes only in sleeps and in
    /// `requestMillis` per request.
    struct Rig {
        var scheduler: UplinkScheduler
        var now = UplinkScheduler.Now(monotonic: 0, wall: 1_800_000_000_000)
        var buffer: [BufferedRecord] = []
        var nextSeq: Int64 = 1
        /// The server's answer to a request at a monotonic time, with the token sent.
        var server: (Int64, String) -> UplinkOutcome = { _, _ in .stored }
        var token = "t1"
        var requestMillis: Int64 = 50
        /// What happened: every request (time, lane, records), stored records, alarm changes, drops.
        var requests: [(at: Int64, lane: UplinkScheduler.Lane, count: Int)] = []
        var stored: [Int64] = []
        var alarms: [String] = []
        var dropped: [Int64] = []
        var deadLetters = 0
        var step: UplinkScheduler.Step

        init(config: UplinkConfig = Self.config(), random: @escaping @Sendable (ClosedRange<Int64>) -> Int64) {
            scheduler = UplinkScheduler(config, encoder: Self.encoder, random: random)
            step = scheduler.handle(.start(usage: DataUsage(month: ""), standing: []), now: now)
        }

        static let encoder = BatchEncoder(
            sender: BatchSender(gateway: "gw", tenant: "t", site: "s", software: "test"), formats: [:])

        static func config(maxRecords: Int = 100, maxAge: TimeSpan = .seconds(1), budget: Int64? = nil)
            -> UplinkConfig
        {
            UplinkConfig(
                endpoint: "https://127.0.0.1/api", tls: TLSSettings(), token: .file("/t"),
                batch: BatchLimits(maxRecords: maxRecords, maxBytes: ByteCount(bytes: 1 << 20), maxAge: maxAge),
                monthlyBudget: budget.map { ByteCount(bytes: $0) }, connectTimeout: .seconds(5),
                requestTimeout: .seconds(5), proxy: nil)
        }

        mutating func addReadings(_ n: Int, tag: String = "p") {
            for _ in 0..<n {
                let r = StoredReading(
                    device: "d", tag: tag, units: nil, wallMillis: now.wall, value: .number(1), quality: .good)
                buffer.append(BufferedRecord(seq: nextSeq, lane: .reading, payload: .reading(r)))
                nextSeq += 1
            }
        }

        mutating func addAlarm() {
            let a = AlarmEventRecord(
                alarm: "hi", occurrence: "o\(nextSeq)", kind: "high", device: "d", tag: "p", transition: .raised,
                priority: "high", value: 1, limit: 0, reason: "r", wallMillis: now.wall)
            buffer.append(BufferedRecord(seq: nextSeq, lane: .alarm, payload: .alarm(a)))
            nextSeq += 1
        }

        mutating func pass(_ ms: Int64) {
            now.monotonic += ms
            now.wall += ms
        }

        /// Runs the loop until `until` (monotonic) or until `done` holds; a wake-up (alarm committed, token
        /// changed) ends a sleep as the wake signal does.
        mutating func run(until: Int64, wakeAt: Int64? = nil, done: (Rig) -> Bool = { _ in false }) {
            var wakeAt = wakeAt
            while now.monotonic < until && !done(self) {
                for effect in step.effects {
                    switch effect {
                    case .acknowledge(_, let batch):
                        let seqs = Set(batch.records.map(\.seq))
                        stored += batch.records.map(\.seq)
                        buffer.removeAll { seqs.contains($0.seq) }
                    case .deadLetter(let batch, _):
                        let seqs = Set(batch.records.map(\.seq))
                        buffer.removeAll { seqs.contains($0.seq) }
                        deadLetters += 1
                    case .alarm(let change):
                        alarms.append((change.transition == .raised ? "+" : "-") + change.id.description)
                    case .saveUsage, .log: break
                    }
                }
                let event: UplinkScheduler.Event
                switch step.next {
                case .read(let max, _):
                    // As the buffer reads: the alarm lane first, then the reading lane.
                    let head = Array(
                        (buffer.filter { $0.lane == .alarm } + buffer.filter { $0.lane != .alarm }).prefix(max))
                    event = .read(
                        epoch: "e", alarms: head.filter { $0.lane == .alarm },
                        readings: head.filter { $0.lane != .alarm })
                case .send(let lane, let records, _, _):
                    requests.append((now.monotonic, lane, records.count))
                    let outcome = server(now.monotonic, token)
                    pass(requestMillis)
                    event = .sent(
                        lane, BufferBatch(epoch: "e", records: records), offered: records.count, outcome: outcome,
                        token: token, wireBytes: 1000)
                case .drop(let records):
                    let seqs = Set(records.map(\.seq))
                    buffer.removeAll { seqs.contains($0.seq) }
                    dropped += records.map(\.seq)
                    event = .dropped(count: records.count, error: nil)
                case .sleep(let t):
                    let end = min(t, until, wakeAt ?? .max)
                    if end == wakeAt { wakeAt = nil }
                    pass(max(1, end - now.monotonic))
                    event = .woke(token: scheduler.wantsToken ? token : nil)
                }
                step = scheduler.handle(event, now: now)
            }
        }
    }

    static let middle: @Sendable (ClosedRange<Int64>) -> Int64 = { ($0.lowerBound + $0.upperBound) / 2 }

    /// After a 429 with `Retry-After: 4`, nothing goes to the endpoint for 4 s — neither lane — and then the
    /// alarm event goes first. (Each lane honoured it on its own before: two requests 60 ms apart every 4 s.)
    @Test func retryAfterHoldsTheEndpointForBothLanesThenTheAlarmGoesFirst() {
        var rig = Rig(random: { $0.lowerBound })
        rig.addReadings(100)
        rig.server = { t, _ in t < 10 ? .retry(status: 429, retryAfterMillis: 4000, reason: "HTTP 429") : .stored }
        rig.run(until: 5) { $0.requests.count == 1 }
        rig.addAlarm()
        rig.run(until: 20_000, wakeAt: rig.now.monotonic + 100) { $0.buffer.isEmpty }
        #expect(rig.requests.count == 3, "\(rig.requests)")
        #expect(rig.requests[1].at >= 4000, "the second request went \(rig.requests[1].at) ms after the 429")
        #expect(rig.requests[1].lane == .alarms)
        #expect(rig.requests[2].lane == .readings)
        #expect(rig.stored.count == 101)
    }

    /// After the endpoint answered 503 for 60 s, uploads resume within seconds of its return (median ≤ 15 s
    /// over 200 outages with real randomness), never later than the 20 s cap; and over a 2-hour outage the
    /// endpoint is tried at most about once a minute.
    @Test func uploadsResumeSoonAfterAnOutageAndALongOutageCostsOneAttemptAMinute() {
        var delays: [Int64] = []
        for _ in 0..<200 {
            var rig = Rig(random: { Int64.random(in: $0) })
            rig.addReadings(100)
            let back: Int64 = 60_000
            rig.server = { t, _ in t < back ? .retry(status: 503, retryAfterMillis: nil, reason: "HTTP 503") : .stored }
            rig.run(until: 10 * 60_000) { !$0.stored.isEmpty }
            #expect(!rig.stored.isEmpty)
            let first = rig.requests.first { $0.at >= back }?.at ?? .max
            delays.append(first - back)
        }
        delays.sort()
        #expect(delays[delays.count / 2] <= 15_000, "median \(delays[delays.count / 2]) ms")
        #expect(delays.last! <= 20_000 + 50, "longest \(delays.last!) ms")

        var rig = Rig(random: { Int64.random(in: $0) })
        rig.addReadings(10)
        let back: Int64 = 2 * 3_600_000
        rig.server = { t, _ in t < back ? .retry(status: nil, retryAfterMillis: nil, reason: "timeout") : .stored }
        rig.run(until: back + 120_000) { !$0.stored.isEmpty }
        let late = rig.requests.filter { $0.at >= 10 * 60_000 && $0.at < back }
        #expect(late.count <= 111 && late.count >= 100, "\(late.count) attempts in 110 minutes")
        #expect((rig.requests.first { $0.at >= back }?.at ?? .max) - back <= 60_050)
    }

    /// A refused token waits 30 s, then doubles; a token the field tech replaced goes at once, at the next
    /// look (the loop looks at the source whenever it wakes).
    @Test func aRefusedTokenBacksOffAndAReplacedTokenGoesAtOnce() {
        var rig = Rig(random: Self.middle)
        rig.addReadings(100)
        rig.server = { _, token in token == "t1" ? .unauthorized(401) : .stored }
        rig.run(until: 200_000) { $0.requests.count == 3 }
        #expect(rig.requests.map(\.at) == [0, 30_050, 90_100], "\(rig.requests.map(\.at))")
        #expect(rig.alarms == ["+uplink-unauthorized"])
        #expect(rig.scheduler.wantsToken)
        rig.token = "t2"
        let replaced = rig.now.monotonic
        rig.run(until: replaced + 200_000) { !$0.stored.isEmpty }
        // Looked at within the token-check period, sent at once.
        #expect(rig.requests.count == 4)
        #expect(rig.requests[3].at - replaced <= 30_000)
        #expect(rig.alarms == ["+uplink-unauthorized", "-uplink-unauthorized"])
    }

    /// A reload that keeps endpoint and token keeps the endpoint's backoff; a new endpoint starts afresh.
    @Test func aReloadKeepsTheEndpointsStateUnlessEndpointOrTokenChange() {
        var rig = Rig(random: { $0.upperBound })
        rig.addReadings(100)
        rig.server = { _, _ in .retry(status: 503, retryAfterMillis: 20_000, reason: "HTTP 503") }
        rig.run(until: 10) { $0.requests.count == 1 }
        var changed = Rig.config(maxAge: .seconds(2))
        rig.step = rig.scheduler.handle(.configChanged(changed, encoder: Rig.encoder), now: rig.now)
        rig.run(until: 10_000)
        #expect(rig.requests.count == 1, "a reload of the batch age ended the Retry-After")
        changed.endpoint = "https://127.0.0.2/api"
        rig.step = rig.scheduler.handle(.configChanged(changed, encoder: Rig.encoder), now: rig.now)
        rig.run(until: 10_100) { $0.requests.count == 2 }
        #expect(rig.requests.count == 2, "a new endpoint is tried at once")
    }

    /// A rejected batch goes to the dead letters and raises `uplink-rejected-batch`; an operator's
    /// acknowledgement clears it (it had no caller before: only a restart cleared it).
    @Test func theRejectedBatchAlarmClearsWhenAnOperatorAcknowledges() {
        var rig = Rig(random: Self.middle)
        rig.addReadings(10)
        rig.server = { t, _ in t < 2000 ? .rejected(status: 422, reason: "HTTP 422") : .stored }
        rig.run(until: 10_000) { $0.deadLetters == 1 }
        rig.run(until: 20_000)
        #expect(rig.alarms == ["+uplink-rejected-batch"])
        rig.step = rig.scheduler.handle(.rejectedAcknowledged, now: rig.now)
        rig.run(until: 30_000)
        #expect(rig.alarms == ["+uplink-rejected-batch", "-uplink-rejected-batch"])
    }

    /// Readings wait for their batch to fill or age; an alarm event does not wait.
    @Test func readingsWaitToFillAndAlarmsGoAtOnce() {
        var rig = Rig(config: Rig.config(maxRecords: 100, maxAge: .seconds(60)), random: Self.middle)
        rig.addReadings(10)
        rig.run(until: 30_000)
        #expect(rig.requests.isEmpty)
        rig.addAlarm()
        rig.run(until: 31_000, wakeAt: 30_500) { !$0.requests.isEmpty }
        #expect(rig.requests.first?.lane == .alarms)
        #expect(rig.requests.first.map { $0.at <= 30_500 } == true)
        rig.addReadings(90)
        rig.run(until: 32_000, wakeAt: rig.now.monotonic + 1) { $0.buffer.isEmpty }
        #expect(rig.stored.count == 101, "a full batch goes without waiting for its age")
        #expect(rig.now.monotonic < 32_000)
    }

    /// Near the monthly budget's cap, readings other than the hourly snapshot of each series are dropped and
    /// the data-budget alarm is raised once.
    @Test func nearTheDataBudgetOnlyHourlySnapshotsGo() {
        var rig = Rig(config: Rig.config(budget: 10_000), random: Self.middle)
        rig.addReadings(5)
        rig.run(until: 10_000) { $0.buffer.isEmpty }
        #expect(rig.scheduler.mode == .normal)
        for _ in 0..<8 {
            rig.addReadings(5)
            rig.run(until: rig.now.monotonic + 5_000, wakeAt: rig.now.monotonic + 1) { $0.buffer.isEmpty }
        }
        #expect(rig.scheduler.mode == .saving)
        #expect(rig.alarms == ["+uplink-data-budget"])
        rig.addReadings(50)
        rig.run(until: rig.now.monotonic + 1_000, wakeAt: rig.now.monotonic + 1)
        #expect(rig.dropped.count >= 49, "\(rig.dropped.count) dropped")
    }
}
