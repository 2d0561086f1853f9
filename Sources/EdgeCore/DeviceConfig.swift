/// One polled device: a unit id on a bus, read through a template.
public struct DeviceConfig: Sendable, Equatable, Codable {
    public init(
        name: String, bus: String, unit: Int, template: String, poll: TimeSpan, enabled: Bool, offlineAfter: Int,
        maxBackoff: TimeSpan, limitOverrides: LimitOverrides?, tagOverrides: [String: TagOverride],
        efm: EFMDeviceConfig? = nil
    ) {
        self.name = name; self.bus = bus; self.unit = unit; self.template = template; self.poll = poll;
        self.enabled = enabled; self.offlineAfter = offlineAfter; self.maxBackoff = maxBackoff;
        self.limitOverrides = limitOverrides; self.tagOverrides = tagOverrides; self.efm = efm
    }
    public var name: String
    public var bus: String
    public var unit: Int
    public var template: String
    public var poll: TimeSpan
    public var enabled: Bool
    /// Consecutive failed polls before the device counts as offline.
    public var offlineAfter: Int
    /// Longest wait between retries of an offline device.
    public var maxBackoff: TimeSpan
    public var limitOverrides: LimitOverrides?
    public var tagOverrides: [String: TagOverride]
    /// Gas measurement collection from this flow computer (its template names the EFM profile).
    public var efm: EFMDeviceConfig?
}

/// The meter run a flow computer measures, for its EFM records (docs/efm.md).
public struct EFMDeviceConfig: Sendable, Equatable, Codable {
    /// The meter id the records are uploaded and exported under (the lease/meter number the operator
    /// reports on).
    public var meter: String
    /// The hour the device's gas day starts (0–23); nil takes the profile's.
    public var contractHour: Int?
    /// False keeps the declaration but collects nothing (a meter being commissioned).
    public var collect: Bool
    /// How often the archive pointers are read once collection caught up (a new hourly record appears once an
    /// hour; 1 minute by default).
    public var check: TimeSpan

    public init(meter: String, contractHour: Int? = nil, collect: Bool = true, check: TimeSpan = .minutes(1)) {
        self.meter = meter; self.contractHour = contractHour; self.collect = collect; self.check = check
    }

    /// The contract hour in force: this one, else the profile's fixed one.
    public func contractHour(profile: EFMProfile) -> Int {
        if let h = contractHour { return h }
        if case .fixed(let h) = profile.contractHour.value { return h }
        return 0
    }
}

/// Per-device narrowing of a template's limits (older firmware, a slow radio link).
public struct LimitOverrides: Sendable, Equatable, Codable {
    public var maxRegisters: Int?
    public var maxBits: Int?
    public var maxGap: Int?
    public var turnaround: TimeSpan?
    public func applied(to base: DeviceLimits) -> DeviceLimits {
        var l = base
        if let v = maxRegisters { l.maxRegisters = v }
        if let v = maxBits { l.maxBits = v }
        if let v = maxGap { l.maxGap = v }
        if let v = turnaround { l.turnaround = v }
        return l
    }
}

/// Per-device changes to one template tag (a different transmitter range, units, deadband).
public struct TagOverride: Sendable, Equatable, Codable {
    public var scale: Double?
    public var offset: Double?
    public var span: Span?
    public var units: String?
    public var deadband: Deadband?
    public var integrity: TimeSpan?
    public func applied(to tag: TagDefinition) -> TagDefinition {
        var t = tag
        if let v = scale { t.scale = v; t.span = nil }
        if let v = offset { t.offset = v; t.span = nil }
        if let v = span { t.span = v; t.scale = 1; t.offset = 0 }
        if let v = units { t.units = v }
        if let v = deadband { t.deadband = v }
        if let v = integrity { t.integrity = v }
        return t
    }
}
