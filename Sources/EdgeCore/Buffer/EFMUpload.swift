/// One gas measurement record as the uplink sends it (docs/sync-protocol.md §4.5): what the store kept — the
/// device's bytes, their identity and their decoded form — with the meter run it belongs to.
public struct EFMUploadRecord: Sendable, Equatable {
    /// `hourly`, `daily` or `event`.
    public var kind: String
    public var device: String
    public var meter: String
    public var contractHour: Int
    /// The record's own timestamp, device-local, as the device gave it (`2024-06-03T13:00:00`).
    public var deviceTime: String
    /// The record's identity in the device's terms (`RecordIdentity.key`) and the FNV-1a-64 of `raw`.
    public var key: String
    public var hash: String
    /// When edged read it from the device (UTC ms).
    public var collectedWallMillis: Int64
    /// The record's bytes exactly as the device sent them.
    public var raw: [UInt8]
    public var body: Body

    public enum Body: Sendable, Equatable {
        /// An hourly or daily record: its fields in layout order, the float each held, and its units.
        case archive(names: [String], numbers: [Double], units: [String?])
        /// An event-log record.
        case event(register: UInt16, bitmap: UInt16, asFound: Float, asLeft: Float)
    }

    public init(
        kind: String, device: String, meter: String, contractHour: Int, deviceTime: String, key: String,
        hash: String, collectedWallMillis: Int64, raw: [UInt8], body: Body
    ) {
        self.kind = kind; self.device = device; self.meter = meter; self.contractHour = contractHour
        self.deviceTime = deviceTime; self.key = key; self.hash = hash
        self.collectedWallMillis = collectedWallMillis; self.raw = raw; self.body = body
    }
}

/// Records a flow computer overwrote before edged could collect them (its ring wrapped during an outage longer
/// than it holds), as the uplink sends it (docs/sync-protocol.md §4.6).
public struct EFMGapUpload: Sendable, Equatable {
    /// `hourly` or `daily`.
    public var kind: String
    public var device: String
    public var meter: String
    /// The last record collected before the loss and the oldest one the device still held (device-local).
    public var from: String
    public var to: String
    public var periods: Int64
    /// When edged found the loss (UTC ms).
    public var notedWallMillis: Int64

    public init(
        kind: String, device: String, meter: String, from: String, to: String, periods: Int64, notedWallMillis: Int64
    ) {
        self.kind = kind; self.device = device; self.meter = meter; self.from = from; self.to = to
        self.periods = periods; self.notedWallMillis = notedWallMillis
    }
}
