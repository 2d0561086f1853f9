import EdgeCore
import Foundation
import GRDB

/// Gas measurement records (EFM): a flow computer's hourly and daily archive records and its event log, kept
/// as they came (raw reply bytes) and decoded, in tables of their own beside the reading and alarm lanes.
///
/// - A record is identified by device, archive and its key (its own timestamp, and for events register and
///   bitmap): collected twice, it is stored once; collected again with other bytes, the second copy goes to
///   `efm_conflict` and the stored one is never written over (BLM 43 CFR 3175.104: original, unaltered).
/// - The collector's cursor is written in the same transaction as the records it covers, so after a crash or
///   a power cut the file never says "collected" for a record it does not hold, nor holds a record its
///   cursor does not cover twice.
/// - EFM records are never evicted for the size budget: they are the records royalties are paid on.
extension BufferStore {
    /// Commits `write` at once (with anything waiting) and says what became of each record.
    public func storeEFM(_ write: EFMWrite) async throws(BufferError) -> EFMStoreResult {
        let result = await withCheckedContinuation {
            (c: CheckedContinuation<Result<EFMStoreResult, BufferError>, Never>) in
            enqueueEFM(write) { c.resume(returning: $0) }
        }
        return try result.get()
    }

    /// `storeEFM` without waiting: `done` is called once, on the writer thread (it must return at once).
    public func enqueueEFM(_ write: EFMWrite, done: @escaping @Sendable (Result<EFMStoreResult, BufferError>) -> Void) {
        if writer.submit(.efm(write, EFMOutcome(), done)) != .queued {
            done(.failure(closedError("store \(write.rows.count) \(write.archive) EFM records")))
        }
    }

    /// The cursors saved for `device`, by archive (as the collector encoded them).
    public func efmCursors(device: String) throws(BufferError) -> [String: String] {
        try read("read EFM cursors") { db in
            guard try Self.efmTablesExist(db) else { return [:] }
            let rows = try Row.fetchAll(
                db, sql: "SELECT archive, cursor FROM efm_cursor WHERE device = ?", arguments: [device])
            return Dictionary(rows.map { ($0[0] as String, $0[1] as String) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// The stored records of one archive of `device`, oldest first by their own timestamp.
    public func efmRecords(device: String, archive: String) throws(BufferError) -> [EFMStoredRecord] {
        try read("read EFM records") { db in
            guard try Self.efmTablesExist(db) else { return [] }
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT key, hash, device_time, collected, raw, decoded FROM efm_record
                    WHERE device = ? AND archive = ? ORDER BY device_time, id
                    """, arguments: [device, archive]
            ).map {
                EFMStoredRecord(
                    key: $0[0], hash: $0[1], deviceTime: $0[2], collectedWallMillis: $0[3],
                    raw: [UInt8]($0[4] as Data), decoded: $0[5])
            }
        }
    }

    /// Counts for `edgectl efm` and the tests: records, conflicts and gaps per device and archive.
    public func efmCounts(device: String) throws(BufferError) -> EFMCounts {
        try read("count EFM records") { db in
            guard try Self.efmTablesExist(db) else { return EFMCounts() }
            func count(_ table: String) throws -> [String: Int] {
                let rows = try Row.fetchAll(
                    db, sql: "SELECT archive, COUNT(*) FROM \(table) WHERE device = ? GROUP BY archive",
                    arguments: [device])
                return Dictionary(rows.map { ($0[0] as String, $0[1] as Int) }, uniquingKeysWith: { a, _ in a })
            }
            return EFMCounts(
                records: try count("efm_record"), conflicts: try count("efm_conflict"), gaps: try count("efm_gap"))
        }
    }

    static func efmTablesExist(_ db: Database) throws -> Bool {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'efm_record'")
            == 1
    }

    /// On the writer, inside the group's transaction.
    func insertEFM(_ db: Database, _ write: EFMWrite, into outcome: EFMOutcome) throws {
        // A file gets the tables with its first EFM store.
        try db.execute(sql: BufferSchema.efmTables)
        var result = EFMStoreResult()
        for row in write.rows {
            let stored = try String.fetchOne(
                db, sql: "SELECT hash FROM efm_record WHERE device = ? AND archive = ? AND key = ?",
                arguments: [write.device, write.archive, row.key])
            switch stored {
            case nil:
                try db.execute(
                    sql: """
                        INSERT INTO efm_record(device, archive, key, hash, device_time, collected, raw, decoded)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        write.device, write.archive, row.key, row.hash, row.deviceTime, row.collectedWallMillis,
                        Data(row.raw), row.decoded
                    ])
                result.stored += 1
            case row.hash?:
                result.duplicates += 1
            case let storedHash?:
                // Changed on the device after it was collected: kept aside and reported, never written over.
                try db.execute(
                    sql: """
                        INSERT INTO efm_conflict(device, archive, key, stored_hash, hash, collected, raw, decoded)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        write.device, write.archive, row.key, storedHash, row.hash, row.collectedWallMillis,
                        Data(row.raw), row.decoded
                    ])
                result.conflicts.append(row.key)
            }
        }
        for gap in write.gaps {
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO efm_gap(device, archive, from_time, to_time, periods, noted)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [write.device, write.archive, gap.from, gap.to, gap.periods, gap.notedWallMillis])
        }
        if let cursor = write.cursor {
            try db.execute(
                sql: "INSERT OR REPLACE INTO efm_cursor(device, archive, cursor) VALUES (?, ?, ?)",
                arguments: [write.device, write.archive, cursor])
        }
        outcome.result = result
    }
}

/// What one EFM store writes: records of one archive (`hourly`, `daily`, `event`) of one device, the gaps
/// found, and the collector's cursor after them — all in one transaction.
public struct EFMWrite: Sendable {
    public var device: String
    public var archive: String
    public var rows: [EFMRow]
    public var gaps: [EFMGapRow]
    /// The collector's cursor after these records, as it encodes it; nil leaves the saved one.
    public var cursor: String?

    public init(device: String, archive: String, rows: [EFMRow], gaps: [EFMGapRow] = [], cursor: String?) {
        self.device = device; self.archive = archive; self.rows = rows; self.gaps = gaps; self.cursor = cursor
    }
}

/// One record as stored: its identity, the device's own timestamp (ISO-like, device-local, as the device
/// gave it), the raw reply bytes and the decoded form (JSON).
public struct EFMRow: Sendable, Equatable {
    public var key: String
    public var hash: String
    public var deviceTime: String
    public var collectedWallMillis: Int64
    public var raw: [UInt8]
    public var decoded: String

    public init(
        key: String, hash: String, deviceTime: String, collectedWallMillis: Int64, raw: [UInt8], decoded: String
    ) {
        self.key = key; self.hash = hash; self.deviceTime = deviceTime
        self.collectedWallMillis = collectedWallMillis; self.raw = raw; self.decoded = decoded
    }

    /// An archive record as collected.
    public init(_ r: ArchiveRecord, collectedWallMillis: Int64) throws {
        try self.init(r, identity: r.identity, timestamp: r.timestamp, raw: r.raw, collected: collectedWallMillis)
    }

    /// An event-log record as collected.
    public init(_ e: EventRecord, collectedWallMillis: Int64) throws {
        try self.init(e, identity: e.identity, timestamp: e.timestamp, raw: e.raw, collected: collectedWallMillis)
    }

    private init(
        _ record: some Encodable, identity: RecordIdentity, timestamp: DeviceTimestamp, raw: [UInt8], collected: Int64
    ) throws {
        self.init(
            key: identity.key, hash: identity.hash, deviceTime: timestamp.description, collectedWallMillis: collected,
            raw: raw, decoded: String(decoding: try JSONEncoder().encode(record), as: UTF8.self))
    }
}

/// Records lost on the device before they could be collected (its ring wrapped during an outage longer
/// than it holds): from the last record collected to the oldest one still held.
public struct EFMGapRow: Sendable, Equatable {
    public var from: String
    public var to: String
    public var periods: Int64
    public var notedWallMillis: Int64
    public init(from: String, to: String, periods: Int64, notedWallMillis: Int64) {
        self.from = from; self.to = to; self.periods = periods; self.notedWallMillis = notedWallMillis
    }
}

/// What became of the records of one store.
public struct EFMStoreResult: Sendable, Equatable {
    /// Stored for the first time.
    public var stored = 0
    /// Already stored with the same bytes (collected twice: kept once).
    public var duplicates = 0
    /// Keys already stored with other bytes: kept aside in `efm_conflict`.
    public var conflicts: [String] = []
    public init() {}
}

/// A stored record, read back.
public struct EFMStoredRecord: Sendable, Equatable {
    public var key: String
    public var hash: String
    public var deviceTime: String
    public var collectedWallMillis: Int64
    public var raw: [UInt8]
    public var decoded: String
}

public struct EFMCounts: Sendable, Equatable {
    public var records: [String: Int] = [:]
    public var conflicts: [String: Int] = [:]
    public var gaps: [String: Int] = [:]
}

/// Where the writer leaves an EFM store's result for the caller (set inside the transaction, handed over
/// once it committed).
// Guard: written by the writer thread inside the transaction, read by the same thread after the commit.
final class EFMOutcome: @unchecked Sendable {
    var result = EFMStoreResult()
}

extension EFMWrite {
    /// What an EFM collection asks to store, as rows of this device.
    public init(
        device: String, archive: String, records: [ArchiveRecord], events: [EventRecord], gaps: [EFMCollector.Gap],
        cursor: EFMCollector.Cursor?, collectedWallMillis: Int64
    ) throws {
        let rows =
            try records.map { try EFMRow($0, collectedWallMillis: collectedWallMillis) }
            + events.map { try EFMRow($0, collectedWallMillis: collectedWallMillis) }
        let gapRows = gaps.map {
            EFMGapRow(
                from: $0.lastCollected.timestamp.description, to: $0.oldestAvailable.timestamp.description,
                periods: $0.periodsLost, notedWallMillis: collectedWallMillis)
        }
        let encoded = try cursor.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        self.init(device: device, archive: archive, rows: rows, gaps: gapRows, cursor: encoded)
    }
}

extension BufferStore {
    /// The collector's cursors for `device`, decoded (an unreadable one counts as none: the archive is then
    /// collected as the first time, and what is already stored is kept once).
    public func efmCollectorCursors(device: String) throws(BufferError) -> [ArchiveKind: EFMCollector.Cursor] {
        var out: [ArchiveKind: EFMCollector.Cursor] = [:]
        for (archive, text) in try efmCursors(device: device) {
            guard let kind = ArchiveKind(rawValue: archive),
                let cursor = try? JSONDecoder().decode(EFMCollector.Cursor.self, from: Data(text.utf8))
            else { continue }
            out[kind] = cursor
        }
        return out
    }
}
