/// The queues a buffered record waits in. The uplink drains `alarm` before `reading`;
/// `deadLetter` holds batches the server rejected as malformed (kept, counted, never resent).
public enum BufferLane: Int, Sendable, Codable, CaseIterable {
    case alarm = 0
    case reading = 1
    case deadLetter = 2
    /// Gas measurement records (EFM) and their gaps, kept in tables of their own: sent ahead of the readings
    /// backlog with the alarm events, marked uploaded (not deleted) when the server stored them.
    case efm = 3
}

/// What happened to an alarm (docs/sync-protocol.md §4.2): one enum for the alarm engine's events, the
/// buffered records, the engine's snapshot and the wire.
public enum AlarmTransition: String, Sendable, Codable, CaseIterable {
    /// The condition held (for its on-delay) and the alarm is annunciated.
    case raised
    /// The alarm returned to normal (for a latching alarm: and was acknowledged).
    case cleared
    /// An operator acknowledged it.
    case acknowledged
    /// A latched alarm was reset (in the protocol; the engine clears a latched alarm on acknowledgement).
    case reset
    /// An operator shelved it for a bounded time.
    case shelved
    /// The shelve ended: by an operator (`by` set) or by expiry (`by` nil).
    case unshelved
    /// Its `suppressWhen` condition became true.
    case suppressed
    /// Its `suppressWhen` condition no longer holds.
    case unsuppressed
    /// An operator took it out of service.
    case outOfService = "out-of-service"
    /// An operator returned it to service.
    case inService = "in-service"
}

/// One alarm event as it is buffered and uploaded (docs/sync-protocol.md §4.2). Committed on its own, at once.
public struct AlarmEventRecord: Sendable, Codable, Equatable {
    /// The configured alarm's name.
    public var alarm: String
    /// The occurrence id: every transition of one activation carries the same id.
    public var occurrence: String
    /// `limit`, `rate`, `state`, `stale`, `comm-loss`.
    public var kind: String
    public var device: String
    /// The tag the rule watches; nil for comm-loss.
    public var tag: String?
    /// `hh`, `h`, `l`, `ll` for limit alarms.
    public var level: String?
    public var transition: AlarmTransition
    /// `critical`, `high`, `medium`, `low`.
    public var priority: String
    /// The value that caused the transition.
    public var value: Double?
    /// The limit it was compared with.
    public var limit: Double?
    /// Why, in words an operator reads ("tubing_pressure 612 psi >= HH 600 psi for 30s").
    public var reason: String
    /// UTC wall-clock time of the transition, milliseconds since 1970.
    public var wallMillis: Int64
    /// Who made the transition (`edged`, `edgectl:jdoe`).
    public var by: String?
    /// For `shelved`: when the shelving ends (UTC ms).
    public var until: Int64?
    /// False when `wallMillis` was taken with the clock unsynchronized; nil (stored as absent) when it was.
    public var clockSynchronized: Bool?

    public init(
        alarm: String, occurrence: String, kind: String, device: String, tag: String?, level: String? = nil,
        transition: AlarmTransition, priority: String, value: Double?, limit: Double?, reason: String,
        wallMillis: Int64, by: String? = nil, until: Int64? = nil, clockSynchronized: Bool = true
    ) {
        self.alarm = alarm; self.occurrence = occurrence; self.kind = kind; self.device = device; self.tag = tag
        self.level = level; self.transition = transition; self.priority = priority; self.value = value
        self.limit = limit; self.reason = reason; self.wallMillis = wallMillis; self.by = by; self.until = until
        self.clockSynchronized = clockSynchronized ? nil : false
    }

    /// The alarm's identity, as the engine and the status name it.
    public var id: AlarmID { AlarmID(rule: alarm, level: level.flatMap(LimitSet.Level.init(rawValue:))) }
}

/// Why records are missing.
public enum GapReason: String, Sendable, Codable, CaseIterable {
    /// Evicted to keep the buffer inside `storage.maxBytes`.
    case evicted = "storage-budget"
    /// Evicted because older than `storage.retention`.
    case retention
    /// Never stored: the disk was full.
    case diskFull = "disk-full"
    /// Never stored: the database reported an I/O error.
    case ioError = "io-error"
    /// Read from the buffer but not sent, to stay under the monthly data budget (`uplink.monthlyBudget`).
    case dataBudget = "data-budget"

    /// The reason as the sync protocol writes it.
    public var protocolCode: String { rawValue }
}

/// A record that tells the server exactly what is missing, uploaded in seq order with readings
/// (docs/sync-protocol.md §4.3).
///
/// `count` records with seqs in `firstSeq...lastSeq` were lost; the range may enclose records of other
/// lanes or records already acknowledged, which are not missing (`count` ≤ the range's size). The gap
/// record's own seq is greater than `lastSeq`.
/// - Evicted records had their seqs. A gap record whose eviction reaches older eviction gap records absorbs
///   them: its range covers theirs and its count includes theirs, so the server can show the newer one
///   in place of the older ones it already has.
/// - Records that were never stored (disk full, I/O error) get seqs when their gap record is written:
///   that many seqs are taken from the sequence and never used, so `count` equals the range's size.
public struct GapRecord: Sendable, Codable, Equatable {
    public var firstSeq: Int64
    public var lastSeq: Int64
    public var count: Int64
    /// Wall-clock span of the lost records, milliseconds since 1970.
    public var fromMillis: Int64
    public var toMillis: Int64
    public var reason: GapReason

    public init(firstSeq: Int64, lastSeq: Int64, count: Int64, fromMillis: Int64, toMillis: Int64, reason: GapReason) {
        self.firstSeq = firstSeq; self.lastSeq = lastSeq; self.count = count
        self.fromMillis = fromMillis; self.toMillis = toMillis; self.reason = reason
    }

    /// Whether `seq` lies inside this gap's range.
    public func covers(_ seq: Int64) -> Bool { firstSeq <= seq && seq <= lastSeq }

    /// This gap widened to include `other` (ranges and spans united, counts added, this gap's reason kept).
    public func absorbing(_ other: GapRecord) -> GapRecord {
        GapRecord(
            firstSeq: min(firstSeq, other.firstSeq), lastSeq: max(lastSeq, other.lastSeq),
            count: count + other.count,
            fromMillis: min(fromMillis, other.fromMillis), toMillis: max(toMillis, other.toMillis),
            reason: reason)
    }
}

/// A reading as it sits in the buffer: names resolved, value kept as polled.
public struct StoredReading: Sendable, Equatable {
    public var device: String
    public var tag: String
    public var units: String?
    /// UTC wall-clock time of the transaction, milliseconds since 1970.
    public var wallMillis: Int64
    /// A number or text; nil when the quality is bad.
    public var value: TagValue?
    public var quality: Quality
    /// Whether the clock was synchronized when `wallMillis` was taken (`Reading.clockSynchronized`).
    public var clockSynchronized: Bool

    public init(
        device: String, tag: String, units: String?, wallMillis: Int64, value: TagValue?, quality: Quality,
        clockSynchronized: Bool = true
    ) {
        self.device = device; self.tag = tag; self.units = units; self.wallMillis = wallMillis
        self.value = value; self.quality = quality; self.clockSynchronized = clockSynchronized
    }

    /// The stored form of a poller reading.
    public init(_ reading: Reading, units: String?) {
        self.init(
            device: reading.device, tag: reading.tag, units: units, wallMillis: reading.wallMillis,
            value: reading.value, quality: reading.quality, clockSynchronized: reading.clockSynchronized)
    }
}

/// One record taken from the buffer, with the sequence number that identifies it forever
/// (together with the gateway id and the buffer's epoch).
public struct BufferedRecord: Sendable, Equatable {
    public var seq: Int64
    public var lane: BufferLane
    public var payload: Payload

    /// What the record holds.
    public enum Payload: Sendable, Equatable {
        case reading(StoredReading)
        case alarm(AlarmEventRecord)
        case gap(GapRecord)
        case efm(EFMUploadRecord)
        case efmGap(EFMGapUpload)
    }

    public init(seq: Int64, lane: BufferLane, payload: Payload) {
        self.seq = seq; self.lane = lane; self.payload = payload
    }

    public var reading: StoredReading? { if case .reading(let r) = payload { r } else { nil } }
    public var alarm: AlarmEventRecord? { if case .alarm(let a) = payload { a } else { nil } }
    public var gap: GapRecord? { if case .gap(let g) = payload { g } else { nil } }

    /// A size estimate of this record in an upload batch (JSON-like field names and values), used to bound
    /// batches by bytes before they are encoded.
    public var estimatedWireBytes: Int {
        switch payload {
        case .reading(let r):
            let value: Int =
                switch r.value {
                case .number: 24;
                case .text(let s): s.utf8.count + 4;
                case nil: 4
                }
            return 72 + r.device.utf8.count + r.tag.utf8.count + (r.units?.utf8.count ?? 0) + value
        case .alarm(let a):
            return 160 + a.alarm.utf8.count + a.device.utf8.count + (a.tag?.utf8.count ?? 0) + a.reason.utf8.count
                + a.priority.utf8.count
        case .gap:
            return 140
        case .efm(let e):
            // Base64 of the raw bytes, the names and numbers (or the event's members), the header members.
            let body: Int =
                switch e.body {
                case .archive(let names, _, let units):
                    names.reduce(0) { $0 + 2 * $1.utf8.count + 20 } + units.reduce(0) { $0 + ($1?.utf8.count ?? 0) }
                case .event: 160
                }
            return 260 + e.device.utf8.count + e.meter.utf8.count + e.key.utf8.count + e.raw.count * 4 / 3 + body
        case .efmGap(let g):
            return 200 + g.device.utf8.count + g.meter.utf8.count
        }
    }
}
