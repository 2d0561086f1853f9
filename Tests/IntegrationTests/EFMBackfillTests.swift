import EdgeBuffer
import EdgeCore
import EdgeSim
import EdgeSystem
import EdgeTestSupport
import Foundation
import Logging
import ModbusPoller
import Testing

/// EFM collection end to end on real components: the simulator's Enron flow computer served by libmodbus over
/// loopback TCP and over a pty pair, edged's collection over a libmodbus link, records committed to a real
/// buffer file. Every record arrives exactly once across outages of edged and of the device, and restarts.
@Suite(.serialized) struct EFMBackfillTests {
    static let start = DeviceTimestamp(year: 2024, month: 3, day: 1, hour: 0, minute: 0, second: 0)!
    static let unit = 20

    /// A collection in the test's hands: the server, the link, the buffer and what the stores answered.
    final class Rig: @unchecked Sendable {
        let fc: SimFlowComputer
        let pty: PtyPair?
        var server: SimServer
        let bus: BusConfig
        let dir = TempDir("edged-efm")
        let store: BufferStore
        let woken = DispatchSemaphore(value: 0)
        // Guard: `lock` protects `duplicates`.
        let lock = NSLock()
        var duplicates = 0
        var reports: [String] = []

        init(_ fc: SimFlowComputer, rtu: Bool) throws {
            self.fc = fc
            pty = try rtu ? PtyPair() : nil
            server = SimServer(
                transport: pty.map { .rtu(path: $0.b, baud: 38400) } ?? .tcp(host: "127.0.0.1", port: 0),
                devices: [], flowComputers: [fc])
            try server.start()
            bus = BusConfig(
                name: "efm", kind: rtu ? .rtu : .tcp, device: pty?.a,
                serial: rtu ? SerialLine(baud: 38400, parity: .none, dataBits: 8, stopBits: 1) : nil, rs485: nil,
                endpoint: rtu ? nil : TCPEndpoint(host: "127.0.0.1", port: server.port, connectTimeout: .seconds(1)),
                interFrameDelay: TimeSpan(milliseconds: rtu ? 2 : 0), responseTimeout: .seconds(1),
                byteTimeout: TimeSpan(milliseconds: 100), retries: 0)
            (store, _) = try BufferStore.open(path: dir.file("buffer.db"), maxBytes: ByteCount(bytes: 64 << 20))
        }

        deinit {
            server.stop()
            store.close()
        }

        /// A collection as edged starts one: from the cursors stored in the buffer file.
        func collection() throws -> EFMCollection {
            let config = EFMCollector.Configuration(
                profile: fc.profile, unit: UInt8(Self.unitID), transport: bus.kind == .tcp ? .tcp : .rtu,
                cycleMillis: 200, retryMillis: 100)
            return EFMCollection(
                device: "meter-1", unit: Self.unitID, configuration: config,
                cursors: try store.efmCollectorCursors(device: "meter-1"),
                store: { [store, self] request, done in
                    do {
                        let write = try EFMWrite(
                            device: "meter-1", archive: request.archive, records: request.records,
                            events: request.events, gaps: request.gaps, cursor: request.cursor,
                            collectedWallMillis: SystemClock.wallMillis())
                        store.enqueueEFM(write) { result in
                            switch result {
                            case .success(let r):
                                self.lock.withLock { self.duplicates += r.duplicates }
                                done(nil)
                            case .failure(let e): done(e.description)
                            }
                        }
                    } catch { done("\(error)") }
                }, report: { [self] r in self.lock.withLock { self.reports.append("\(r)") } },
                wake: { [woken] in woken.signal() })
        }

        static let unitID = EFMBackfillTests.unit

        /// Runs `collection` as the bus thread does, on a thread of its own, until `done` holds (or 120 s pass).
        func run(_ collection: EFMCollection, link: any ModbusLink, until done: @escaping @Sendable () throws -> Bool)
            async throws -> Bool
        {
            let box = Unchecked(value: (collection, link))
            return try await offPool("efm-bus") { [woken] in
                let (collection, link) = box.value
                let deadline = SystemClock.monotonicMillis() + 120_000
                while SystemClock.monotonicMillis() < deadline {
                    if try done() { return true }
                    let now = SystemClock.monotonicMillis()
                    switch collection.step(link: link, nowMillis: now) {
                    case nil: _ = woken.wait(timeout: .now() + 1)
                    case let t? where t > now: usleep(useconds_t(min(t - now, 50) * 1000))
                    default: break
                    }
                }
                return try done()
            }
        }

        func count(_ archive: String) throws -> Int { try store.efmRecords(device: "meter-1", archive: archive).count }

        /// Each stored record of `archive` once, one period after the one before.
        func expectConsecutive(_ archive: String, period: Int64) throws {
            let records = try store.efmRecords(device: "meter-1", archive: archive)
            #expect(Set(records.map(\.key)).count == records.count)
            let stamps = try records.map {
                try JSONDecoder().decode(ArchiveRecord.self, from: Data($0.decoded.utf8)).timestamp.secondsSince2000
            }
            for (a, b) in zip(stamps, stamps.dropFirst()) { #expect(b - a == period, "\(a) → \(b)") }
        }
    }

    /// A 10-day outage of edged, then a 2-day outage of the device, then a restart of edged: 240 + 48 hourly
    /// and 10 + 2 daily records, each stored once, in order; the events read, stored, then acknowledged.
    @Test(arguments: [false, true]) func outagesAreBackfilledExactlyOnce(rtu: Bool) async throws {
        let fc = try SimFlowComputer(name: "meter-1", unit: Self.unit, profile: .scanner2000, start: Self.start)
        fc.advance(hours: 240)
        try fc.setParameter(register: 7110, value: 2.5)
        try fc.setParameter(register: 7111, value: 0.6)
        let rig = try Rig(fc, rtu: rtu)
        var link: any ModbusLink = try ModbusLinks.make(for: rig.bus)
        var collection = try rig.collection()
        let backfilled = try await rig.run(collection, link: link) {
            try rig.count("hourly") == 240 && rig.count("daily") == 10 && fc.pendingEvents == 0
        }
        let counts = try rig.store.efmCounts(device: "meter-1")
        #expect(backfilled, "\(counts.records), events left on the device: \(fc.pendingEvents)")
        #expect(try rig.count("event") == 2)

        // The device is unreachable for two days (edged keeps trying), then answers again.
        rig.server.stop()
        fc.advance(hours: 48)
        let before = try rig.count("hourly")
        let silentUntil = SystemClock.monotonicMillis() + 1500
        _ = try await rig.run(collection, link: link) { SystemClock.monotonicMillis() >= silentUntil }
        #expect(try rig.count("hourly") == before, "nothing is stored from a device that does not answer")
        rig.server = SimServer(
            transport: rig.pty.map { .rtu(path: $0.b, baud: 38400) }
                ?? .tcp(host: "127.0.0.1", port: rig.bus.endpoint!.port),
            devices: [], flowComputers: [fc])
        try rig.server.start()
        let resumed = try await rig.run(collection, link: link) {
            try rig.count("hourly") == 288 && rig.count("daily") == 12
        }
        let afterOutage = try rig.store.efmCounts(device: "meter-1")
        #expect(resumed, "\(afterOutage); held \(collection.held); \(rig.lock.withLock { rig.reports.suffix(5) })")

        // edged restarts: a new collection from the stored cursors, over a new connection.
        fc.advance(hours: 5)
        link = try ModbusLinks.make(for: rig.bus)
        collection = try rig.collection()
        #expect(try await rig.run(collection, link: link) { try rig.count("hourly") == 293 })
        try rig.expectConsecutive("hourly", period: 3600)
        try rig.expectConsecutive("daily", period: 86_400)
        #expect(rig.lock.withLock { rig.duplicates } <= 1, "at most the record at the cursor is read again")
        #expect(rig.lock.withLock { rig.reports.filter { !$0.contains("readFailed") } }.isEmpty)
        #expect(try rig.store.efmCounts(device: "meter-1").conflicts.isEmpty)
    }

    /// An outage longer than the ring holds: one gap names the lost range, collection goes on from the oldest
    /// record the device still has.
    @Test func aRingThatWrappedLeavesOneGap() async throws {
        let fc = try SimFlowComputer(name: "meter-1", unit: Self.unit, profile: .flobossDL8000, start: Self.start)
        fc.advance(hours: 10)
        let rig = try Rig(fc, rtu: false)
        let link = try ModbusLinks.make(for: rig.bus)
        let collection = try rig.collection()
        #expect(try await rig.run(collection, link: link) { try rig.count("hourly") == 10 })
        let capacity = EFMProfile.flobossDL8000.hourly.capacity.value
        fc.advance(hours: capacity + 100)
        #expect(
            try await rig.run(collection, link: link) { try rig.store.efmCounts(device: "meter-1").gaps["hourly"] == 1 }
        )
        // At most capacity − 1 records are collectable (the open slot is never read).
        #expect(try await rig.run(collection, link: link) { try rig.count("hourly") == 10 + capacity - 1 })
        #expect(rig.lock.withLock { rig.duplicates } == 0)
    }

    /// A 35-day backfill on the bus that also polls a live device: history requests go only in the live
    /// polls' slack, so the live cadence holds while all 839 + 34 records arrive.
    @Test func liveCadenceHoldsDuringABackfill() async throws {
        let fc = try SimFlowComputer(name: "meter-1", unit: Self.unit, profile: .flobossDL8000, start: Self.start)
        fc.advance(hours: 35 * 24)
        fc.emulateLine(baud: 9600)  // a 36-byte record reply takes ~42 ms, as on a 9600-baud RS-485 line
        let tags = try ExamplePad.load().template(named: "oms-esp-gauge")!.tags
        let live = SimDevice(name: "gauge", unit: 1, tags: tags)
        let server = SimServer(transport: .tcp(host: "127.0.0.1", port: 0), devices: [live], flowComputers: [fc])
        try server.start()
        defer { server.stop() }
        let interval = TimeSpan(milliseconds: 400)
        let bus = BusConfig(
            name: "lan", kind: .tcp, device: nil, serial: nil, rs485: nil,
            endpoint: TCPEndpoint(host: "127.0.0.1", port: server.port, connectTimeout: .seconds(1)),
            interFrameDelay: TimeSpan(milliseconds: 0), responseTimeout: TimeSpan(milliseconds: 100),
            byteTimeout: TimeSpan(milliseconds: 50), retries: 0)
        let poller = DevicePoller(
            config: DeviceConfig(
                name: "gauge", bus: "lan", unit: 1, template: "t", poll: interval, enabled: true, offlineAfter: 3,
                maxBackoff: .seconds(2), limitOverrides: nil, tagOverrides: [:]),
            tags: tags, limits: DeviceLimits(), timing: BusTiming.of(bus, turnaround: TimeSpan(milliseconds: 1)))
        let dir = TempDir("edged-efm")
        let (store, _) = try BufferStore.open(path: dir.file("buffer.db"), maxBytes: ByteCount(bytes: 64 << 20))
        defer { store.close() }
        let collection = EFMCollection(
            device: "meter-1", unit: Self.unit,
            configuration: EFMCollector.Configuration(
                profile: fc.profile, unit: UInt8(Self.unit), transport: .tcp, cycleMillis: 60_000, retryMillis: 500),
            cursors: [:],
            store: { request, done in
                do {
                    let write = try EFMWrite(
                        device: "meter-1", archive: request.archive, records: request.records, events: request.events,
                        gaps: request.gaps, cursor: request.cursor, collectedWallMillis: SystemClock.wallMillis())
                    store.enqueueEFM(write) { done((try? $0.get()) == nil ? "store failed" : nil) }
                } catch { done("\(error)") }
            })
        let times = Locked<[Int64]>([])
        let bp = BusPoller(
            bus: bus, devices: [poller], efm: [collection], logger: Logger(label: "test"),
            makeLink: { () throws(ModbusError) -> any ModbusLink in try ModbusLinks.make(for: bus) },
            report: { r in
                if r.device == "gauge" && r.errors.isEmpty {
                    times.withLock { $0.append(SystemClock.monotonicMillis()) }
                }
            })
        bp.start()
        defer { bp.stop() }
        let capacity = EFMProfile.flobossDL8000.hourly.capacity.value
        let dailyCapacity = EFMProfile.flobossDL8000.daily.capacity.value
        let done = try await eventually(timeout: 120) {
            let c = try store.efmCounts(device: "meter-1").records
            return c["hourly"] == capacity - 1 && c["daily"] == dailyCapacity - 1
        }
        let counts = try store.efmCounts(device: "meter-1")
        #expect(done, "\(counts)")
        let t = times.withLock { $0 }
        let gaps = zip(t, t.dropFirst()).map { $1 - $0 }
        #expect(gaps.count >= 3, "live polls during the backfill: \(t.count)")
        let mean = Double(gaps.reduce(0, +)) / Double(max(1, gaps.count))
        let want = Double(interval.milliseconds)
        print(
            "EFM backfill of \(counts.records) beside a live poll every \(want) ms: \(t.count) live polls, mean \(mean) ms"
        )
        #expect(abs(mean - want) <= want * 0.1, "live polls every \(mean) ms on average, configured \(want)")
        #expect((gaps.max() ?? 0) < 2 * interval.milliseconds, "longest interval \(gaps.max() ?? 0) ms")
    }
}

/// Hands a value that is not Sendable to the thread that alone uses it from then on (the test awaits it).
// Guard: one thread at a time — the test's until it hands the value over, then the bus thread's, awaited.
struct Unchecked<T>: @unchecked Sendable { let value: T }
