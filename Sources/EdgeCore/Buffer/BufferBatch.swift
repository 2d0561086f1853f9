/// A bounded run of records handed to the uplink: alarm-lane records first (in seq order), then
/// reading-lane records (readings and gap records, in seq order). Acknowledging it deletes, per lane,
/// the seq range it spans.
public struct BufferBatch: Sendable, Equatable {
    /// The buffer file's epoch; (gateway, epoch, seq) identifies a record forever.
    public var epoch: String
    public var records: [BufferedRecord]
    /// The seqs of the alarm-lane records, first...last; nil when there are none.
    public var alarmSeqs: ClosedRange<Int64>?
    /// The seqs of the reading-lane records, first...last; nil when there are none.
    public var readingSeqs: ClosedRange<Int64>?
    /// The seqs of the EFM records and EFM gaps, exactly (they are marked uploaded one by one).
    public var efmSeqs: [Int64]
    /// Sum of the records' `estimatedWireBytes`.
    public var estimatedBytes: Int

    public init(epoch: String, records: [BufferedRecord]) {
        self.epoch = epoch
        self.records = records
        let alarms = records.filter { $0.lane == .alarm }.map(\.seq)
        let readings = records.filter { $0.lane == .reading }.map(\.seq)
        alarmSeqs = alarms.min().map { $0...alarms.max()! }
        readingSeqs = readings.min().map { $0...readings.max()! }
        efmSeqs = records.filter { $0.lane == .efm }.map(\.seq)
        estimatedBytes = records.reduce(0) { $0 + $1.estimatedWireBytes }
    }

    public var count: Int { records.count }
}

/// Takes records for a batch in lane order until a limit is reached. Pure: the store feeds it rows from
/// its index-ordered queries and stops reading when it says so.
public struct BatchFiller: Sendable {
    public let maxRecords: Int
    public let maxBytes: Int
    public private(set) var records: [BufferedRecord] = []
    public private(set) var bytes = 0

    public init(maxRecords: Int, maxBytes: Int) {
        self.maxRecords = max(1, maxRecords); self.maxBytes = max(1, maxBytes)
    }

    /// Records still allowed by count.
    public var remainingRecords: Int { maxRecords - records.count }
    public var isFull: Bool { records.count >= maxRecords }

    /// Adds `record` unless it would pass `maxBytes`; the first record is always taken so an oversized
    /// record cannot block the queue. Returns false when the batch is full.
    public mutating func offer(_ record: BufferedRecord) -> Bool {
        guard !isFull else { return false }
        let size = record.estimatedWireBytes
        if !records.isEmpty && bytes + size > maxBytes { return false }
        records.append(record)
        bytes += size
        return true
    }
}

/// A batch set aside because the server rejected it as malformed.
public struct DeadLetterBatch: Sendable, Equatable {
    public var id: Int64
    public var reason: String
    /// When it was set aside, milliseconds since 1970.
    public var wallMillis: Int64
    public var records: Int64
    public var firstSeq: Int64?
    public var lastSeq: Int64?
    public init(id: Int64, reason: String, wallMillis: Int64, records: Int64, firstSeq: Int64?, lastSeq: Int64?) {
        self.id = id; self.reason = reason; self.wallMillis = wallMillis; self.records = records
        self.firstSeq = firstSeq; self.lastSeq = lastSeq
    }
}

/// What the buffer holds and what it has done, for `edgectl buffer`, metrics and alarms.
public struct BufferStats: Sendable, Equatable {
    public var epoch: String
    /// Records queued per lane (the reading lane includes gap records).
    public var alarmRecords: Int64
    public var readingRecords: Int64
    public var deadLetterRecords: Int64
    /// Gap records queued (part of `readingRecords`).
    public var gapRecords: Int64
    /// Database + WAL + shared memory, as on disk now.
    public var bytesOnDisk: Int64
    public var databaseBytes: Int64
    public var walBytes: Int64
    public var shmBytes: Int64
    /// The largest `bytesOnDisk` seen after a commit since the store opened.
    public var peakBytesOnDisk: Int64
    /// `storage.maxBytes`.
    public var budgetBytes: Int64
    /// Eviction passes, and data records they removed, since the file was created.
    public var evictions: Int64
    public var evictedRecords: Int64
    /// Records that could not be stored (disk full, I/O error) since the file was created.
    public var notStoredRecords: Int64
    /// Gap records written since the file was created.
    public var gapRecordsWritten: Int64
    public var deadLetterBatches: Int64
    /// Wall-clock time of the oldest queued reading, milliseconds since 1970.
    public var oldestReadingMillis: Int64?
    /// The highest seq ever given out (never reused).
    public var lastSeq: Int64

    public init(
        epoch: String, alarmRecords: Int64 = 0, readingRecords: Int64 = 0, deadLetterRecords: Int64 = 0,
        gapRecords: Int64 = 0, bytesOnDisk: Int64 = 0, databaseBytes: Int64 = 0, walBytes: Int64 = 0,
        shmBytes: Int64 = 0, peakBytesOnDisk: Int64 = 0, budgetBytes: Int64 = 0, evictions: Int64 = 0,
        evictedRecords: Int64 = 0, notStoredRecords: Int64 = 0, gapRecordsWritten: Int64 = 0,
        deadLetterBatches: Int64 = 0, oldestReadingMillis: Int64? = nil, lastSeq: Int64 = 0
    ) {
        self.epoch = epoch; self.alarmRecords = alarmRecords; self.readingRecords = readingRecords
        self.deadLetterRecords = deadLetterRecords; self.gapRecords = gapRecords; self.bytesOnDisk = bytesOnDisk
        self.databaseBytes = databaseBytes; self.walBytes = walBytes; self.shmBytes = shmBytes
        self.peakBytesOnDisk = peakBytesOnDisk; self.budgetBytes = budgetBytes; self.evictions = evictions
        self.evictedRecords = evictedRecords; self.notStoredRecords = notStoredRecords
        self.gapRecordsWritten = gapRecordsWritten; self.deadLetterBatches = deadLetterBatches
        self.oldestReadingMillis = oldestReadingMillis; self.lastSeq = lastSeq
    }
}
