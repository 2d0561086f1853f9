/// One polled device: a unit id on a bus, read through a template.
public struct DeviceConfig: Sendable, Equatable, Codable {
    public init(
        name: String, bus: String, unit: Int, template: String, poll: TimeSpan, enabled: Bool, offlineAfter: Int,
        maxBackoff: TimeSpan, limitOverrides: LimitOverrides?, tagOverrides: [String: TagOverride]
    ) {
        self.name = name; self.bus = bus; self.unit = unit; self.template = template; self.poll = poll;
        self.enabled = enabled; self.offlineAfter = offlineAfter; self.maxBackoff = maxBackoff;
        self.limitOverrides = limitOverrides; self.tagOverrides = tagOverrides
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
