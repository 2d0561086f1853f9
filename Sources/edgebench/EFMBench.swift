import ArgumentParser
import EdgeBuffer
import EdgeCore
import EdgeSim
import EdgeSystem
import Foundation
import Logging
import ModbusPoller

/// An EFM backfill on a bus shared with a live device, beside what `EFMBusModel` predicts for it: edgesim's
/// Scanner 2000 behind a line emulated at 9600 baud (each reply held for its bytes' time), served over loopback
/// TCP with a live device polled every 400 ms; edged's `EFMCollection` in a `BusPoller`, records committed to a
/// real buffer file. The live cadence is measured in the same run.
struct EFMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "efm", abstract: "EFM backfill bus time beside the model, and the live cadence meanwhile.")
    @Option(help: "Hours of history the flow computer holds (records to backfill).") var hours: Int = 240
    @Option(help: "Directory for the buffer file.") var dir: String = NSTemporaryDirectory()

    static let unit = 20
    static let baud = 9600
    static let interval = TimeSpan(milliseconds: 400)

    func run() throws {
        Report.section("EFM backfill (Scanner 2000 at \(Self.baud) baud emulated, live device every 400 ms)")
        let start = DeviceTimestamp(year: 2024, month: 3, day: 1, hour: 0, minute: 0, second: 0)!
        let fc = try SimFlowComputer(name: "meter-1", unit: Self.unit, profile: .scanner2000, start: start)
        fc.advance(hours: hours)
        fc.emulateLine(baud: Self.baud)
        let tags = try BenchPad.load().template(named: "oms-esp-gauge")!.tags
        let live = SimDevice(name: "gauge", unit: 1, tags: tags)
        let server = SimServer(transport: .tcp(host: "127.0.0.1", port: 0), devices: [live], flowComputers: [fc])
        try server.start()
        defer { server.stop() }
        let bus = BusConfig(
            name: "lan", kind: .tcp, device: nil, serial: nil, rs485: nil,
            endpoint: TCPEndpoint(host: "127.0.0.1", port: server.port, connectTimeout: .seconds(1)),
            interFrameDelay: TimeSpan(milliseconds: 0), responseTimeout: TimeSpan(milliseconds: 100),
            byteTimeout: TimeSpan(milliseconds: 50), retries: 0)
        let model = Self.model(bus: bus, liveTags: tags)

        // One archive read at a time, nothing else on the bus: the per-request figure.
        let link = try ModbusLinks.make(for: bus)
        let reads = 20
        let perRead =
            try Report.time {
                for i in 1...reads {
                    let frame = EnronFrame.archiveRead(unit: UInt8(Self.unit), archive: 700, index: i)
                    _ = try link.rawExchange(unit: Self.unit, request: frame, describe: "archive read")
                }
            } / Double(reads)
        link.close()
        Report.figure(
            "one hourly record read (72 bytes), alone", perRead * 1000, "ms",
            reference: ("model", model.seconds(.hourlyRecord) * 1000), higherIsBetter: false)

        // The backfill beside the live device.
        let work = URL(fileURLWithPath: dir).appendingPathComponent("edgebench-efm-\(getpid())").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let (store, _) = try BufferStore.open(path: work + "/buffer.db", maxBytes: ByteCount(bytes: 64 << 20))
        defer { store.close() }
        let daily = hours / 24
        let wanted = hours + daily
        let committed = Locked(0)
        let done = DispatchSemaphore(value: 0)
        let failed = Locked(0)
        let collection = EFMCollection(
            device: "meter-1", unit: Self.unit,
            configuration: EFMCollector.Configuration(
                profile: fc.profile, unit: UInt8(Self.unit), transport: .tcp, cycleMillis: 600_000,
                retryMillis: 500),
            cursors: [:],
            store: { request, answer in
                do {
                    let write = try EFMWrite(
                        device: "meter-1", archive: request.archive, records: request.records, events: request.events,
                        gaps: request.gaps, cursor: request.cursor,
                        collectedWallMillis: Int64(Date().timeIntervalSince1970 * 1000))
                    store.enqueueEFM(write) { result in
                        guard case .success = result else { return answer("store failed") }
                        answer(nil)
                        let total = committed.withLock { n in
                            n += request.records.count
                            return n
                        }
                        if total == wanted { done.signal() }
                    }
                } catch { answer("\(error)") }
            },
            report: { r in if case .readFailed = r { failed.withLock { $0 += 1 } } })
        let poller = DevicePoller(
            config: DeviceConfig(
                name: "gauge", bus: "lan", unit: 1, template: "oms-esp-gauge", poll: Self.interval, enabled: true,
                offlineAfter: 3, maxBackoff: .seconds(2), limitOverrides: nil, tagOverrides: [:]),
            tags: tags, limits: DeviceLimits(), timing: BusTiming.of(bus, turnaround: TimeSpan(milliseconds: 1)))
        let polls = Locked<[UInt64]>([])
        let servedBefore = fc.requestsServed
        let bp = BusPoller(
            bus: bus, devices: [poller], efm: [collection], logger: Logger(label: "edgebench"),
            makeLink: { () throws(ModbusError) -> any ModbusLink in try ModbusLinks.make(for: bus) },
            report: { r in
                if r.errors.isEmpty { polls.withLock { $0.append(DispatchTime.now().uptimeNanoseconds) } }
            })
        var finished = false
        let wall = Report.time {
            bp.start()
            finished = done.wait(timeout: .now() + 110) == .success
        }
        bp.stop()
        guard finished else {
            throw ValidationError("backfill did not finish in 110 s: \(committed.withLock { $0 }) of \(wanted) records")
        }
        let requests = fc.requestsServed - servedBefore

        // What the collector sends the first time, up to the last record's commit: the pointers; per archive the
        // newest record, the slot after it (empty: the ring has not wrapped) and every record. (The event read
        // comes after that commit.)
        let history =
            model.pointerReadSeconds
            + Array(repeating: model.seconds(.hourlyRecord), count: hours + 2)
            + Array(repeating: model.seconds(.dailyRecord), count: daily + 2)
        let predicted = model.drainSeconds(history) ?? .infinity
        Report.figure(
            "history requests served", Double(requests), "", reference: ("model", Double(history.count)),
            higherIsBetter: false)
        // A failed read (no reply within the response timeout on a loaded machine) ends the cycle: retried after
        // 500 ms, from the pointers.
        Report.figure("history reads failed and retried", Double(failed.withLock { $0 }), "")
        Report.figure(
            "backfill of \(hours) + \(daily) records, wall time", wall, "s", reference: ("model", predicted),
            higherIsBetter: false)
        Report.figure("… of which history bus time (model)", history.reduce(0, +), "s")
        let t = polls.withLock { $0 }
        let gaps = zip(t, t.dropFirst()).map { Double($1 - $0) / 1e6 }
        let mean = gaps.reduce(0, +) / Double(max(1, gaps.count))
        let want = Double(Self.interval.milliseconds)
        Report.figure(
            "live poll interval, mean of \(t.count) polls", mean, "ms",
            reference: ("configured", want), higherIsBetter: false)
        Report.figure("live poll interval, longest", gaps.max() ?? 0, "ms", reference: ("configured", want))
    }

    /// The model of this rig: history requests cost the emulated line's time for the reply (its PDU + 5
    /// characters, as `SimFlowComputer` holds it) plus the loopback exchange; the live device costs its plan on
    /// loopback TCP; the guard is the bus's response timeout.
    static func model(bus: BusConfig, liveTags: [TagDefinition]) -> EFMBusModel {
        let tcp = BusTiming.of(bus, turnaround: TimeSpan(milliseconds: 1))
        let line = BusTiming(
            characterTime: 10.0 / Double(baud), perTransaction: tcp.perTransaction, framingBytes: 2 + 5)
        let plan = ReadPlanner.plan(tags: liveTags, limits: DeviceLimits(), timing: tcp)
        return EFMBusModel(
            profile: .scanner2000, timing: line, checkSeconds: 600,
            slackGuard: bus.responseTimeout.seconds + bus.interFrameDelay.seconds,
            live: [.init(device: "gauge", intervalSeconds: interval.seconds, busSeconds: plan.busSeconds)])
    }
}
