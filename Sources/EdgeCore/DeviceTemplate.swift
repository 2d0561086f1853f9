/// The four Modbus data tables.
public enum RegisterTable: String, Sendable, Codable, CaseIterable, Comparable {
    case coil
    case discrete
    case input
    case holding

    /// Bit tables carry one bit per address; register tables 16 bits.
    public var isBitTable: Bool { self == .coil || self == .discrete }
    /// The read function code.
    public var readFunction: UInt8 {
        switch self {
        case .coil: 1
        case .discrete: 2
        case .holding: 3
        case .input: 4
        }
    }
    /// The leading digit of Modicon numbering (0xxxx, 1xxxx, 3xxxx, 4xxxx).
    public var modiconPrefix: Int {
        switch self {
        case .coil: 0
        case .discrete: 1
        case .input: 3
        case .holding: 4
        }
    }
    public static func < (a: RegisterTable, b: RegisterTable) -> Bool { a.readFunction < b.readFunction }
}

/// How a template writes its addresses.
public enum AddressConvention: String, Sendable, Codable, CaseIterable {
    /// The 0-based address sent on the wire (Scanner 2000 register 8000 = 0x1F40).
    case wire
    /// Modicon numbering: 40001 is holding wire address 0; the first digit names the table.
    case modicon
    /// Enron Modbus (a flow computer's own map): the register number is the wire address and its range alone
    /// decides the value — 1001–1999 booleans (coils), 3001–3999 int16, 5001–5999 int32, 7000–9999 float32 —
    /// with one register holding one whole value (4 bytes for the 32-bit ones).
    case enron
}

/// How a value is laid out in registers.
public enum ValueType: String, Sendable, Codable, CaseIterable {
    case bool, bit
    case uint16, int16, uint32, int32, uint64, int64
    case float32, float64
    case string

    /// Registers one value occupies (strings: `length`).
    public func registerCount(stringLength: Int) -> Int {
        switch self {
        case .bool, .bit, .uint16, .int16: 1
        case .uint32, .int32, .float32: 2
        case .uint64, .int64, .float64: 4
        case .string: stringLength
        }
    }
    /// Whether word/byte order applies.
    public var isMultiRegister: Bool { [.uint32, .int32, .float32, .uint64, .int64, .float64].contains(self) }
}

/// Byte order within the registers of a multi-register value, named by where A (the most significant byte) lands.
public enum WordOrder: String, Sendable, Codable, CaseIterable {
    case abcd = "ABCD"
    case cdab = "CDAB"
    case badc = "BADC"
    case dcba = "DCBA"
}

/// A raw → engineering linear map, e.g. raw 0...65534 → 0...240 in.
public struct Span: Sendable, Equatable, Codable {
    public init(rawLow: Double, rawHigh: Double, engLow: Double, engHigh: Double) {
        self.rawLow = rawLow; self.rawHigh = rawHigh; self.engLow = engLow; self.engHigh = engHigh
    }
    public var rawLow: Double
    public var rawHigh: Double
    public var engLow: Double
    public var engHigh: Double
}

/// Report-by-exception deadband: an absolute change, or a percentage of the tag's span.
public enum Deadband: Sendable, Equatable, Codable {
    case absolute(Double)
    case percentOfSpan(Double)
}

/// One value a device exposes, and how to turn its registers into an engineering reading.
public struct TagDefinition: Sendable, Equatable, Codable {
    public init(
        name: String, table: RegisterTable, address: Int, type: ValueType, bit: Int?, length: Int?, order: WordOrder?,
        scale: Double, offset: Double, span: Span?, units: String?, deadband: Deadband?, integrity: TimeSpan?,
        states: [NamedState]?
    ) {
        self.name = name; self.table = table; self.address = address; self.type = type; self.bit = bit;
        self.length = length; self.order = order; self.scale = scale; self.offset = offset; self.span = span;
        self.units = units; self.deadband = deadband; self.integrity = integrity; self.states = states
    }
    public var name: String
    public var table: RegisterTable
    /// 0-based wire address (converted from Modicon numbering when the template uses it).
    public var address: Int
    public var type: ValueType
    /// Bit index for `bit` (0 = least significant).
    public var bit: Int?
    /// Registers for `string`.
    public var length: Int?
    /// Word/byte order for multi-register values; nil means ABCD.
    public var order: WordOrder?
    public var scale: Double
    public var offset: Double
    public var span: Span?
    public var units: String?
    public var deadband: Deadband?
    /// A reading is stored at least this often even when it has not moved.
    public var integrity: TimeSpan?
    /// Names for enumerated values (`0: stopped, 1: running`), in value order.
    public var states: [NamedState]?
    /// True for a register of an Enron map (`addressing: enron`): a 32-bit value is one register of 4 bytes.
    public var enron: Bool?

    /// Whether one register of this tag holds a whole 32-bit value (Enron 5xxx and 7xxx registers).
    public var isEnronWide: Bool { enron == true && type.isMultiRegister }

    /// Registers (or bits) this tag occupies.
    public var width: Int { table.isBitTable || isEnronWide ? 1 : type.registerCount(stringLength: length ?? 0) }
    /// Last address this tag occupies.
    public var lastAddress: Int { address + width - 1 }

    /// The numeric value a state name stands for, if the tag defines it.
    public func stateValue(named name: String) -> Int? {
        states?.first { $0.name == name }?.value
    }
    /// The state names this tag defines.
    public var stateNames: [String] { states?.map(\.name) ?? [] }
}

/// A named value of an enumerated tag (`1: running`).
public struct NamedState: Sendable, Equatable, Codable {
    public var value: Int
    public var name: String
    public init(value: Int, name: String) { self.value = value; self.name = name }
}

/// A device's request limits: what its firmware accepts in one read.
public struct DeviceLimits: Sendable, Equatable, Codable {
    /// Registers per read request (FC03/FC04); the protocol maximum is 125.
    public var maxRegisters: Int
    /// Bits per read request (FC01/FC02); the protocol maximum is 2000.
    public var maxBits: Int
    /// Unused registers worth reading through to save a request.
    public var maxGap: Int
    /// Addresses never to read (unmapped registers that make the device answer exception 02).
    public var neverRead: [AddressRange]
    /// Time the device takes to start answering; part of the bus-time cost model.
    public var turnaround: TimeSpan

    public init(
        maxRegisters: Int = 125, maxBits: Int = 2000, maxGap: Int = 16,
        neverRead: [AddressRange] = [], turnaround: TimeSpan = TimeSpan(milliseconds: 10)
    ) {
        self.maxRegisters = maxRegisters; self.maxBits = maxBits; self.maxGap = maxGap
        self.neverRead = neverRead; self.turnaround = turnaround
    }
}

/// A closed range of wire addresses in one table.
public struct AddressRange: Sendable, Equatable, Hashable, Codable {
    public var table: RegisterTable
    public var first: Int
    public var last: Int
    public init(table: RegisterTable, first: Int, last: Int) {
        self.table = table; self.first = first; self.last = last
    }
    public func overlaps(table t: RegisterTable, _ lo: Int, _ hi: Int) -> Bool {
        t == table && lo <= last && first <= hi
    }
}

/// A register map reusable across devices of one model.
public struct DeviceTemplate: Sendable, Equatable, Codable {
    public var name: String
    public var description: String?
    /// The file it came from (nil when inline).
    public var sourceFile: String?
    public var addressing: AddressConvention
    public var limits: DeviceLimits
    public var tags: [TagDefinition]
    /// The built-in EFM profile (`scanner2000`, `flobossDL8000`) of a flow computer whose hourly and daily
    /// records and event log edged collects over Enron Modbus; nil for devices that keep none.
    public var efm: String? = nil
    public func tag(named name: String) -> TagDefinition? { tags.first { $0.name == name } }
    /// The template's EFM profile, resolved.
    public var efmProfile: EFMProfile? { efm.flatMap(EFMProfile.builtIn(named:)) }
}
