import EdgeCore
import EdgeSystem
import Foundation
import GRDB
import GRDBSQLite
import Logging

/// Opening: create, verify (`quick_check`, schema, epoch), and move aside a file that fails.
extension BufferStore {
    /// Opens the buffer at `path`, creating it (with a new epoch) when missing.
    ///
    /// A file that is corrupt or unreadable — fails `PRAGMA quick_check`, is not a database, is not a buffer
    /// file — is moved aside with its `-wal`/`-shm` (kept, never deleted) and a new file with a new epoch is
    /// created, so the daemon keeps polling. The returned notes say what happened, for the log and an alarm.
    /// Throws only when no usable file can be had (directory missing or unwritable, disk full, another
    /// process holding the file locked, budget below `BufferBudget.minimumBytes`).
    public static func open(
        path: String, maxBytes: ByteCount, logger: Logger = Logger(label: "edged.buffer"),
        options: BufferOptions = BufferOptions()
    ) throws(BufferError) -> (BufferStore, [String]) {
        guard let budget = BufferBudget(maxBytes: maxBytes.bytes) else {
            throw BufferError(
                .budgetTooSmall, path: path, operation: "open",
                detail: "storage.maxBytes \(maxBytes) is below \(ByteCount(bytes: BufferBudget.minimumBytes))")
        }
        var notes: [String] = []
        for _ in 0..<3 {
            if !FileManager.default.fileExists(atPath: path) {
                do {
                    let epoch = try BufferSchema.createFile(at: path, nowMillis: options.wallClock())
                    notes.append("created buffer file \(path) with epoch \(epoch)")
                } catch {
                    throw bufferError(error, path: path, operation: "create")
                }
            }
            do {
                let store = try openExisting(path: path, budget: budget, logger: logger, options: options)
                return (store, notes)
            } catch let newer as Newer {
                throw BufferError(
                    .newerSchema, path: path, operation: "open",
                    detail:
                        "the file is schema \(newer.schema), written by a newer edged; this edged reads schemas \(BufferSchema.readable.joined(separator: ", ")). It is left as it is: install the newer edged again to upload what it holds (or move the file aside to start an empty buffer, whose records would then never be uploaded)"
                )
            } catch let older as Older {
                do {
                    try migrate(path: path, from: older.schema)
                } catch {
                    throw BufferError(
                        .database, path: path, operation: "migrate schema \(older.schema) → \(BufferSchema.version)",
                        detail: "\(error); the file is left at schema \(older.schema)")
                }
                let note = "buffer file \(path) migrated from schema \(older.schema) to \(BufferSchema.version)"
                logger.notice("\(note)")
                notes.append(note)
            } catch let problem as Unusable {
                let aside: String
                do { aside = try moveAside(path) } catch {
                    throw BufferError(
                        .corrupt, path: path, operation: "open",
                        detail: "\(problem.reason); and it could not be moved aside: \(error)")
                }
                let note =
                    "buffer file \(path) is unusable (\(problem.reason)); moved to \(aside), a new file with a new epoch replaces it"
                logger.critical("\(note)")
                notes.append(note)
            } catch {
                throw bufferError(error, path: path, operation: "open")
            }
        }
        throw BufferError(
            .corrupt, path: path, operation: "open",
            detail: "new buffer files keep failing: \(notes.joined(separator: "; "))")
    }

    /// A file that must be moved aside.
    struct Unusable: Error { var reason: String }
    /// A file written by a newer edged: never moved aside (its records are the newer edged's to upload).
    struct Newer: Error { var schema: String }
    /// A file of an older schema this build migrates.
    struct Older: Error { var schema: String }

    private static func openExisting(path: String, budget: BufferBudget, logger: Logger, options: BufferOptions) throws
        -> BufferStore
    {
        // Check the file read-only first, so a file that turns out not to be ours is moved aside unchanged
        // (a pool would switch it to WAL mode before we could look).
        let (state, epoch) = try inspect(path: path)
        var config = Configuration()
        config.label = "edged.buffer"
        config.foreignKeysEnabled = false
        config.busyMode = .timeout(10)
        config.maximumReaderCount = 2
        config.prepareDatabase { db in
            // Page caches with a stated bound, so the daemon's memory stops growing once they are warm
            // (SQLite's default is 2000 KiB per connection; readers only walk the queue's head).
            let cacheKiB = db.configuration.readonly ? BufferStore.readerCacheKiB : BufferStore.writerCacheKiB
            try db.execute(sql: "PRAGMA synchronous = FULL; PRAGMA cache_size = -\(cacheKiB)")
            if !db.configuration.readonly {
                try db.execute(
                    sql: """
                        PRAGMA journal_size_limit = \(budget.journalSizeLimit);
                        PRAGMA wal_autocheckpoint = \(budget.autocheckpointPages);
                        """)
            }
        }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: config)
            // GRDB switches a pool's writer to synchronous=NORMAL when it sets up WAL mode; restore FULL.
            // max_page_count only now: GRDB's WAL set-up may add a page, and SQLite clamps the backstop to
            // the file's size when the file is larger (a lowered budget, shrunk by enforceBudgetAtOpen).
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL; PRAGMA max_page_count = \(budget.maxPageCount)")
            }
        } catch let e as DatabaseError where isUnusable(e) {
            throw Unusable(reason: "cannot open: \(e.message ?? "\(e)") (SQLite code \(e.extendedResultCode.rawValue))")
        }
        do {
            let store = BufferStore(
                path: path, epoch: epoch, budget: budget, options: options, logger: logger, pool: pool, state: state)
            try store.enforceBudgetAtOpen()
            return store
        } catch {
            try? pool.close()
            throw error
        }
    }

    /// `quick_check`, schema and epoch through a read-only connection; returns the writer's starting state.
    private static func inspect(path: String) throws -> (WriterState, String) {
        var config = Configuration()
        config.readonly = true
        config.label = "edged.buffer.check"
        config.busyMode = .timeout(10)
        do {
            let queue = try DatabaseQueue(path: path, configuration: config)
            defer { try? queue.close() }
            return try queue.read { db in
                let check = try String.fetchAll(db, sql: "PRAGMA quick_check")
                guard check == ["ok"] else {
                    throw Unusable(reason: "quick_check: \(check.prefix(3).joined(separator: "; "))")
                }
                let epoch = try verifySchema(db)
                let series = try Row.fetchAll(db, sql: "SELECT id, device, tag, units FROM series").map {
                    (SeriesKey(device: $0[1], tag: $0[2], units: $0[3]), $0[0] as Int64)
                }
                let state = WriterState(
                    counters: try BufferSchema.loadCounters(db),
                    series: Dictionary(series, uniquingKeysWith: { a, _ in a }),
                    lastSeq: try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'record'") ?? 0)
                return (state, epoch)
            }
        } catch let e as DatabaseError where isUnusable(e) {
            throw Unusable(reason: "\(e.message ?? "\(e)") (SQLite code \(e.extendedResultCode.rawValue))")
        }
    }

    private static func isUnusable(_ e: DatabaseError) -> Bool {
        [
            .SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_IOERR, .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_FORMAT,
            .SQLITE_AUTH, .SQLITE_ERROR
        ]
        .contains(e.resultCode)
    }

    /// Checks that this is a buffer file of this schema; returns its epoch.
    private static func verifySchema(_ db: Database) throws -> String {
        let tables = Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'"))
        for t in ["meta", "counter", "series", "record", "dead_batch", "dead_letter"] where !tables.contains(t) {
            throw Unusable(reason: "not a buffer file: table \(t) missing")
        }
        let meta = Dictionary(
            try Row.fetchAll(db, sql: "SELECT key, value FROM meta").map { ($0[0] as String, $0[1] as String) },
            uniquingKeysWith: { a, _ in a })
        guard let epoch = meta["epoch"], !epoch.isEmpty else { throw Unusable(reason: "no epoch") }
        guard let schema = meta["schema"], let number = Int(schema) else {
            throw Unusable(reason: "schema \(meta["schema"] ?? "none"), expected \(BufferSchema.version)")
        }
        if number > Int(BufferSchema.version)! { throw Newer(schema: schema) }
        guard BufferSchema.readable.contains(schema) else {
            throw Unusable(reason: "schema \(schema), expected \(BufferSchema.version)")
        }
        if schema != BufferSchema.version { throw Older(schema: schema) }
        let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size")
        let autoVacuum = try Int64.fetchOne(db, sql: "PRAGMA auto_vacuum")
        guard pageSize == BufferBudget.pageSize, autoVacuum == 2 else {
            throw Unusable(
                reason:
                    "page_size \(pageSize ?? 0) auto_vacuum \(autoVacuum ?? 0), expected \(BufferBudget.pageSize) and 2 (incremental)"
            )
        }
        return epoch
    }

    /// Migrates a file of an older schema in place, in one transaction on a short-lived writer.
    private static func migrate(path: String, from schema: String) throws {
        var config = Configuration()
        config.label = "edged.buffer.migrate"
        config.foreignKeysEnabled = false
        config.busyMode = .timeout(10)
        let queue = try DatabaseQueue(path: path, configuration: config)
        defer { try? queue.close() }
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.inTransaction {
                try BufferSchema.migrate(db, from: schema)
                return .commit
            }
        }
    }

    /// Moves `path` and its `-wal`/`-shm` to `<path>.corrupt-<UTC time>`; returns the new name.
    static func moveAside(_ path: String) throws -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tmv = tm()
        gmtime_r(&t, &tmv)
        var base =
            path
            + String(
                format: ".corrupt-%04d%02d%02dT%02d%02d%02dZ", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday,
                tmv.tm_hour, tmv.tm_min, tmv.tm_sec)
        var n = 1
        let stem = base
        while FileManager.default.fileExists(atPath: base) { n += 1; base = "\(stem)-\(n)" }
        // Companions first, so a crash in between never leaves a WAL beside the wrong main file.
        for suffix in ["-wal", "-shm", "-journal"] where FileManager.default.fileExists(atPath: path + suffix) {
            guard rename(path + suffix, base + suffix) == 0 else {
                throw BufferError(
                    .cannotOpen, path: path, operation: "move aside",
                    detail: "rename \(path + suffix): \(SystemError.reason(errno: errno))")
            }
        }
        guard rename(path, base) == 0 else {
            throw BufferError(
                .cannotOpen, path: path, operation: "move aside", detail: "rename: \(SystemError.reason(errno: errno))")
        }
        try? FileSync.fsyncDirectory(of: path)
        return base
    }

    /// A budget lowered since the file grew: evict and vacuum until the file fits its share.
    func enforceBudgetAtOpen() throws {
        try pool.writeWithoutTransaction { db in
            for _ in 0..<50 {
                let snap = try spaceSnapshot(db, lock.withLock { state })
                guard snap.pageCount > budget.maxPageCount || snap.usedPages > budget.highWaterPages else { break }
                try makeRoom(db, incoming: Incoming())
                try vacuumToCompletion(db)
                _ = try db.checkpoint(.truncate)
            }
            try db.execute(sql: "PRAGMA max_page_count = \(budget.maxPageCount)")
        }
    }
}

extension BufferStore {
    /// Page cache of the writer connection, KiB.
    public static let writerCacheKiB = 2048
    /// Page cache of each reader connection (at most `maximumReaderCount` = 2), KiB.
    public static let readerCacheKiB = 512

    /// Bytes SQLite's allocator holds in this process now, and the most it has held since start.
    public static var sqliteMemory: (used: Int64, peak: Int64) {
        (sqlite3_memory_used(), sqlite3_memory_highwater(0))
    }
}
