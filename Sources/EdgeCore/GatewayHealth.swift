/// The gateway's own health, sampled every `gateway.healthInterval` and stored as readings of a device named
/// after the gateway (issue 14): they go through the buffer, report-by-exception and the uplink like any
/// reading, so the platform shows a pad's "field data sync success rate" without a second channel.
public struct GatewayHealth: Sendable, Equatable {
    /// Upload attempts in the interval and how many the server stored (2xx).
    public var uplinkAttempts = 0
    public var uplinkStored = 0
    /// The last attempt's round trip, ms.
    public var uplinkRoundTripMillis: Int64?
    /// Records waiting in the buffer (alarm and reading lanes).
    public var backlogRecords: Int64 = 0
    /// Age of the oldest queued reading, seconds.
    public var oldestReadingAgeSeconds: Int64?
    public var bufferBytes: Int64 = 0
    public var bufferBudgetBytes: Int64 = 0
    /// Bytes on the wire this calendar month.
    public var dataUsedMonthBytes: Int64 = 0
    /// Own (anonymous) memory of the process.
    public var ownMemoryBytes: Int64?
    /// CPU used in the interval, % of one core.
    public var cpuPercent: Double?
    /// Free space where the buffer lives.
    public var diskFreeBytes: Int64?
    public var clockSynchronized = false
    public var uptimeSeconds: Int64 = 0
    public var version = ""
    public var devices: [Device] = []
    public var buses: [Bus] = []

    public struct Device: Sendable, Equatable {
        public var name: String
        /// Requests answered in the interval (exceptions count: the device answered), %; nil without requests.
        public var responseRate: Double?
        /// Mean answer latency in the interval, ms.
        public var latencyMillis: Double?
        public init(name: String, responseRate: Double?, latencyMillis: Double?) {
            self.name = name; self.responseRate = responseRate; self.latencyMillis = latencyMillis
        }
    }

    public struct Bus: Sendable, Equatable {
        public var name: String
        /// Share of the interval the bus spent in exchanges, %.
        public var utilisation: Double
        public init(name: String, utilisation: Double) { self.name = name; self.utilisation = utilisation }
    }

    public init() {}

    /// The series' tags for `devices` and `buses`: names, units, deadbands (what a change must exceed to be
    /// stored before the hourly integrity reading).
    public static func tags(devices: [String], buses: [String]) -> [TagDefinition] {
        func tag(_ name: String, _ units: String?, deadband: Double?, text: Bool = false) -> TagDefinition {
            TagDefinition(
                name: name, table: .holding, address: 0, type: text ? .string : .float64, bit: nil,
                length: text ? 1 : nil, order: nil, scale: 1, offset: 0, span: nil, units: units,
                deadband: deadband.map(Deadband.absolute), integrity: .hours(1), states: nil)
        }
        var out = [
            tag("uplink_success_rate", "%", deadband: 5),
            tag("uplink_round_trip", "ms", deadband: 200),
            tag("backlog_records", nil, deadband: 100),
            tag("oldest_reading_age", "s", deadband: 60),
            tag("buffer_bytes", "B", deadband: 1_048_576),
            tag("buffer_used", "%", deadband: 1),
            tag("data_used_month", "B", deadband: 100_000),
            tag("memory_own", "B", deadband: 1_048_576),
            tag("cpu", "%", deadband: 2),
            tag("disk_free", "B", deadband: 10_485_760),
            tag("clock_synchronized", nil, deadband: 0.5),
            tag("uptime", "s", deadband: nil),
            tag("version", nil, deadband: nil, text: true)
        ]
        for d in devices {
            out.append(tag("device_\(identifier(d))_response_rate", "%", deadband: 5))
            out.append(tag("device_\(identifier(d))_latency", "ms", deadband: 20))
        }
        for b in buses { out.append(tag("bus_\(identifier(b))_utilisation", "%", deadband: 2)) }
        return out
    }

    /// A device or bus name as part of a tag name (`rpc-1` → `rpc_1`).
    public static func identifier(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
    }

    /// The sample as readings of `device` (the gateway id) at `wallMillis`; values the box did not give are
    /// left out.
    public func readings(device: String, wallMillis: Int64, monotonicNanos: UInt64, clockSynchronized: Bool)
        -> [Reading]
    {
        var values: [(String, TagValue)] = []
        func add(_ name: String, _ v: Double?) { if let v, v.isFinite { values.append((name, .number(v))) } }
        if uplinkAttempts > 0 { add("uplink_success_rate", 100 * Double(uplinkStored) / Double(uplinkAttempts)) }
        add("uplink_round_trip", uplinkRoundTripMillis.map(Double.init))
        add("backlog_records", Double(backlogRecords))
        add("oldest_reading_age", oldestReadingAgeSeconds.map(Double.init))
        add("buffer_bytes", Double(bufferBytes))
        if bufferBudgetBytes > 0 {
            add("buffer_used", (1000 * Double(bufferBytes) / Double(bufferBudgetBytes)).rounded() / 10)
        }
        add("data_used_month", Double(dataUsedMonthBytes))
        add("memory_own", ownMemoryBytes.map(Double.init))
        add("cpu", cpuPercent.map { ($0 * 10).rounded() / 10 })
        add("disk_free", diskFreeBytes.map(Double.init))
        add("clock_synchronized", self.clockSynchronized ? 1 : 0)
        add("uptime", Double(uptimeSeconds))
        values.append(("version", .text(version)))
        for d in devices {
            add("device_\(Self.identifier(d.name))_response_rate", d.responseRate.map { ($0 * 10).rounded() / 10 })
            add("device_\(Self.identifier(d.name))_latency", d.latencyMillis.map { ($0 * 10).rounded() / 10 })
        }
        for b in buses { add("bus_\(Self.identifier(b.name))_utilisation", (b.utilisation * 10).rounded() / 10) }
        return values.map {
            Reading(
                device: device, tag: $0.0, value: $0.1, quality: .good, wallMillis: wallMillis,
                monotonicNanos: monotonicNanos, clockSynchronized: clockSynchronized)
        }
    }

    /// Per device: response rate and mean latency between two snapshots of its counters.
    public static func device(_ name: String, from a: DeviceCounters, to b: DeviceCounters) -> Device {
        let requests = b.requests - a.requests
        // Exceptions are counted among the responses: the device answered.
        let responses = b.responses - a.responses
        let answered = responses
        let latency = b.latencyTotalMicros - a.latencyTotalMicros
        return Device(
            name: name, responseRate: requests > 0 ? min(100, 100 * Double(answered) / Double(requests)) : nil,
            latencyMillis: responses > 0 ? Double(latency) / Double(responses) / 1000 : nil)
    }
}
