import EdgeCore
import Foundation

/// What a simulated flow computer does wrong on its next reply, for tests of a collector's checks.
public enum EnronReplyFault: Sendable, Equatable, CustomStringConvertible {
    /// The next read reply stops `missing` bytes short of what its byte count says (the rest never comes).
    case truncated(missing: Int)
    /// The next archive reply carries a record `delta` bytes longer (positive) or shorter (negative) than the
    /// profile's record size, with a byte count that matches what it carries.
    case recordSize(delta: Int)
    /// The next request gets no reply at all.
    case silent

    public var description: String {
        switch self {
        case .truncated(let n): "truncated:\(n)"
        case .recordSize(let d): "record-size:\(d)"
        case .silent: "silent"
        }
    }

    /// Parses `truncated:N`, `record-size:N` (N may be negative) and `silent`.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        switch (parts[0], parts.count == 2 ? Int(parts[1]) : nil) {
        case ("silent", nil) where parts.count == 1: self = .silent
        case ("truncated", let n?) where n > 0: self = .truncated(missing: n)
        case ("record-size", let d?) where d != 0: self = .recordSize(delta: d)
        default: return nil
        }
    }
}

/// The state and the Enron register map of one simulated flow computer, as a value: a device clock, hourly and
/// daily rings with the profile's capacity, pointer base and meaning, an event log, live values and parameters.
/// `SimFlowComputer` puts it behind a lock; `reply(to:)` answers one request PDU.
///
/// The register map beside the profile's archive and pointer registers is the simulator's own (no device
/// documents one for these values): 7101 DP (inH2O), 7102 SP (psia), 7103 temperature (degF), 7104 flow rate
/// (MCF/day) — the last closed hour's values; parameters 7110 orifice diameter (in), 7111 pipe diameter (in),
/// 7112 DP high alarm limit (inH2O), 3001 contract hour; 5001/5002 hourly/daily records ever written; 1001
/// flowing, 1002 DP high alarm active.
public struct FlowComputerModel: Sendable {
    public let profile: EFMProfile
    /// Device-local seconds since 2000-01-01 00:00:00.
    public private(set) var clock: Int64
    public private(set) var contractHour: Int
    /// Records ever written per archive (cleared rings start again at 0).
    public private(set) var written: [ArchiveKind: Int] = [.hourly: 0, .daily: 0]
    private var slots: [ArchiveKind: [Int: [UInt8]]] = [.hourly: [:], .daily: [:]]
    private var live: [Int: Float] = [7101: 0, 7102: 0, 7103: 0, 7104: 0]
    private var parameters: [Int: Float] = [7110: 2.0, 7111: 4.026, 7112: 100]
    private var dpHighAlarm = false
    /// Sums (or sums of averages) of the hours of the contract day so far, one per field, and how many hours.
    private var day: (sums: [Float], hours: Int)
    private var events: [(id: Int, isOperator: Bool, raw: [UInt8])] = []
    private var nextEventID = 0
    /// The events the last register-32 read returned: the acknowledge clears these, not ones logged since.
    private var lastReplied: Set<Int> = []
    private var faults: [EnronReplyFault] = []
    /// While set, event acknowledges go unanswered and change nothing (a device that lost them on the line).
    public var ignoreAcknowledges = false

    /// The most events kept; the oldest go first when it is full (devices keep at least 100, reference §1.6).
    public static let eventCapacity = 1000
    public static let parameterRegisters: Set<Int> = [7110, 7111, 7112, 3001]

    public init(profile: EFMProfile, start: DeviceTimestamp, contractHour: Int? = nil) {
        self.profile = profile
        clock = start.secondsSince2000
        if let h = contractHour {
            self.contractHour = h
        } else if case .fixed(let h) = profile.contractHour.value {
            self.contractHour = h
        } else {
            self.contractHour = 0
        }
        day = (Array(repeating: 0, count: profile.daily.layout.fields.count), 0)
    }

    public var timestamp: DeviceTimestamp { DeviceTimestamp(secondsSince2000: clock) }

    // MARK: Simulated time

    /// The inputs of the hour ending at `end` (device seconds since 2000): a deterministic daily cycle.
    public static func hourInputs(endingAt end: Int64) -> (dp: Float, sp: Float, temperature: Float, volume: Float) {
        let phase = 2 * Double.pi * Double((end / 3600) % 24) / 24
        let dp = 50 + 10 * sin(phase)
        let sp = 500 + 5 * cos(phase)
        let t = 80 + 8 * sin(phase - Double.pi / 2)
        return (Float(dp), Float(sp), Float(t), Float(0.2 * (dp * sp).squareRoot()))
    }

    /// The field values of the hourly record for the hour ending at `end`, in `layout` order.
    public static func hourlyValues(_ layout: RecordLayout, endingAt end: Int64) -> [Float] {
        let i = hourInputs(endingAt: end)
        return layout.fields.map { f in
            switch f.kind {
            case .volume: f.name.contains("mass") ? i.volume * 44.3 : i.volume
            case .energy: i.volume * 1.038
            case .flowTime: f.units == "min" ? 60 : 3600
            case .integral: (i.dp * i.sp).squareRoot()
            case .average:
                f.name.hasPrefix("dp")
                    ? i.dp : f.name.hasPrefix("sp") ? i.sp : f.name.hasPrefix("temp") ? i.temperature : 0
            case .other: 0
            }
        }
    }

    /// Steps the clock `hours` hours, closing an hourly record at the end of each and a daily record each time
    /// the clock reaches the contract hour. Live values follow the closed hour; crossing the DP high limit logs
    /// an alarm (set, then clear when DP falls back).
    public mutating func advance(hours: Int) {
        for _ in 0..<max(0, hours) {
            clock += 3600
            let hourly = Self.hourlyValues(profile.hourly.layout, endingAt: clock)
            write(.hourly, hourly)
            let dailyHour = Self.hourlyValues(profile.daily.layout, endingAt: clock)
            for k in day.sums.indices { day.sums[k] += dailyHour[k] }
            day.hours += 1
            let i = Self.hourInputs(endingAt: clock)
            live[7101] = i.dp; live[7102] = i.sp; live[7103] = i.temperature; live[7104] = i.volume * 24
            let limit = parameters[7112]!
            if (i.dp > limit) != dpHighAlarm {
                dpHighAlarm.toggle()
                let bitmap: UInt16 = 1 << 12 | (dpHighAlarm ? 1 << 15 : 0)
                log(bitmap: bitmap, register: 7101, asFound: i.dp, asLeft: 0)
            }
            if timestamp.hour == contractHour { closeDay() }
        }
    }

    private mutating func closeDay() {
        let fields = profile.daily.layout.fields
        let values = fields.indices.map { k -> Float in
            switch fields[k].kind {
            case .volume, .energy, .flowTime, .integral: day.sums[k]
            case .average: day.sums[k] / Float(max(1, day.hours))
            case .other: 0
            }
        }
        write(.daily, values)
        day = (Array(repeating: 0, count: fields.count), 0)
    }

    private mutating func write(_ kind: ArchiveKind, _ values: [Float]) {
        let a = profile.archive(kind)
        let n = written[kind]!
        slots[kind]![a.index(ofRecord: n)] = EnronRecordEncoder.archiveRecord(
            a.layout, at: timestamp, values: values, order: profile.wordOrder.value)
        written[kind] = n + 1
    }

    /// Sets the device clock (to step it back, for instance); records after this carry the new time.
    public mutating func setClock(_ t: DeviceTimestamp) { clock = t.secondsSince2000 }

    // MARK: Registers and events

    /// Changes a parameter (7110–7112, 3001 contract hour 0–23) as an operator would, logging an operator
    /// event (bit 9, bit 3 operator entry) with the as-found and as-left values. False when the register is no
    /// parameter or the value is out of range.
    public mutating func setParameter(register: Int, value: Float) -> Bool {
        let old: Float
        switch register {
        case 3001:
            guard value == value.rounded(), (0...23).contains(value) else { return false }
            old = Float(contractHour)
            contractHour = Int(value)
        case 7110, 7111, 7112:
            guard value.isFinite else { return false }
            old = parameters[register]!
            parameters[register] = value
        default: return false
        }
        log(bitmap: 1 << 9 | 1 << 3, register: UInt16(register), asFound: old, asLeft: value)
        return true
    }

    private mutating func log(bitmap: UInt16, register: UInt16, asFound: Float, asLeft: Float) {
        let raw = EnronRecordEncoder.eventRecord(
            bitmap: bitmap, register: register, at: timestamp, asFound: asFound, asLeft: asLeft,
            order: profile.wordOrder.value)
        events.append((nextEventID, bitmap & 1 << 9 != 0, raw))
        nextEventID += 1
        if events.count > Self.eventCapacity { events.removeFirst(events.count - Self.eventCapacity) }
    }

    /// Events logged and not yet acknowledged.
    public var pendingEvents: Int { events.count }

    /// The value a register holds, or nil when the device has no such register.
    public func value(of register: Int) -> EnronRegister.Value? {
        if register == profile.hourly.pointerRegister.value { return .float32(Float(pointer(.hourly))) }
        if register == profile.daily.pointerRegister.value { return .float32(Float(pointer(.daily))) }
        switch register {
        case 1001: return .boolean(live[7104]! > 0)
        case 1002: return .boolean(dpHighAlarm)
        case 3001: return .int16(Int16(contractHour))
        case 5001: return .int32(Int32(truncatingIfNeeded: written[.hourly]!))
        case 5002: return .int32(Int32(truncatingIfNeeded: written[.daily]!))
        default: return (live[register] ?? parameters[register]).map { .float32($0) }
        }
    }

    /// The archive pointer register's value, per the profile's base and meaning.
    public func pointer(_ kind: ArchiveKind) -> Int { profile.archive(kind).pointer(afterWriting: written[kind]!) }

    /// The record stored at ring index `index`, as the device sends it; nil for a slot never written.
    public func record(_ kind: ArchiveKind, index: Int) -> [UInt8]? { slots[kind]![index] }

    // MARK: Faults

    /// Moves the archive pointer ahead by `count` records that were never written (the slots keep what they held).
    public mutating func skipRecords(_ kind: ArchiveKind, count: Int) { written[kind]! += max(0, count) }

    /// Empties the ring: the pointer goes back to where it was before the first record.
    public mutating func clearArchive(_ kind: ArchiveKind) {
        written[kind] = 0
        slots[kind] = [:]
    }

    /// Queues a fault for the next reply it applies to (`recordSize` waits for an archive read).
    public mutating func inject(_ fault: EnronReplyFault) { faults.append(fault) }

    /// Faults queued and not yet applied.
    public var pendingFaults: [EnronReplyFault] { faults }
}

extension FlowComputerModel {
    /// Answers one Enron request PDU (function code and its 4 data bytes) with the reply PDU, or nil for no
    /// reply — the way a flow computer does and libmodbus's `modbus_reply` cannot (reference §1.2–1.7):
    ///
    /// - FC 01 at 1xxx: packed booleans.
    /// - FC 03 at 3xxx: 2 bytes per register; at 5xxx and 7xxx–9xxx: 4 bytes per register in the profile's word
    ///   order; at most the profile's reply limit (else exception 03).
    /// - FC 03 at an archive register: the quantity field is a record index; the reply is that one record
    ///   (zero-filled for a slot never written); an index outside the ring is exception 03.
    /// - FC 03 at 32: the pending events, operator events before alarms, as many whole 20-byte records as the
    ///   reply limit allows; byte count 0 when there are none.
    /// - FC 05 at 32 with `FF00`: clears the events the last read returned and echoes the request.
    /// - Registers the device lacks: exception 02; other function codes (writes included): exception 01.
    ///
    /// A queued `EnronReplyFault` that applies to this reply is used up here.
    public mutating func reply(to pdu: [UInt8]) -> [UInt8]? {
        guard pdu.count == 5 else { return nil }
        if let k = faults.firstIndex(of: .silent) {
            faults.remove(at: k)
            return nil
        }
        let function = pdu[0]
        let address = Int(pdu[1]) << 8 | Int(pdu[2])
        let quantity = Int(pdu[3]) << 8 | Int(pdu[4])
        let result: [UInt8]
        switch function {
        case 0x05 where address == EnronFrame.eventRegister:
            guard pdu[3] == 0xFF, pdu[4] == 0x00 else { return [0x85, 0x03] }
            if ignoreAcknowledges { return nil }
            acknowledgeEvents()
            return pdu
        case 0x03 where address == EnronFrame.eventRegister:
            let events = eventReply()
            result = [0x03, UInt8(events.count)] + events
        case 0x03 where ArchiveKind.allCases.contains(where: { profile.archive($0).register.value == address }):
            let kind = ArchiveKind.allCases.first { profile.archive($0).register.value == address }!
            guard var record = archiveReply(kind, index: quantity) else { return [0x83, 0x03] }
            if let k = faults.firstIndex(where: { if case .recordSize = $0 { true } else { false } }),
                case .recordSize(let delta) = faults.remove(at: k)
            {
                record = delta > 0 ? record + Array(repeating: 0, count: delta) : Array(record.dropLast(-delta))
            }
            result = [0x03, UInt8(record.count)] + record
        case 0x01, 0x03:
            switch registerReply(function: function, start: address, count: quantity) {
            case .success(let data): result = [function, UInt8(data.count)] + data
            case .failure(let code): return [function | 0x80, code.rawValue]
            }
        default:
            return [function | 0x80, 0x01]
        }
        if let k = faults.firstIndex(where: { if case .truncated = $0 { true } else { false } }),
            case .truncated(let missing) = faults.remove(at: k)
        {
            return Array(result.dropLast(min(missing, result.count - 2)))
        }
        return result
    }

    /// A Modbus exception code, as an Error so register reads can be a `Result`.
    struct Exception: Error { var rawValue: UInt8 }

    private mutating func eventReply() -> [UInt8] {
        let ordered = events.filter(\.isOperator) + events.filter { !$0.isOperator }
        let n = min(ordered.count, profile.maxReplyBytes.value / profile.eventLayout.value.recordSize)
        lastReplied = Set(ordered.prefix(n).map(\.id))
        return ordered.prefix(n).flatMap(\.raw)
    }

    private mutating func acknowledgeEvents() {
        events.removeAll { lastReplied.contains($0.id) }
        lastReplied = []
    }

    private func archiveReply(_ kind: ArchiveKind, index: Int) -> [UInt8]? {
        let a = profile.archive(kind)
        guard (a.pointerBase.value..<(a.pointerBase.value + a.capacity.value)).contains(index) else { return nil }
        return record(kind, index: index) ?? Array(repeating: 0, count: a.layout.recordSize)
    }

    private func registerReply(function: UInt8, start: Int, count: Int) -> Result<[UInt8], Exception> {
        guard count >= 1, let width = EnronRegister.width(of: start),
            EnronRegister.width(of: start + count - 1) == width, (width == .boolean) == (function == 0x01)
        else { return .failure(Exception(rawValue: 0x02)) }
        guard EnronRegister.byteCount(width, count: count) <= profile.maxReplyBytes.value else {
            return .failure(Exception(rawValue: 0x03))
        }
        var values: [EnronRegister.Value] = []
        for r in start..<(start + count) {
            guard let v = value(of: r) else { return .failure(Exception(rawValue: 0x02)) }
            values.append(v)
        }
        let order = profile.wordOrder.value
        var data: [UInt8] = []
        for (i, v) in values.enumerated() {
            switch v {
            case .boolean(let b):
                if i % 8 == 0 { data.append(0) }
                if b { data[i / 8] |= 1 << UInt8(i % 8) }
            case .int16(let s): data += [UInt8(UInt16(bitPattern: s) >> 8), UInt8(UInt16(bitPattern: s) & 0xFF)]
            case .int32(let l): data += EnronRegister.bytes(of: UInt32(bitPattern: l), order: order)
            case .float32(let f): data += EnronRegister.bytes(of: f, order: order)
            }
        }
        return .success(data)
    }
}
