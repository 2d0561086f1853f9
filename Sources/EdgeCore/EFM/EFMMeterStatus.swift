/// Where one flow computer's EFM collection stands, for `edgectl efm` and `status`: published by the bus
/// thread after every step, read from anywhere.
public struct EFMMeterStatus: Sendable, Equatable, Codable {
    public var device: String
    public var meter: String
    public var profile: String
    public var contractHour: Int
    /// Per archive (`hourly`, `daily`): the last-written index the device's pointer gave at the latest cycle.
    public var lastWritten: [String: Int] = [:]
    /// Per archive: records written on the device and not yet stored.
    public var behind: [String: Int] = [:]
    /// Per archive: the device timestamp of the last record stored (the collector's cursor).
    public var lastStored: [String: String] = [:]
    /// Per archive held at a resync until an operator resumes it: why.
    public var held: [String: String] = [:]
    /// Event-log acknowledges sent (each only after its events were committed), and the last one (UTC ms).
    public var eventAcknowledges = 0
    public var lastEventAckWallMillis: Int64?
    /// Stores committed, and the last one (UTC ms).
    public var stores = 0
    public var lastStoreWallMillis: Int64?
    /// The latest failed read or store, and when (UTC ms); cleared by the next committed store.
    public var lastError: String?
    public var lastErrorWallMillis: Int64?

    public init(device: String, meter: String, profile: String, contractHour: Int) {
        self.device = device; self.meter = meter; self.profile = profile; self.contractHour = contractHour
    }
}
