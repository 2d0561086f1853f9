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

    /// The stored records of one archive of `device`, oldest first by their own timestamp; `from` and `to`
    /// (device-local `YYYY-MM-DDTHH:MM:SS`, inclusive) narrow it, `limit` keeps the newest that many.
    public func efmRecords(
        device: String, archive: String, from: String? = nil, to: String? = nil, limit: Int? = nil
    ) throws(BufferError) -> [EFMStoredRecord] {
        try read("read EFM records") { db in
            guard try Self.efmTablesExist(db) else { return [] }
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM (
                        SELECT key, hash, device_time, collected, raw, decoded, seq, uploaded, id FROM efm_record
                        WHERE device = ? AND archive = ? AND device_time >= ? AND device_time <= ?
                        ORDER BY device_time DESC, id DESC LIMIT ?)
                    ORDER BY device_time, id
                    """, arguments: [device, archive, from ?? "", to ?? "~", limit ?? -1])
            return rows.map {
                EFMStoredRecord(
                    key: $0[0], hash: $0[1], deviceTime: $0[2], collectedWallMillis: $0[3],
                    raw: [UInt8]($0[4] as Data), decoded: $0[5], seq: $0[6], upload: $0[7])
            }
        }
    }

    /// Counts for `edgectl efm` and the tests: records, conflicts and gaps per device and archive, and the
    /// upload state of its records and gaps.
    public func efmCounts(device: String) throws(BufferError) -> EFMCounts {
        try read("count EFM records") { db in
            guard try Self.efmTablesExist(db) else { return EFMCounts() }
            func count(_ table: String, _ condition: String = "1") throws -> [String: Int] {
                let rows = try Row.fetchAll(
                    db,
                    sql: "SELECT archive, COUNT(*) FROM \(table) WHERE device = ? AND \(condition) GROUP BY archive",
                    arguments: [device])
                return Dictionary(rows.map { ($0[0] as String, $0[1] as Int) }, uniquingKeysWith: { a, _ in a })
            }
            func total(_ state: BufferSchema.EFMUpload) throws -> Int {
                try ["efm_record", "efm_gap"].reduce(0) { sum, table in
                    sum
                        + (try Int.fetchOne(
                            db, sql: "SELECT COUNT(*) FROM \(table) WHERE device = ? AND uploaded = ?",
                            arguments: [device, state.rawValue]) ?? 0)
                }
            }
            return EFMCounts(
                records: try count("efm_record"), conflicts: try count("efm_conflict"), gaps: try count("efm_gap"),
                queued: try total(.queued), uploaded: try total(.uploaded), rejected: try total(.rejected))
        }
    }

    static func efmTablesExist(_ db: Database) throws -> Bool {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'efm_record'")
            == 1
    }

    /// On the writer, inside the group's transaction.
    func insertEFM(_ db: Database, _ write: EFMWrite, into outcome: EFMOutcome, _ st: inout WriterState) throws {
        // A file gets the tables with its first EFM store.
        try db.execute(sql: BufferSchema.efmTables)
        var result = EFMStoreResult()
        for row in write.rows {
            let stored = try String.fetchOne(
                db, sql: "SELECT hash FROM efm_record WHERE device = ? AND archive = ? AND key = ?",
                arguments: [write.device, write.archive, row.key])
            switch stored {
            case nil:
                // A seq from the record sequence: the server keys every record of the epoch by it.
                let seq = try takeSeqs(db, 1, &st)
                try db.execute(
                    sql: """
                        INSERT INTO efm_record(seq, device, meter, contract_hour, archive, key, hash, device_time,
                                               collected, raw, decoded, units)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        seq, write.device, write.meter, write.contractHour, write.archive, row.key, row.hash,
                        row.deviceTime, row.collectedWallMillis, Data(row.raw), row.decoded, write.unitsJSON
                    ])
                result.stored += 1
                result.storedKeys.append(row.key)
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
            // Found again after a restart before its store: the same gap, kept once.
            let known = try Int.fetchOne(
                db,
                sql: "SELECT COUNT(*) FROM efm_gap WHERE device = ? AND archive = ? AND from_time = ? AND to_time = ?",
                arguments: [write.device, write.archive, gap.from, gap.to])
            guard known == 0 else { continue }
            let seq = try takeSeqs(db, 1, &st)
            try db.execute(
                sql: """
                    INSERT INTO efm_gap(device, archive, from_time, to_time, periods, noted, seq, meter)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    write.device, write.archive, gap.from, gap.to, gap.periods, gap.notedWallMillis, seq, write.meter
                ])
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
    /// The meter run (`efm.meter`) and its contract hour, uploaded with every record.
    public var meter: String
    public var contractHour: Int
    /// The units of an archive's fields in layout order (nil for a field without, and for events).
    public var units: [String?]?
    public var archive: String
    public var rows: [EFMRow]
    public var gaps: [EFMGapRow]
    /// The collector's cursor after these records, as it encodes it; nil leaves the saved one.
    public var cursor: String?

    public init(
        device: String, meter: String? = nil, contractHour: Int = 0, units: [String?]? = nil, archive: String,
        rows: [EFMRow], gaps: [EFMGapRow] = [], cursor: String?
    ) {
        self.device = device; self.meter = meter ?? device; self.contractHour = contractHour; self.units = units
        self.archive = archive; self.rows = rows; self.gaps = gaps; self.cursor = cursor
    }

    var unitsJSON: String? {
        units.map { String(decoding: (try? JSONEncoder().encode($0)) ?? Data("[]".utf8), as: UTF8.self) }
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
            raw: raw, decoded: String(decoding: try Self.encoder.encode(record), as: UTF8.self))
    }

    /// Sorted keys: the same record is the same text, whichever process stored it.
    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

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
    /// Their keys, in the order stored.
    public var storedKeys: [String] = []
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
    /// Its seq in the sync protocol.
    public var seq: Int64
    /// 0 queued for upload, 1 stored by the server, 2 in a batch the server rejected.
    public var upload: Int
}

public struct EFMCounts: Sendable, Equatable {
    public var records: [String: Int] = [:]
    public var conflicts: [String: Int] = [:]
    public var gaps: [String: Int] = [:]
    /// Records and gaps waiting for upload, stored by the server, and rejected by it.
    public var queued = 0
    public var uploaded = 0
    public var rejected = 0
    public init(
        records: [String: Int] = [:], conflicts: [String: Int] = [:], gaps: [String: Int] = [:], queued: Int = 0,
        uploaded: Int = 0, rejected: Int = 0
    ) {
        self.records = records; self.conflicts = conflicts; self.gaps = gaps; self.queued = queued
        self.uploaded = uploaded; self.rejected = rejected
    }
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
        device: String, meter: String? = nil, contractHour: Int = 0, profile: EFMProfile? = nil, archive: String,
        records: [ArchiveRecord], events: [EventRecord], gaps: [EFMCollector.Gap], cursor: EFMCollector.Cursor?,
        collectedWallMillis: Int64
    ) throws {
        let rows =
            try records.map { try EFMRow($0, collectedWallMillis: collectedWallMillis) }
            + events.map { try EFMRow($0, collectedWallMillis: collectedWallMillis) }
        // A lapped ring whose oldest record follows the last one collected by one period lost nothing.
        let gapRows = gaps.filter { $0.periodsLost > 0 }.map {
            EFMGapRow(
                from: $0.lastCollected.timestamp.description, to: $0.oldestAvailable.timestamp.description,
                periods: $0.periodsLost, notedWallMillis: collectedWallMillis)
        }
        let encoded = try cursor.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        let units = ArchiveKind(rawValue: archive).flatMap { kind in
            profile.map { p in p.archive(kind).layout.fields.map { $0.units.isEmpty ? nil : $0.units } }
        }
        self.init(
            device: device, meter: meter, contractHour: contractHour, units: units, archive: archive, rows: rows,
            gaps: gapRows, cursor: encoded)
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
