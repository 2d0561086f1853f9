import EdgeCore
import EdgeSystem
import Foundation
import GRDB

/// The buffer file's layout.
///
/// - `record` holds the alarm and reading lanes in one table so one `AUTOINCREMENT` sequence numbers
///   every record. Readings carry an interned `series` id (device, tag, units) instead of names; alarm
///   events and gap records carry JSON in `body`. Columns are ordered so a good numeric reading costs
///   about 30 bytes: `kind` 0 and `quality` 0 take no payload bytes, the rowid alias none either.
/// - The reading lane is served by the table's own rowid order (`WHERE kind != 1 ORDER BY seq`), the
///   alarm lane by the partial index `record_alarm` — both in their exact ORDER BY, no sort per batch,
///   and readings pay for no index.
/// - `dead_letter` keeps records of rejected batches with their original seq; `dead_batch` says why.
/// - `counter` holds totals updated in the same transaction as the records, so they survive crashes.
enum BufferSchema {
    /// The schema this build writes. 2: EFM records and gaps carry seqs, meter, contract hour and upload state.
    static let version = "2"
    /// The schema versions this build reads; older ones are migrated at open (`migrate`).
    static let readable = ["1", "2"]

    static let create = """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE counter(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE series(
            id INTEGER PRIMARY KEY,
            device TEXT NOT NULL,
            tag TEXT NOT NULL,
            units TEXT NOT NULL,
            UNIQUE(device, tag, units));
        CREATE TABLE record(
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            kind INTEGER NOT NULL,
            series INTEGER,
            wall INTEGER NOT NULL,
            value REAL,
            quality INTEGER NOT NULL,
            body TEXT);
        CREATE INDEX record_alarm ON record(seq) WHERE kind = 1;
        CREATE TABLE dead_batch(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            reason TEXT NOT NULL,
            wall INTEGER NOT NULL,
            records INTEGER NOT NULL,
            first_seq INTEGER,
            last_seq INTEGER);
        CREATE TABLE dead_letter(
            seq INTEGER PRIMARY KEY,
            batch INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            series INTEGER,
            wall INTEGER NOT NULL,
            value REAL,
            quality INTEGER NOT NULL,
            body TEXT);
        """

    /// EFM records (`BufferStore+EFM`): their own tables, made with the first EFM store into a file (a gateway
    /// without flow computers does not pay their pages out of its size budget).
    static let efmTables = """
        CREATE TABLE IF NOT EXISTS efm_record(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            seq INTEGER NOT NULL UNIQUE,
            device TEXT NOT NULL,
            meter TEXT NOT NULL,
            contract_hour INTEGER NOT NULL,
            archive TEXT NOT NULL,
            key TEXT NOT NULL,
            hash TEXT NOT NULL,
            device_time TEXT NOT NULL,
            collected INTEGER NOT NULL,
            raw BLOB NOT NULL,
            decoded TEXT NOT NULL,
            units TEXT,
            uploaded INTEGER NOT NULL DEFAULT 0,
            UNIQUE(device, archive, key));
        CREATE INDEX IF NOT EXISTS efm_record_queue ON efm_record(seq) WHERE uploaded = 0;
        CREATE TABLE IF NOT EXISTS efm_conflict(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            device TEXT NOT NULL,
            archive TEXT NOT NULL,
            key TEXT NOT NULL,
            stored_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            collected INTEGER NOT NULL,
            raw BLOB NOT NULL,
            decoded TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS efm_gap(
            device TEXT NOT NULL,
            archive TEXT NOT NULL,
            from_time TEXT NOT NULL,
            to_time TEXT NOT NULL,
            periods INTEGER NOT NULL,
            noted INTEGER NOT NULL,
            seq INTEGER NOT NULL UNIQUE,
            meter TEXT NOT NULL,
            uploaded INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY(device, archive, from_time, to_time)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS efm_gap_queue ON efm_gap(seq) WHERE uploaded = 0;
        CREATE TABLE IF NOT EXISTS efm_cursor(
            device TEXT NOT NULL,
            archive TEXT NOT NULL,
            cursor TEXT NOT NULL,
            PRIMARY KEY(device, archive)) WITHOUT ROWID;
        """

    /// `efm_record.uploaded`: queued, stored by the server, or in a batch the server rejected (kept, never
    /// resent, like the dead-letter lane).
    enum EFMUpload: Int {
        case queued = 0
        case uploaded = 1
        case rejected = 2
    }

    /// The EFM lane, in seq order through the partial indexes (records and gaps merged by seq).
    static let efmLaneSQL = """
        SELECT seq, 0 AS gap, device, meter, contract_hour, archive, key, hash, device_time, collected, raw, decoded,
               units, NULL, NULL, NULL
        FROM efm_record WHERE uploaded = 0
        UNION ALL
        SELECT seq, 1, device, meter, NULL, archive, NULL, NULL, NULL, noted, NULL, NULL, NULL, from_time, to_time,
               periods
        FROM efm_gap WHERE uploaded = 0
        ORDER BY seq LIMIT ?
        """

    /// Brings a file of an older schema up to `version`, in one transaction (a crash leaves the old schema,
    /// migrated again at the next open).
    /// - 1 → 2: EFM tables made by schema 1 had no seq, meter, contract hour or upload state, and nothing in
    ///   them was ever uploaded. They are rebuilt: each record and gap gets a seq from the record sequence
    ///   (in the order they were stored) and is queued for upload, with its device as its meter.
    static func migrate(_ db: Database, from old: String) throws {
        guard old != version else { return }
        guard old == "1" else { throw DatabaseError(message: "no migration from schema \(old)") }
        let tables = Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'"))
        if tables.contains("efm_record") {
            let columns = Set(try Row.fetchAll(db, sql: "PRAGMA table_info(efm_record)").map { $0["name"] as String })
            if !columns.contains("seq") {
                try db.execute(
                    sql: """
                        ALTER TABLE efm_record RENAME TO efm_record_v1;
                        ALTER TABLE efm_gap RENAME TO efm_gap_v1;
                        """)
                try db.execute(sql: efmTables)
                var next = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'record'") ?? 0
                let records = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT device, archive, key, hash, device_time, collected, raw, decoded FROM efm_record_v1
                        ORDER BY id
                        """)
                for r in records {
                    next += 1
                    try db.execute(
                        sql: """
                            INSERT INTO efm_record(seq, device, meter, contract_hour, archive, key, hash, device_time,
                                                   collected, raw, decoded)
                            VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: [next, r[0], r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]])
                }
                let gaps = try Row.fetchAll(
                    db, sql: "SELECT device, archive, from_time, to_time, periods, noted FROM efm_gap_v1")
                for g in gaps {
                    next += 1
                    try db.execute(
                        sql: """
                            INSERT INTO efm_gap(device, archive, from_time, to_time, periods, noted, seq, meter)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                            """, arguments: [g[0], g[1], g[2], g[3], g[4], g[5], next, g[0]])
                }
                // sqlite_sequence has no unique key: update its row, or add the one row when there is none.
                if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_sequence WHERE name = 'record'") == 0 {
                    try db.execute(
                        sql: "INSERT INTO sqlite_sequence(name, seq) VALUES ('record', ?)", arguments: [next])
                } else {
                    try db.execute(sql: "UPDATE sqlite_sequence SET seq = ? WHERE name = 'record'", arguments: [next])
                }
                try db.execute(sql: "DROP TABLE efm_record_v1; DROP TABLE efm_gap_v1")
            }
        }
        try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'schema'", arguments: [version])
    }

    /// The dequeue statements. Tests check their query plans.
    static let alarmLaneSQL = "SELECT seq, kind, wall, body FROM record WHERE kind = 1 ORDER BY seq LIMIT ?"
    static let readingLaneSQL = """
        SELECT r.seq, r.kind, r.wall, r.value, r.quality, r.body, s.device, s.tag, s.units
        FROM record r LEFT JOIN series s ON s.id = r.series
        WHERE r.kind != 1 ORDER BY r.seq LIMIT ?
        """
    static let insertReadingSQL =
        "INSERT INTO record(kind, series, wall, value, quality, body) VALUES (0, ?, ?, ?, ?, ?)"

    /// A random id for a new file: 128 bits in hex.
    static func newEpoch() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<2).map { _ in String(g.next() as UInt64, radix: 16).leftPadded(to: 16) }.joined()
    }

    /// Creates a buffer file at `path` with a new epoch, atomically: it is built under a scratch name
    /// (page size and incremental auto-vacuum set before the first table, schema and epoch committed
    /// with synchronous=FULL, WAL mode switched on), synced, and renamed into place, so a crash leaves
    /// either no file or a complete one.
    static func createFile(at path: String, nowMillis: Int64) throws -> String {
        let scratch = path + ".creating"
        for suffix in ["", "-journal", "-wal", "-shm"] { unlink(scratch + suffix) }  // our own scratch, never data
        let epoch = newEpoch()
        var config = Configuration()
        config.label = "edged.buffer.create"
        config.foreignKeysEnabled = false
        let queue = try DatabaseQueue(path: scratch, configuration: config)
        try queue.writeWithoutTransaction { db in
            try db.execute(
                sql:
                    "PRAGMA synchronous = FULL; PRAGMA page_size = \(BufferBudget.pageSize); PRAGMA auto_vacuum = INCREMENTAL"
            )
            try db.inTransaction {
                try db.execute(sql: create)
                try db.execute(
                    sql: "INSERT INTO meta(key, value) VALUES ('epoch', ?), ('schema', ?), ('created', ?)",
                    arguments: [epoch, version, String(nowMillis)])
                for (name, _) in BufferCounters.fields {
                    try db.execute(sql: "INSERT INTO counter(name, value) VALUES (?, 0)", arguments: [name])
                }
                return .commit
            }
            let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            guard mode == "wal" else {
                throw DatabaseError(message: "could not switch \(scratch) to WAL mode (got \(mode ?? "nil"))")
            }
        }
        try queue.close()
        guard !FileManager.default.fileExists(atPath: scratch + "-wal") else {
            throw DatabaseError(message: "\(scratch)-wal left after closing the new file")
        }
        try FileSync.sync(path: scratch)
        guard rename(scratch, path) == 0 else {
            throw DatabaseError(message: "rename \(scratch) → \(path): \(SystemError.reason(errno: errno))")
        }
        try FileSync.fsyncDirectory(of: path)
        return epoch
    }

    /// Reads the persisted counters.
    static func loadCounters(_ db: Database) throws -> BufferCounters {
        var c = BufferCounters()
        let rows = try Row.fetchAll(db, sql: "SELECT name, value FROM counter")
        let values = Dictionary(rows.map { ($0[0] as String, $0[1] as Int64) }, uniquingKeysWith: { a, _ in a })
        for (name, path) in BufferCounters.fields { c[keyPath: path] = values[name] ?? 0 }
        return c
    }

    /// Writes the counters that changed.
    static func saveCounters(_ db: Database, _ new: BufferCounters, old: BufferCounters) throws {
        for (name, path) in BufferCounters.fields where new[keyPath: path] != old[keyPath: path] {
            try db.execute(sql: "UPDATE counter SET value = ? WHERE name = ?", arguments: [new[keyPath: path], name])
        }
    }
}

extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

/// fsync on paths, for the files and directory entries SQLite does not sync for us.
enum FileSync {
    static func sync(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw DatabaseError(message: "open \(path): \(SystemError.reason(errno: errno))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw DatabaseError(message: "fsync \(path): \(SystemError.reason(errno: errno))") }
    }

    static func fsyncDirectory(of path: String) throws {
        try sync(
            path: (path as NSString).deletingLastPathComponent.isEmpty
                ? "." : (path as NSString).deletingLastPathComponent)
    }
}

/// The sizes of the three files the budget covers.
struct FileSizes: Sendable, Equatable {
    var database: Int64
    var wal: Int64
    var shm: Int64
    var total: Int64 { database + wal + shm }

    static func of(_ path: String) -> FileSizes {
        FileSizes(database: size(path), wal: size(path + "-wal"), shm: size(path + "-shm"))
    }
    private static func size(_ p: String) -> Int64 {
        var st = stat()
        return stat(p, &st) == 0 ? Int64(st.st_size) : 0
    }
}
