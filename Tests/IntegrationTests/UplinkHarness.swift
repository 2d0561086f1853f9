import EdgeBuffer
import EdgeCore
import EdgeTestSupport
import Foundation
import Logging
import Testing
import Uplink

/// The gateway side of an uplink test: the example pad's configuration pointed at a `ReferenceReceiver`, a
/// fresh `BufferStore` the test fills, and an `UplinkService` draining it.
final class UplinkHarness: @unchecked Sendable {
    let receiver: ReferenceReceiver
    let dir = TempDir("edged-uplink")
    let store: BufferStore
    let config: EdgeConfig
    /// Every range a backoff or jitter was drawn from; the draw is the range's lower bound, so waits are
    /// as short as the rules allow (and exactly Retry-After when the server sends one).
    let draws: Draws
    /// What the test stored, by seq.
    private(set) var appended: [Int64: Reading] = [:]
    private var task: Task<Void, any Error>?
    private(set) var service: UplinkService?
    private var wakeContinuation: AsyncStream<Void>.Continuation?
    /// The uplink's own alarm changes, as the gateway would be told them (in order).
    let alarmChanges = ChangeLog()

    /// - Parameters:
    ///   - maxRecords: `uplink.batch.maxRecords`.
    ///   - configure: changes to the uplink configuration (token, TLS, limits).
    ///   - randomWaits: waits drawn at random, as in the field (otherwise the shortest the rules allow).
    init(
        _ receiver: ReferenceReceiver, maxRecords: Int = 100, randomWaits: Bool = false,
        configure: (inout UplinkConfig) -> Void = { _ in }
    ) throws {
        self.receiver = receiver
        draws = Draws(random: randomWaits)
        var c = try ExamplePad.load()
        c.gateway.id = receiver.gateway
        c.uplink.endpoint = receiver.endpoint
        c.uplink.tls = TLSSettings(caFile: receiver.pki.caFile, pinnedPublicKey: receiver.pki.pin)
        c.uplink.token = .file(receiver.tokenFile)
        c.uplink.batch.maxRecords = maxRecords
        c.uplink.connectTimeout = .seconds(2)
        c.uplink.requestTimeout = .seconds(10)
        configure(&c.uplink)
        config = c
        (store, _) = try BufferStore.open(path: dir.file("buffer.db"), maxBytes: ByteCount(bytes: 64 << 20))
    }

    deinit {
        task?.cancel()
        store.close()
    }

    var epoch: String { store.epoch }
    func bufferStats() throws -> BufferStats { try store.stats() }
    var queued: Int64 { ((try? store.stats()).map { $0.alarmRecords + $0.readingRecords }) ?? -1 }

    // MARK: - Filling the buffer

    /// Stores `count` readings of the example pad's devices and tags, one poll round after another, an hour
    /// old (so no batch waits to fill up). `bad` readings (by index) time out. Returns their seqs.
    @discardableResult
    func appendReadings(_ count: Int, bad: Set<Int> = [], tagNamed: ((Int) -> String?)? = nil) async throws -> [Int64] {
        let readings = Self.examplePadReadings(
            config, count: count, bad: bad, startMillis: Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000
        )
        .enumerated().map { i, r in
            var r = r; if let t = tagNamed?(i) { r.tag = t }; return r
        }
        guard let seqs = try await store.append(readings: readings, units: units) else { return [] }
        for (seq, r) in zip(seqs, readings) { appended[seq] = r }
        return Array(seqs)
    }

    func units(_ device: String, _ tag: String) -> String? { self.tag(device, tag)?.units }

    func tag(_ device: String, _ tag: String) -> TagDefinition? {
        guard let d = config.devices.first(where: { $0.name == device }) else { return nil }
        return config.effectiveTags(of: d).first { $0.name == tag }
    }

    /// Readings as the pollers would store them: each round reads every numeric tag of every device, values
    /// move slowly, times step by the device's poll interval plus a few milliseconds of jitter.
    static func examplePadReadings(_ config: EdgeConfig, count: Int, bad: Set<Int> = [], startMillis: Int64)
        -> [Reading]
    {
        let tags = config.devices.flatMap { d in
            config.effectiveTags(of: d).filter { $0.type != .string }.map { (d, $0) }
        }
        var out: [Reading] = []
        out.reserveCapacity(count)
        var round = 0
        while out.count < count {
            for (i, (device, tag)) in tags.enumerated() where out.count < count {
                let t = startMillis + Int64(round) * device.poll.milliseconds + Int64((round * 7 + i) % 13)
                let value = Self.representable(100 + Double(i) * 3 + sin(Double(round) / 20 + Double(i)) * 5, tag)
                let isBad = bad.contains(out.count)
                out.append(
                    Reading(
                        device: device.name, tag: tag.name, value: isBad ? nil : .number(value),
                        quality: isBad ? .bad(.timeout) : .good, wallMillis: t, monotonicNanos: UInt64(out.count)))
            }
            round += 1
        }
        return out
    }

    /// `v` as the device could report it: whole raw counts of a scaled register, a float32's precision.
    static func representable(_ v: Double, _ tag: TagDefinition) -> Double {
        switch NumberFormat.of(tag) {
        case .float32: return Double(Float(v))
        case .decimals(let n): let p = pow(10, Double(n)); return (v * p).rounded() / p
        case .shortest: return v
        }
    }

    /// Stores an alarm event (the alarm lane); returns its seq.
    @discardableResult
    func appendAlarm(_ name: String = "rpc-1-tubing") async throws -> Int64 {
        let seq = try await store.append(
            alarm: AlarmEventRecord(
                alarm: name, occurrence: UUID().uuidString.lowercased(), kind: "limit", device: "rpc-1",
                tag: "tubing_pressure",
                level: "hh", transition: .raised, priority: "critical", value: 612, limit: 600,
                reason: "tubing_pressure 612 psi >= HH 600 psi for 30s",
                wallMillis: Int64(Date().timeIntervalSince1970 * 1000)))
        wakeContinuation?.yield()
        return seq
    }

    /// Sets this month's data usage as a previous run would have saved it.
    func setMonthUsage(_ bytes: Int64) async throws {
        let usage = DataUsage(
            month: DataUsage.month(ofWallMillis: Int64(Date().timeIntervalSince1970 * 1000)), bytes: bytes)
        let text = String(decoding: try JSONEncoder().encode(usage), as: UTF8.self)
        _ = try await store.append(alarms: [], state: StateEntry(key: "uplink-usage", value: text))
    }

    /// This month's data usage as saved in the buffer file.
    func savedMonthUsage() throws -> DataUsage? {
        try store.state("uplink-usage").map { try JSONDecoder().decode(DataUsage.self, from: Data($0.utf8)) }
    }

    // MARK: - Running the service

    /// Starts the upload loop.
    @discardableResult
    func start() -> UplinkService {
        let (wake, continuation) = AsyncStream<Void>.makeStream()
        wakeContinuation = continuation
        var logger = Logger(label: "uplink-test")
        logger.logLevel = .warning
        let draws = self.draws
        let config = self.config
        let changes = alarmChanges
        let service = UplinkService(
            source: UplinkService.Source(config: { config }, store: store, alarm: { changes.append($0) }),
            wake: wake, logger: logger, random: { draws.draw($0) })
        self.service = service
        task = Task { try await service.run() }
        return service
    }

    /// Stops the upload loop and waits for it to end.
    func stop() async {
        task?.cancel()
        _ = try? await task?.value
        task = nil
    }

    /// Waits until the buffer holds nothing to send (alarm and reading lanes empty).
    func drained(timeout: Double = 30) async -> Bool {
        await eventually(timeout: timeout) { queued == 0 }
    }

    var status: UplinkStatus { service?.status ?? UplinkStatus() }
}

/// The uplink alarm changes a test's service reported.
final class ChangeLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [UplinkAlarmChange] = []
    func append(_ c: UplinkAlarmChange) { lock.withLock { items.append(c) } }
    var all: [UplinkAlarmChange] { lock.withLock { items } }
    /// `+name` for a raise, `-name` for a clear, in order.
    var summary: [String] { all.map { ($0.transition == .raised ? "+" : "-") + $0.id.description } }
}

/// Records the ranges waits were drawn from and answers the lower bound (`random`: a random draw, as in
/// the field).
// Guard: `lock` protects `ranges`.
final class Draws: @unchecked Sendable {
    private let lock = NSLock()
    private var ranges: [ClosedRange<Int64>] = []
    let random: Bool
    init(random: Bool = false) { self.random = random }
    func draw(_ r: ClosedRange<Int64>) -> Int64 {
        lock.withLock { ranges.append(r) }
        return random ? Int64.random(in: r) : r.lowerBound
    }
    var all: [ClosedRange<Int64>] { lock.withLock { ranges } }
}
