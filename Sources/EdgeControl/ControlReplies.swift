import EdgeCore
import ModbusPoller
import Uplink

// The results of the control socket's commands: what edged encodes and edgectl decodes. A field renamed
// on one side is a decoding error on the other, never a silent 0 (Tests/Fixtures/control holds one golden
// reply per command; docs/control-protocol.md quotes them).

/// `devices`: one per configured, enabled device.
public typealias DevicesReply = [DeviceStatus]
/// `alarms`: the alarms that stand, the highest priority first.
public typealias AlarmsReply = [AlarmStatus]
/// `alarm-health`.
public typealias AlarmHealthReply = AlarmHealth
/// `uplink`.
public typealias UplinkReply = UplinkStatus
/// `tail`.
public typealias TailReply = [TailValue]

/// `status`: from memory alone, so it answers whatever the disk does.
public struct StatusReply: Sendable, Codable, Equatable {
    public var gateway: String
    public var site: String
    public var version: String
    public var devicesOnline: Int
    public var devicesTotal: Int
    /// Records queued per lane: `alarm`, `reading`, `deadLetter` (current, from memory).
    public var backlog: [String: Int64]
    /// The oldest queued reading as last read from the buffer file, `bufferFiguresAgeMillis` ago.
    public var oldestReadingMillis: Int64?
    /// How long ago the buffer file was last read for its figures (nil: not yet).
    public var bufferFiguresAgeMillis: Int64?
    public var lastUploadMillis: Int64?
    public var uplinkState: String
    public var activeAlarms: Int
    public var unacknowledgedAlarms: Int
    public var clockSynchronized: Bool
    public var startedMillis: Int64
    public var writer: WriterFigures
    public var memory: MemoryFigures

    public init(
        gateway: String, site: String, version: String, devicesOnline: Int, devicesTotal: Int, backlog: [String: Int64],
        oldestReadingMillis: Int64?, bufferFiguresAgeMillis: Int64?, lastUploadMillis: Int64?, uplinkState: String,
        activeAlarms: Int, unacknowledgedAlarms: Int, clockSynchronized: Bool, startedMillis: Int64,
        writer: WriterFigures, memory: MemoryFigures
    ) {
        self.gateway = gateway; self.site = site; self.version = version; self.devicesOnline = devicesOnline
        self.devicesTotal = devicesTotal; self.backlog = backlog; self.oldestReadingMillis = oldestReadingMillis
        self.bufferFiguresAgeMillis = bufferFiguresAgeMillis; self.lastUploadMillis = lastUploadMillis
        self.uplinkState = uplinkState; self.activeAlarms = activeAlarms;
        self.unacknowledgedAlarms = unacknowledgedAlarms
        self.clockSynchronized = clockSynchronized; self.startedMillis = startedMillis; self.writer = writer;
        self.memory = memory
    }
}

/// The buffer's writer: how long it has been inside one commit (or its oldest append waiting), how many
/// readings wait behind it, and the stall after which the watchdog pings stop.
public struct WriterFigures: Sendable, Codable, Equatable {
    public var stalledMillis: Int64
    public var readingsWaiting: Int
    public var stuckAfterMillis: Int64
    public init(stalledMillis: Int64, readingsWaiting: Int, stuckAfterMillis: Int64) {
        self.stalledMillis = stalledMillis; self.readingsWaiting = readingsWaiting;
        self.stuckAfterMillis = stuckAfterMillis
    }
}

/// The process's heap (glibc, all arenas) and SQLite's share of it.
public struct MemoryFigures: Sendable, Codable, Equatable {
    public var heapInUseBytes: Int64
    public var heapHeldBytes: Int64
    public var heapArenas: Int
    public var sqliteBytes: Int64
    public init(heapInUseBytes: Int64, heapHeldBytes: Int64, heapArenas: Int, sqliteBytes: Int64) {
        self.heapInUseBytes = heapInUseBytes; self.heapHeldBytes = heapHeldBytes; self.heapArenas = heapArenas;
        self.sqliteBytes = sqliteBytes
    }
}

/// `buffer`: what the buffer file holds, and every reading polled accounted for.
public struct BufferReply: Sendable, Codable, Equatable {
    public var epoch: String
    public var alarmRecords: Int64, readingRecords: Int64, gapRecords: Int64, deadLetterRecords: Int64
    public var bytesOnDisk: Int64, budgetBytes: Int64, peakBytesOnDisk: Int64
    public var evictions: Int64, evictedRecords: Int64, notStoredRecords: Int64, deadLetterBatches: Int64
    public var oldestReadingMillis: Int64?
    public var lastSeq: Int64
    /// polled = dropped (before ingest) + seen; seen = suppressed (report by exception) + stored + not
    /// stored + still waiting for their commit. Dropped and not stored readings are named by gap records.
    public var readingsPolled: Int, readingsDropped: Int, readingsSeen: Int, readingsSuppressed: Int
    public var readingsStored: Int, readingsNotStored: Int
    /// Set when the file did not answer in time: the counts are from memory, the oldest reading and the
    /// sizes as last read, `diskFiguresAgeMillis` ago.
    public var fileNotAnswering: Bool
    public var diskFiguresAgeMillis: Int64?
    /// What SQLite holds in the process (page caches, statements) now and at most since start.
    public var sqliteMemoryBytes: Int64, sqliteMemoryPeakBytes: Int64

    public init(
        epoch: String, alarmRecords: Int64, readingRecords: Int64, gapRecords: Int64, deadLetterRecords: Int64,
        bytesOnDisk: Int64, budgetBytes: Int64, peakBytesOnDisk: Int64, evictions: Int64, evictedRecords: Int64,
        notStoredRecords: Int64, deadLetterBatches: Int64, oldestReadingMillis: Int64?, lastSeq: Int64,
        readingsPolled: Int, readingsDropped: Int, readingsSeen: Int, readingsSuppressed: Int, readingsStored: Int,
        readingsNotStored: Int, fileNotAnswering: Bool, diskFiguresAgeMillis: Int64?, sqliteMemoryBytes: Int64,
        sqliteMemoryPeakBytes: Int64
    ) {
        self.epoch = epoch; self.alarmRecords = alarmRecords; self.readingRecords = readingRecords;
        self.gapRecords = gapRecords
        self.deadLetterRecords = deadLetterRecords; self.bytesOnDisk = bytesOnDisk; self.budgetBytes = budgetBytes
        self.peakBytesOnDisk = peakBytesOnDisk; self.evictions = evictions; self.evictedRecords = evictedRecords
        self.notStoredRecords = notStoredRecords; self.deadLetterBatches = deadLetterBatches
        self.oldestReadingMillis = oldestReadingMillis; self.lastSeq = lastSeq; self.readingsPolled = readingsPolled
        self.readingsDropped = readingsDropped; self.readingsSeen = readingsSeen;
        self.readingsSuppressed = readingsSuppressed
        self.readingsStored = readingsStored; self.readingsNotStored = readingsNotStored;
        self.fileNotAnswering = fileNotAnswering
        self.diskFiguresAgeMillis = diskFiguresAgeMillis; self.sqliteMemoryBytes = sqliteMemoryBytes
        self.sqliteMemoryPeakBytes = sqliteMemoryPeakBytes
    }
}

/// `tail`: the latest value of one tag.
public struct TailValue: Sendable, Codable, Equatable {
    public var device: String, tag: String, value: TagValue?, units: String?, quality: String, millis: Int64
    /// The value at the tag's resolution, as the uplink sends it (`77.6`, not `77.60000000000001`).
    public var formatted: String?
    public init(
        device: String, tag: String, value: TagValue?, units: String?, quality: String, millis: Int64,
        formatted: String?
    ) {
        self.device = device; self.tag = tag; self.value = value; self.units = units; self.quality = quality
        self.millis = millis; self.formatted = formatted
    }
}

/// `ack`, `shelve`, `unshelve`, `reload`, `uplink-ack-rejected`: what was done.
public struct DoneReply: Sendable, Codable, Equatable {
    public var done: String
    public init(done: String) { self.done = done }
}

/// `efm`: per flow computer, where its collection stands and what the buffer holds of it.
public typealias EFMReply = [EFMMeterReply]

public struct EFMMeterReply: Sendable, Codable, Equatable {
    /// The collection's state; nil when the device is configured for EFM but not being collected (disabled,
    /// `collect: false`, or its bus not running).
    public var collection: EFMMeterStatus?
    public var device: String
    public var meter: String
    /// Records stored per archive (`hourly`, `daily`, `event`), conflicts and gaps per archive.
    public var records: [String: Int]
    public var conflicts: [String: Int]
    public var gaps: [String: Int]
    /// Records and gaps waiting for upload, stored by the server, rejected by it.
    public var queued: Int
    public var uploaded: Int
    public var rejected: Int

    public init(
        collection: EFMMeterStatus?, device: String, meter: String, records: [String: Int],
        conflicts: [String: Int], gaps: [String: Int], queued: Int, uploaded: Int, rejected: Int
    ) {
        self.collection = collection; self.device = device; self.meter = meter; self.records = records
        self.conflicts = conflicts; self.gaps = gaps; self.queued = queued; self.uploaded = uploaded
        self.rejected = rejected
    }
}

/// `efm-history`: one archive's stored records of one device, oldest first.
public struct EFMHistoryReply: Sendable, Codable, Equatable {
    public var device: String
    public var meter: String
    /// The built-in profile the records are decoded with (`EFMProfile.builtIn(named:)`).
    public var profile: String
    public var archive: String
    public var contractHour: Int
    public var records: [EFMHistoryRecord]

    public init(
        device: String, meter: String, profile: String, archive: String, contractHour: Int,
        records: [EFMHistoryRecord]
    ) {
        self.device = device; self.meter = meter; self.profile = profile; self.archive = archive
        self.contractHour = contractHour; self.records = records
    }
}

public struct EFMHistoryRecord: Sendable, Codable, Equatable {
    public var deviceTime: String
    public var key: String
    public var hash: String
    /// The record's bytes as the device sent them, in hex.
    public var raw: String
    /// The decoded record (`ArchiveRecord` or `EventRecord` as JSON).
    public var decoded: String
    public var collectedMillis: Int64
    public var seq: Int64
    /// `queued`, `uploaded` or `rejected`.
    public var upload: String

    public init(
        deviceTime: String, key: String, hash: String, raw: String, decoded: String, collectedMillis: Int64,
        seq: Int64, upload: String
    ) {
        self.deviceTime = deviceTime; self.key = key; self.hash = hash; self.raw = raw; self.decoded = decoded
        self.collectedMillis = collectedMillis; self.seq = seq; self.upload = upload
    }
}
