/// Where a profile value comes from. Enron devices disagree on pointer base, pointer meaning, date/time order
/// and word order (reference §1.5, §6), so every value in a profile says whether a manual states it or why it
/// was assumed — an auditor, or the engineer commissioning a new device, can see what to verify.
public enum Provenance: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Stated by a manual: the note names it and the page.
    case confirmed(String)
    /// Not stated anywhere found: the note says why this value was chosen.
    case assumed(String)

    public var description: String {
        switch self {
        case .confirmed(let note): "confirmed: \(note)"
        case .assumed(let note): "assumed: \(note)"
        }
    }

    public var isConfirmed: Bool { if case .confirmed = self { true } else { false } }
}

/// A profile value and where it comes from.
public struct Sourced<Value: Sendable & Equatable & Codable>: Sendable, Equatable, Codable {
    public var value: Value
    public var source: Provenance
    public init(_ value: Value, _ source: Provenance) { self.value = value; self.source = source }
}

/// The two archives of quantity transaction records (QTRs) a flow computer keeps.
public enum ArchiveKind: String, Sendable, Equatable, Hashable, Codable, CaseIterable {
    case hourly, daily
}

/// What a device's archive pointer register holds (reference §1.5 — the main trap between vendors).
public enum PointerMeaning: String, Sendable, Equatable, Codable {
    /// The index of the last record stored (Scanner 3100).
    case lastWritten
    /// The index at which the next record will be stored; the last record is one before (FloBoss, DL8000).
    case nextToWrite
}

/// Which timestamp float comes first in a record.
public enum StampOrder: String, Sendable, Equatable, Codable {
    /// Date MMDDYY, then time: history records (simplymodbus).
    case dateFirst
    /// Time, then date MMDDYY: standard event records.
    case timeFirst
}

/// How the time float is written.
public enum TimeFormat: String, Sendable, Equatable, Codable {
    /// 080000.0 is 08:00:00.
    case hhmmss
    /// 0800.0 is 08:00 (a DL8000 page says so while its table says HHMMSS).
    case hhmm
}

/// What a record field measures, which decides the decimals it is reported with: BLM 43 CFR 3175.104(a)
/// asks for volume, flow time and integral value to at least 5 decimals and averages to at least 3.
public enum FieldKind: String, Sendable, Equatable, Codable {
    /// A quantity that accumulates over the period (volume, mass).
    case volume
    case energy
    case flowTime
    /// Integral value or average extension.
    case integral
    /// A time-weighted average of a live input (DP, SP, temperature).
    case average
    /// A slot with no stated meaning (a spare user slot): reported as the device sent it.
    case other

    /// The fewest decimals the export writes.
    public var minimumDecimals: Int {
        switch self {
        case .volume, .energy, .flowTime, .integral: 5
        case .average: 3
        case .other: 0
        }
    }
}

/// One 4-byte float of an archive record after its timestamp.
public struct ArchiveField: Sendable, Equatable, Codable {
    public var name: String
    public var units: String
    public var kind: FieldKind
    public var source: Provenance
    public init(_ name: String, units: String, kind: FieldKind, _ source: Provenance) {
        self.name = name; self.units = units; self.kind = kind; self.source = source
    }
}

/// The byte layout of an archive record: two timestamp floats, then one float per field.
public struct RecordLayout: Sendable, Equatable, Codable {
    public var stampOrder: Sourced<StampOrder>
    public var timeFormat: Sourced<TimeFormat>
    public var fields: [ArchiveField]

    public init(stampOrder: Sourced<StampOrder>, timeFormat: Sourced<TimeFormat>, fields: [ArchiveField]) {
        self.stampOrder = stampOrder; self.timeFormat = timeFormat; self.fields = fields
    }

    /// Bytes of one record: every field is a 4-byte float, as are the date and the time.
    public var recordSize: Int { 8 + 4 * fields.count }
}

/// Where and how one archive is read.
public struct ArchiveProfile: Sendable, Equatable, Codable {
    public var kind: ArchiveKind
    /// The archive register sent as the start address of an archive read (700, 704, …).
    public var register: Sourced<Int>
    /// Records the ring holds before it overwrites the oldest.
    public var capacity: Sourced<Int>
    /// The register holding the archive pointer.
    public var pointerRegister: Sourced<Int>
    /// The first record index: 0 or 1.
    public var pointerBase: Sourced<Int>
    public var pointerMeaning: Sourced<PointerMeaning>
    public var layout: RecordLayout

    public init(
        kind: ArchiveKind, register: Sourced<Int>, capacity: Sourced<Int>, pointerRegister: Sourced<Int>,
        pointerBase: Sourced<Int>, pointerMeaning: Sourced<PointerMeaning>, layout: RecordLayout
    ) {
        self.kind = kind; self.register = register; self.capacity = capacity; self.pointerRegister = pointerRegister
        self.pointerBase = pointerBase; self.pointerMeaning = pointerMeaning; self.layout = layout
    }

    /// The record period: what "the next record" means in device time.
    public var periodSeconds: Int { kind == .hourly ? 3600 : 86_400 }
}

/// The event/alarm log's record layout.
public enum EventLayout: String, Sendable, Equatable, Codable {
    /// 20 bytes: u16 bitmap, u16 register, float time HHMMSS, float date MMDDYY, float as-found (or current)
    /// value, float as-left value (or zero) — simplymodbus, DL8000 Table B-4, Scanner 2000.
    case standard20

    public var recordSize: Int { 20 }
}

/// Where the contract day starts.
public enum ContractHour: Sendable, Equatable, Codable {
    /// Read from this register (1758-FLO: 3019).
    case register(Int)
    /// Configured on the device and given here (0–23).
    case fixed(Int)
}

/// Everything edged must know to collect one kind of flow computer's EFM data over Enron Modbus. Values
/// only, Codable, so a site can add a device by configuration; every value carries its `Provenance`.
public struct EFMProfile: Sendable, Equatable, Codable {
    public var name: String
    public var hourly: ArchiveProfile
    public var daily: ArchiveProfile
    public var eventLayout: Sourced<EventLayout>
    public var contractHour: Sourced<ContractHour>
    /// Word order of 32-bit values; Enron's default is ABCD (high word first).
    public var wordOrder: Sourced<WordOrder>
    /// The most data bytes the device puts in one reply (a record larger than this cannot be read).
    public var maxReplyBytes: Sourced<Int>

    public init(
        name: String, hourly: ArchiveProfile, daily: ArchiveProfile, eventLayout: Sourced<EventLayout>,
        contractHour: Sourced<ContractHour>, wordOrder: Sourced<WordOrder>, maxReplyBytes: Sourced<Int>
    ) {
        self.name = name; self.hourly = hourly; self.daily = daily; self.eventLayout = eventLayout
        self.contractHour = contractHour; self.wordOrder = wordOrder; self.maxReplyBytes = maxReplyBytes
    }

    public func archive(_ kind: ArchiveKind) -> ArchiveProfile { kind == .hourly ? hourly : daily }

    /// What makes the profile unusable, one sentence each; empty when it can be used.
    public var problems: [String] {
        var out: [String] = []
        for a in [hourly, daily] {
            let k = a.kind.rawValue
            if a.capacity.value < 2 { out.append("\(name) \(k): capacity \(a.capacity.value) is below 2") }
            if ![0, 1].contains(a.pointerBase.value) {
                out.append("\(name) \(k): pointer base \(a.pointerBase.value) is neither 0 nor 1")
            }
            if a.capacity.value + a.pointerBase.value > 65_536 {
                out.append("\(name) \(k): record indices above 65535 do not fit a request's quantity field")
            }
            if EnronRegister.width(of: a.pointerRegister.value) == nil
                || EnronRegister.width(of: a.pointerRegister.value) == .boolean
            {
                out.append("\(name) \(k): pointer register \(a.pointerRegister.value) holds no number")
            }
            if a.layout.recordSize > maxReplyBytes.value {
                let size = a.layout.recordSize
                out.append("\(name) \(k): a \(size)-byte record exceeds the \(maxReplyBytes.value)-byte reply limit")
            }
        }
        if case .fixed(let h) = contractHour.value, !(0...23).contains(h) {
            out.append("\(name): contract hour \(h) is not 0–23")
        }
        return out
    }
}
