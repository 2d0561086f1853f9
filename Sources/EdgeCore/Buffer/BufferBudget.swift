/// How `storage.maxBytes` is split between the database file, its WAL and the shared-memory index, and
/// when to evict or vacuum. Pure arithmetic; the store feeds it page counts read from SQLite.
///
/// The split, for a budget B (page size 4 KiB):
/// - shared memory: 32 KiB — the `-shm` index holds 4,062 WAL frames per 32 KiB, more than the WAL may hold;
/// - WAL: `walBytes` = B/8 clamped to 128 KiB...8 MiB. `wal_autocheckpoint` and `journal_size_limit` are
///   set to half of it; when a commit leaves the WAL above that half plus one transaction (a reader held
///   the automatic checkpoint back), the store runs `wal_checkpoint(TRUNCATE)`, and again when idle. One transaction's records are kept below an eighth of it (group commits are bounded by
///   bytes, larger appends split, incremental-vacuum steps bounded by pages), so the WAL stays inside its
///   share while checkpoints succeed;
/// - database: the rest, enforced by `max_page_count` as the backstop. Eviction starts when the used
///   pages plus the incoming transaction would pass the high-water mark (a 2 % reserve below the
///   backstop) and frees a further chunk (5 %, at most one transaction's worth) so that it is not needed
///   at every commit. Eviction runs in its own transactions of at most one chunk each, before the group
///   that needs the room, so no transaction outgrows the WAL's share.
public struct BufferBudget: Sendable, Equatable {
    public static let pageSize: Int64 = 4096
    /// Bytes a WAL frame adds to a page.
    public static let walFrameHeader: Int64 = 24
    /// Shared-memory allowance (one 32 KiB index block).
    public static let shmBytes: Int64 = 32 << 10
    /// The smallest budget the split works for.
    public static let minimumBytes: Int64 = 1 << 20
    /// Pages the schema itself occupies in an empty buffer (tables, indexes, pointer map, header).
    public static let schemaPages: Int64 = 10

    public let maxBytes: Int64
    /// The WAL's share.
    public let walBytes: Int64

    /// Nil when `maxBytes` is below `minimumBytes`.
    public init?(maxBytes: Int64) {
        guard maxBytes >= Self.minimumBytes else { return nil }
        self.maxBytes = maxBytes
        walBytes = min(max(maxBytes / 8, 128 << 10), 8 << 20)
    }

    /// `wal_autocheckpoint` and `journal_size_limit` keep the WAL near this size by themselves (a PASSIVE
    /// checkpoint when it is reached, the file cut back to it when the WAL restarts).
    public var walCheckpointBytes: Int64 { walBytes / 2 }
    /// After a commit leaves the WAL larger than this — the automatic checkpoint could not keep up, a reader
    /// held it back — the store checkpoints with TRUNCATE (waiting for readers).
    public var walTruncateBytes: Int64 { walCheckpointBytes + maxTransactionBytes }
    /// `PRAGMA wal_autocheckpoint` (pages).
    public var autocheckpointPages: Int64 { walCheckpointBytes / (Self.pageSize + Self.walFrameHeader) }
    /// `PRAGMA journal_size_limit` (bytes).
    public var journalSizeLimit: Int64 { walCheckpointBytes }
    /// Largest record payload one transaction should carry: an eighth of the WAL's share, so that with
    /// the pages every transaction touches besides its records (page 1, interior pages, pointer map,
    /// freelist trunks, counters) the WAL stays below its share between checkpoints.
    public var maxTransactionBytes: Int64 { walBytes / 8 }
    /// Pages one incremental-vacuum step may move (each moved page dirties about three).
    public var vacuumStepPages: Int64 { max(4, maxTransactionBytes / Self.pageSize / 3) }
    /// The database file's share.
    public var databaseBytes: Int64 { maxBytes - walBytes - Self.shmBytes }
    /// `PRAGMA max_page_count`: the backstop.
    public var maxPageCount: Int64 { databaseBytes / Self.pageSize }
    public var reservePages: Int64 { max(8, maxPageCount / 50) }
    /// Used pages above which the store evicts.
    public var highWaterPages: Int64 { maxPageCount - reservePages }
    /// Pages one eviction step frees: 5 % of the database's share, but no more than one transaction may
    /// carry (deleting a leaf page writes it to the WAL).
    public var evictionChunkPages: Int64 { max(4, min(maxPageCount / 20, maxTransactionBytes / Self.pageSize)) }

    /// Records one eviction step may remove (one transaction, one gap record).
    public func evictionStepRecords(_ s: SpaceSnapshot) -> Int64 {
        max(1, Int64(Double(evictionChunkPages * Self.pageSize) / bytesPerRecord(s)))
    }

    /// Average bytes of database a queued record takes, from the file's used pages; 48 when empty.
    public func bytesPerRecord(_ s: SpaceSnapshot) -> Double {
        let dataPages = s.usedPages - Self.schemaPages
        guard s.records > 0, dataPages > 0 else { return 48 }
        return max(16, Double(dataPages * Self.pageSize) / Double(s.records))
    }

    /// How many of the oldest records to evict before a transaction adding `incomingBytes` (estimated)
    /// so the database stays below the high-water mark (and a chunk under it, so that evictions are not
    /// needed at every commit); 0 when it fits. The store evicts them in steps of `evictionStepRecords`.
    /// A file larger than its share (the budget was lowered) is evicted down to the same mark; vacuum then
    /// shrinks it.
    public func recordsToEvict(_ s: SpaceSnapshot, incomingBytes: Int64) -> Int64 {
        let incomingPages = (incomingBytes + Self.pageSize - 1) / Self.pageSize + 1
        let target = max(Self.schemaPages, highWaterPages - evictionChunkPages - incomingPages)
        let tooFull = s.usedPages + incomingPages > highWaterPages
        let tooBig = s.pageCount > maxPageCount && s.usedPages > target
        guard tooFull || tooBig, s.usedPages > target else { return 0 }
        let n = (Double((s.usedPages - target) * Self.pageSize) / bytesPerRecord(s)).rounded(.up)
        return min(s.records, max(1, Int64(n)))
    }

    /// Whether to run `incremental_vacuum` to completion now: at once when the file is larger than its
    /// share (the budget was lowered), otherwise when idle and a quarter of the file is free.
    public func shouldVacuum(_ s: SpaceSnapshot, idle: Bool) -> Bool {
        guard s.freePages > 0 else { return false }
        if s.pageCount > maxPageCount { return true }
        return idle && s.freePages >= max(64, s.pageCount / 4)
    }
}

/// The database's page counts and queued records at one moment.
public struct SpaceSnapshot: Sendable, Equatable {
    /// `PRAGMA page_count`.
    public var pageCount: Int64
    /// `PRAGMA freelist_count`.
    public var freePages: Int64
    /// Records queued in all lanes, dead letters included.
    public var records: Int64
    public init(pageCount: Int64, freePages: Int64, records: Int64) {
        self.pageCount = pageCount; self.freePages = freePages; self.records = records
    }
    public var usedPages: Int64 { pageCount - freePages }
}
