import EdgeCore
import EdgeSystem
import Foundation

/// One device as the bus thread polls it: its tags, its live read plan and its counters.
public struct DevicePoller: Sendable {
    public let config: DeviceConfig
    public let tags: [TagDefinition]
    public let limits: DeviceLimits
    public private(set) var plan: LivePlan
    public private(set) var counters = DeviceCounters()
    /// The last error, for `edgectl devices` and the log.
    public private(set) var lastError: String?

    /// Per tag, what the hot loop needs: a reference-free decoding step and the name.
    private let steps: [RegisterDecoder.Step]
    private let names: [String]
    /// For an Enron-addressed device: the framing its raw reads are checked with (32-bit registers come 4
    /// bytes each, which libmodbus's read calls refuse).
    private let enron: EnronFrame.Transport?

    public init(
        config: DeviceConfig, tags: [TagDefinition], limits: DeviceLimits, timing: BusTiming,
        enron: EnronFrame.Transport? = nil
    ) {
        self.config = config; self.tags = tags; self.limits = limits; self.enron = enron
        self.steps = tags.map(RegisterDecoder.Step.init)
        self.names = tags.map(\.name)
        self.plan = LivePlan(ReadPlanner.plan(tags: tags, limits: limits, timing: timing))
    }

    /// What one poll produced.
    public struct Outcome: Sendable {
        public var readings: [Reading]
        /// Whether the device answered at all (exceptions count).
        public var answered: Bool
        /// Errors met, already carrying device, bus, unit and registers.
        public var errors: [ModbusError]
    }

    /// Reads the whole plan (or, for a `probe`, only its first request) over `link`.
    ///
    /// A grouped read refused with exception 02 is split and retried at once; a request that times out or
    /// loses the link ends the cycle (the device is not answering: the rest would only cost bus time), and
    /// the remaining tags get the same bad quality.
    public mutating func poll(
        over link: any ModbusLink, bus: BusConfig, probe: Bool = false,
        pause: (TimeSpan) -> Void = { _ in }
    ) -> Outcome {
        var readings: [Reading] = []
        readings.reserveCapacity(tags.count)
        var errors: [ModbusError] = []
        var answered = false
        var anyData = false
        var i = 0
        var abandoned: Quality?
        while i < plan.requests.count {
            let r = plan.requests[i]
            if let q = abandoned {
                readings += r.tagIndexes.map { bad($0, q) }
                i += 1
                continue
            }
            var attempt = 0
            var result: Result<ReadData, ModbusError>
            var started: UInt64
            repeat {
                if attempt > 0 || i > 0 { pause(bus.interFrameDelay) }
                started = SystemClock.monotonicNanos()
                result = Self.read(link, unit: config.unit, r, enron: enron)
                attempt += 1
            } while attempt <= bus.retries && Self.retryable(result)
            let ended = SystemClock.monotonicNanos()
            let wall = SystemClock.wallMillis()
            let latency = Int64((ended - started) / 1000)
            switch result {
            case .success(let data):
                answered = true
                anyData = true
                counters.record(.good, latencyMicros: latency)
                let device = config.name
                switch data {
                case .registers(let words):
                    for t in r.tagIndexes {
                        let (value, quality) = steps[t].decode(words, start: r.start)
                        readings.append(
                            Reading(
                                device: device, tag: names[t], value: value, quality: quality,
                                wallMillis: wall, monotonicNanos: ended))
                    }
                case .bits(let bits):
                    for t in r.tagIndexes {
                        let (value, quality) = RegisterDecoder.decode(tags[t], bits: bits, start: r.start)
                        readings.append(
                            Reading(
                                device: device, tag: names[t], value: value, quality: quality,
                                wallMillis: wall, monotonicNanos: ended))
                    }
                }
            case .failure(var e):
                e.device = config.name
                if e.bus.isEmpty { e.bus = bus.name }
                counters.record(e.quality, latencyMicros: latency)
                lastError = e.description
                errors.append(e)
                if e.deviceAnswered { answered = true }
                if case .exception(2) = e.kind, plan.split(i, tags: tags) {
                    continue  // re-read the two halves at the same index
                }
                if case .exception(2) = e.kind { plan.markUnreadable(i, tagName: tags[r.tagIndexes[0]].name) }
                readings += r.tagIndexes.map { t in
                    Reading(
                        device: config.name, tag: tags[t].name, value: nil, quality: e.quality, wallMillis: wall,
                        monotonicNanos: ended)
                }
                switch e.kind {
                case .timeout, .link: abandoned = e.quality
                default: break
                }
            }
            i += 1
            if probe { break }
        }
        if answered { lastError = errors.last?.description }
        if !probe, !anyData, !errors.isEmpty, errors.allSatisfy({ $0.kind == .exception(2) }) {
            plan.refusedEverything(device: config.name, unit: config.unit)
        }
        return Outcome(readings: probe && !answered ? [] : readings, answered: answered, errors: errors)
    }

    private func bad(_ t: Int, _ q: Quality) -> Reading {
        Reading(
            device: config.name, tag: tags[t].name, value: nil, quality: q, wallMillis: SystemClock.wallMillis(),
            monotonicNanos: SystemClock.monotonicNanos())
    }

    /// Timeouts and garbled frames are worth another attempt; exceptions and dead links are not.
    static func retryable(_ r: Result<ReadData, ModbusError>) -> Bool {
        guard case .failure(let e) = r else { return false }
        switch e.kind {
        case .timeout, .framing: return true
        case .exception, .link: return false
        }
    }

    /// Reads `r.count` Enron 32-bit registers with a raw request and returns their bytes as 16-bit words (two
    /// per register, as they came), after checking unit, function, exception and byte count.
    static func readEnronWide(
        _ link: any ModbusLink, unit: Int, _ r: ReadRequest, transport: EnronFrame.Transport
    ) throws(ModbusError) -> [UInt16] {
        let describe = "Enron registers \(r.start)...\(r.start + r.count - 1)"
        let reply = try link.rawExchange(
            unit: unit, request: EnronFrame.registerRead(unit: UInt8(unit), start: r.start, count: r.count),
            describe: describe)
        let payload: [UInt8]
        do {
            payload = try EnronFrame.readPayload(reply, transport: transport, unit: UInt8(unit))
        } catch {
            if case .exception(_, let code) = error {
                throw ModbusError(.exception(code), bus: "", unit: unit, request: describe)
            }
            // Well framed but not this request's answer (a late reply): drop what waits on the line.
            link.discardPending()
            throw ModbusError(.framing(error.description), bus: "", unit: unit, request: describe)
        }
        guard payload.count == 4 * r.count else {
            throw ModbusError(
                .framing("\(describe) take \(4 * r.count) bytes, the reply holds \(payload.count)"), bus: "",
                unit: unit, request: describe)
        }
        return stride(from: 0, to: payload.count, by: 2).map { UInt16(payload[$0]) << 8 | UInt16(payload[$0 + 1]) }
    }

    enum ReadData {
        case registers([UInt16])
        case bits([Bool])
    }

    static func read(
        _ link: any ModbusLink, unit: Int, _ r: ReadRequest, enron: EnronFrame.Transport? = nil
    ) -> Result<ReadData, ModbusError> {
        do {
            if let transport = enron, !r.table.isBitTable, let width = EnronRegister.width(of: r.start),
                width == .int32 || width == .float32
            {
                return .success(.registers(try readEnronWide(link, unit: unit, r, transport: transport)))
            }
            if r.table.isBitTable {
                return .success(.bits(try link.readBits(unit: unit, table: r.table, start: r.start, count: r.count)))
            }
            return .success(
                .registers(try link.readRegisters(unit: unit, table: r.table, start: r.start, count: r.count)))
        } catch {
            return .failure(error)
        }
    }
}
