/// Report-by-exception: decides, per tag, whether a reading is worth storing.
///
/// A reading is stored when
/// - it is the first seen for its tag (since start-up),
/// - its quality differs from the last stored reading's (a change of bad cause counts),
/// - its value moved beyond the tag's deadband since the last *stored* value — absolute, or a percentage
///   of the tag's engineering span; no deadband or a deadband of 0 means any change; a text value or a
///   change between number and text is stored on any change,
/// - or the tag's integrity interval passed since the last stored reading (default 15 minutes), so the
///   server knows an unchanged value is still current. Elapsed time is measured on the monotonic clock,
///   so wall-clock jumps neither suppress nor force snapshots.
///
/// A percentage deadband on a tag without a span falls back to any change. Counts of seen and stored
/// readings are kept per tag.
public struct ReportByException: Sendable {
    /// The integrity interval used when a tag does not set one.
    public static let defaultIntegrity = TimeSpan.minutes(15)

    /// A tag of a device.
    public struct TagKey: Sendable, Hashable, CustomStringConvertible {
        public var device: String
        public var tag: String
        public init(device: String, tag: String) { self.device = device; self.tag = tag }
        public var description: String { "\(device).\(tag)" }
    }

    /// Readings seen and stored for one tag.
    public struct Counts: Sendable, Equatable {
        public var seen: Int64 = 0
        public var stored: Int64 = 0
        public init(seen: Int64 = 0, stored: Int64 = 0) { self.seen = seen; self.stored = stored }
    }

    private struct LastStored: Sendable {
        var value: TagValue?
        var quality: Quality
        var monotonicNanos: UInt64
    }

    private var last: [TagKey: LastStored] = [:]
    /// Seen/stored counts per tag; the configured tags are present from the start with zero counts.
    public private(set) var counts: [TagKey: Counts] = [:]
    public let defaultIntegrity: TimeSpan

    /// Starts with no stored values, with zero counts for each device's tags.
    public init(tags: [String: [TagDefinition]] = [:], defaultIntegrity: TimeSpan = ReportByException.defaultIntegrity)
    {
        self.defaultIntegrity = defaultIntegrity
        for (device, defs) in tags {
            for def in defs { counts[TagKey(device: device, tag: def.name)] = Counts() }
        }
    }

    /// Starts with the effective tags of every configured device.
    public init(config: EdgeConfig) {
        var tags: [String: [TagDefinition]] = [:]
        for device in config.devices { tags[device.name] = config.effectiveTags(of: device) }
        self.init(tags: tags)
    }

    /// Counts one reading and says whether to store it; when it says yes, the reading becomes the tag's
    /// last stored value.
    public mutating func admit(_ reading: Reading, tag: TagDefinition) -> Bool {
        let key = TagKey(device: reading.device, tag: reading.tag)
        counts[key, default: Counts()].seen += 1
        let store: Bool
        if let previous = last[key] {
            store = Self.isException(reading, since: previous, tag: tag, defaultIntegrity: defaultIntegrity)
        } else {
            store = true
        }
        if store {
            last[key] = LastStored(
                value: reading.value, quality: reading.quality, monotonicNanos: reading.monotonicNanos)
            counts[key, default: Counts()].stored += 1
        }
        return store
    }

    /// Seen/stored counts of one tag.
    public func counts(device: String, tag: String) -> Counts { counts[TagKey(device: device, tag: tag)] ?? Counts() }

    private static func isException(_ r: Reading, since p: LastStored, tag: TagDefinition, defaultIntegrity: TimeSpan)
        -> Bool
    {
        if r.quality != p.quality { return true }
        let integrity = tag.integrity ?? defaultIntegrity
        // A monotonic clock that went backwards (it should not) is treated as the interval having passed.
        if r.monotonicNanos < p.monotonicNanos { return true }
        if integrity.milliseconds > 0, r.monotonicNanos - p.monotonicNanos >= UInt64(integrity.milliseconds) * 1_000_000
        {
            return true
        }
        switch (r.value, p.value) {
        case (nil, nil):
            return false
        case (.number(let v), .number(let old)):
            return movedBeyond(v, old, threshold: threshold(tag))
        case (.text(let v), .text(let old)):
            return v != old
        default:
            return true
        }
    }

    /// The deadband in engineering units; 0 means any change.
    static func threshold(_ tag: TagDefinition) -> Double {
        switch tag.deadband {
        case nil: return 0
        case .absolute(let d): return abs(d)
        case .percentOfSpan(let p):
            guard let span = tag.span else { return 0 }
            return abs(p) / 100 * abs(span.engHigh - span.engLow)
        }
    }

    static func movedBeyond(_ v: Double, _ old: Double, threshold: Double) -> Bool {
        if v.isNaN || old.isNaN { return !(v.isNaN && old.isNaN) }
        if threshold == 0 { return v != old }
        return abs(v - old) > threshold
    }
}
