/// Why a record's bytes could not be decoded. The raw bytes are kept by the caller either way.
public enum EFMDecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not the size the profile's layout takes.
    case size(expected: Int, got: Int)
    /// The date or time floats name no real date and time (13/45/25, 25:00:00, a fraction, NaN).
    case timestamp(date: Float, time: Float)

    public var description: String {
        switch self {
        case .size(let e, let g): "record of \(g) bytes, the layout takes \(e)"
        case .timestamp(let d, let t): "date \(d) / time \(t) is no valid MMDDYY / HHMMSS"
        }
    }
}

/// One hourly or daily quantity transaction record (QTR), decoded and with the bytes it came from.
/// BLM 43 CFR 3175.104 asks for the original, unaltered record: `raw` is it, byte for byte; `values` are for
/// reading it, never a replacement for it.
public struct ArchiveRecord: Sendable, Equatable, Codable {
    public var archive: ArchiveKind
    /// The record's index in the device's ring (profile base included).
    public var index: Int
    public var timestamp: DeviceTimestamp
    /// The fields in layout order, each as the float the device sent, widened exactly to Double.
    public var values: [(name: String, value: Double)] {
        zip(names, numbers).map { ($0, $1) }
    }
    public var names: [String]
    public var numbers: [Double]
    /// The record's data bytes exactly as the device sent them.
    public var raw: [UInt8]

    public static func == (a: ArchiveRecord, b: ArchiveRecord) -> Bool {
        a.archive == b.archive && a.index == b.index && a.timestamp == b.timestamp && a.names == b.names
            && a.numbers.map(\.bitPattern) == b.numbers.map(\.bitPattern) && a.raw == b.raw
    }

    private enum CodingKeys: String, CodingKey { case archive, index, timestamp, names, numbers, raw }

    /// Decodes `raw` per the archive's layout and the device's word order.
    public init(
        raw: [UInt8], archive: ArchiveProfile, index: Int, order: WordOrder
    ) throws(EFMDecodeError) {
        let layout = archive.layout
        guard raw.count == layout.recordSize else { throw .size(expected: layout.recordSize, got: raw.count) }
        let first = EnronRegister.float(raw, at: 0, order: order)
        let second = EnronRegister.float(raw, at: 4, order: order)
        let (date, time) = layout.stampOrder.value == .dateFirst ? (first, second) : (second, first)
        guard let ts = DeviceTimestamp(date: date, time: time, format: layout.timeFormat.value) else {
            throw .timestamp(date: date, time: time)
        }
        self.archive = archive.kind
        self.index = index
        self.timestamp = ts
        self.names = layout.fields.map(\.name)
        self.numbers = layout.fields.indices.map { Double(EnronRegister.float(raw, at: 8 + 4 * $0, order: order)) }
        self.raw = raw
    }

    /// The value of the field called `name`, if the layout has one.
    public func value(_ name: String) -> Double? {
        names.firstIndex(of: name).map { numbers[$0] }
    }

    /// The record as a key the store can look up: archive and device timestamp, plus the raw bytes' hash.
    public var identity: RecordIdentity {
        RecordIdentity(key: "\(archive.rawValue)@\(timestamp)", raw: raw)
    }
}
