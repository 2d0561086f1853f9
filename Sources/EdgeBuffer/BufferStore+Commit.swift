import EdgeCore
import Foundation
import GRDB
import GRDBSQLite

/// Group commit: one transaction per group of appends.
extension BufferStore {
    /// Runs on the writer thread. Writes pending loss gaps, makes room within the budget, inserts the
    /// group, commits (synchronous=FULL), then resumes the callers with their seqs. When the transaction
    /// fails, the callers get the error and the records are counted in the loss ledger.
    func commit(_ items: [PendingItem]) {
        let operation = "commit \(items.reduce(0) { $0 + $1.recordCount }) records"
        let outcome: Result<[Int64], BufferError>
        // No closed check here: `close()` marks the store closed to callers first, then lets this thread
        // commit what is waiting.
        if items.count == 1, case .readings(let rows, _) = items[0],
            items[0].estimatedBytes > Int(budget.maxTransactionBytes)
        {
            outcome = pool.writeWithoutTransaction { db in self.commitLarge(db, rows, operation: operation) }
        } else {
            outcome = pool.writeWithoutTransaction { db in self.commitOnWriter(db, items, operation: operation) }
        }
        switch outcome {
        case .success(let firstSeqs):
            noteOldest(items)
            for (item, first) in zip(items, firstSeqs) {
                switch item {
                case .readings(let rows, let done): done(.success(first...(first + Int64(rows.count) - 1)))
                case .alarms(let list, _, let done):
                    done(.success(list.isEmpty ? [] : Array(first..<(first + Int64(list.count)))))
                case .efm(_, let outcome, let done): done(.success(outcome.result))
                }
            }
        case .failure(let error):
            for item in items { item.fail(error) }
        }
    }

    /// The remembered figures (`rememberedStats`) said no reading was queued when the file was last read:
    /// the readings just committed are now the oldest, until the next read says more exactly.
    private func noteOldest(_ items: [PendingItem]) {
        // Only when nothing was remembered: a commit does not scan its rows otherwise.
        guard lock.withLock({ remembered.oldestReadingMillis == nil }) else { return }
        var oldest = Int64.max
        for case .readings(let rows, _) in items { for r in rows { oldest = min(oldest, r.wall) } }
        guard oldest != .max else { return }
        lock.withLock { if remembered.oldestReadingMillis == nil { remembered.oldestReadingMillis = oldest } }
    }

    private func commitOnWriter(_ db: Database, _ items: [PendingItem], operation: String) -> Result<
        [Int64], BufferError
    > {
        let incoming = items.reduce(Incoming()) { $0 + $1.incoming }
        for attempt in 0..<2 {
            do {
                try makeRoom(db, incoming: incoming, force: attempt > 0)
                let firstSeqs = try transaction(db) { db, st in
                    try self.writeLossGaps(db, &st)
                    return try items.map { item -> Int64 in
                        switch item {
                        case .readings(let rows, _): return try self.insertReadings(db, rows, &st)
                        case .alarms(let list, let state, _):
                            // Consecutive seqs: one writer, AUTOINCREMENT, nothing else inserted in between.
                            let first = try list.map { try self.insertAlarm(db, $0, &st) }.first ?? 0
                            if let state { try self.saveState(db, state) }
                            return first
                        case .efm(let write, let outcome, _):
                            try self.insertEFM(db, write, into: outcome, &st)
                            return 0
                        }
                    }
                }
                return .success(firstSeqs)
            } catch {
                let e = bufferError(error, path: path, operation: operation)
                if attempt == 0, e.code == .diskFull, backstopReached(db) {
                    logger.warning("buffer \(path): max_page_count reached; evicting before retrying")
                    continue
                }
                return .failure(recordLoss(items.map(\.loss), error: e))
            }
        }
        return .failure(BufferError(.database, path: path, operation: operation, detail: "unreachable"))
    }

    /// One append larger than a transaction may be (the WAL's share bounds it): room for all of it first
    /// (eviction steps), the pending loss gaps, then the readings in consecutive transactions of bounded
    /// size. Nothing else inserts records in between (one writer), so its seqs stay contiguous. If a later
    /// transaction fails, the earlier ones stay committed and only the rest is counted as not stored.
    private func commitLarge(_ db: Database, _ rows: [PendingReading], operation: String) -> Result<
        [Int64], BufferError
    > {
        guard Int64(rows.count) * 48 <= budget.databaseBytes / 2 else {
            return .failure(
                BufferError(
                    .budgetTooSmall, path: path, operation: operation,
                    detail: "one append of \(rows.count) readings cannot fit in storage.maxBytes \(budget.maxBytes)"))
        }
        let chunkSize = max(1, Int(budget.maxTransactionBytes) / 48)
        var committed = 0
        var first: Int64 = 0
        do {
            try makeRoom(db, incoming: Incoming(readings: rows.count))
            try transaction(db) { db, st in try self.writeLossGaps(db, &st) }
            while committed < rows.count {
                let chunk = Array(rows[committed..<min(rows.count, committed + chunkSize)])
                let f = try transaction(db) { db, st in try self.insertReadings(db, chunk, &st) }
                if committed == 0 { first = f }
                committed += chunk.count
            }
            return .success([first])
        } catch {
            let rest = Array(rows[committed...])
            return .failure(recordLoss([Loss(rest)], error: bufferError(error, path: path, operation: operation)))
        }
    }

    /// Counts records that were not stored; they go into a gap record with the next commit.
    private func recordLoss(_ losses: [Loss], error: BufferError) -> BufferError {
        let reason: GapReason = error.code == .diskFull ? .diskFull : .ioError
        let count = losses.reduce(0) { $0 + $1.count }
        lock.withLock {
            state.ledger.lost(
                count: count, fromMillis: losses.map(\.fromMillis).min() ?? 0,
                toMillis: losses.map(\.toMillis).max() ?? 0, reason: reason)
        }
        logger.error("buffer \(path): \(count) records not stored: \(error)")
        // Whatever SQLite said, for the caller the records were not stored.
        return BufferError(
            reason == .diskFull ? .diskFull : .ioError, path: error.path, operation: error.operation,
            detail: error.detail, file: error.file, line: error.line)
    }

    /// Gap records for what the ledger counted as not stored. The lost records are given seqs now — taken
    /// from the sequence and never used — so each gap names a seq range like an eviction gap does.
    private func writeLossGaps(_ db: Database, _ st: inout WriterState) throws {
        for loss in st.ledger.losses {
            let first = try takeSeqs(db, loss.count, &st)
            _ = try insertGap(db, loss.gapRecord(firstSeq: first), &st)
            st.counters.notStoredRecords += loss.count
        }
        st.ledger.clear()  // published only if the transaction commits
    }

    /// Takes `count` seqs from the record sequence without a row in `record` (lost records, EFM records):
    /// never given out again. Returns the first; the rest follow it.
    func takeSeqs(_ db: Database, _ count: Int64, _ st: inout WriterState) throws -> Int64 {
        let current = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'record'")
        if let current {
            try db.execute(
                sql: "UPDATE sqlite_sequence SET seq = ? WHERE name = 'record'", arguments: [current + count])
        } else {
            try db.execute(sql: "INSERT INTO sqlite_sequence(name, seq) VALUES ('record', ?)", arguments: [count])
        }
        st.lastSeq = (current ?? 0) + count
        return (current ?? 0) + 1
    }

    /// Inserts readings with the raw SQLite API on a cached statement; returns the first seq (the rest follow
    /// consecutively: one writer, AUTOINCREMENT, nothing else inserted into `record` in between).
    func insertReadings(_ db: Database, _ rows: [PendingReading], _ st: inout WriterState) throws -> Int64 {
        let statement = try db.cachedStatement(sql: BufferSchema.insertReadingSQL)
        let stmt = statement.sqliteStatement
        sqlite3_reset(stmt)
        // A failed bind (out of memory, too big) leaves the parameter NULL and the step would still store
        // the row: every bind is checked, and a failure fails the transaction.
        func bound(_ rc: Int32) throws {
            guard rc == SQLITE_OK else {
                let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
                sqlite3_reset(stmt)
                throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: "bind: \(message)")
            }
        }
        for i in rows.indices {
            let series = try seriesID(db, rows[i].series, &st)
            try bound(sqlite3_bind_int64(stmt, 1, series))
            try bound(sqlite3_bind_int64(stmt, 2, rows[i].wall))
            try bound(rows[i].number.map { sqlite3_bind_double(stmt, 3, $0) } ?? sqlite3_bind_null(stmt, 3))
            try bound(sqlite3_bind_int64(stmt, 4, rows[i].quality))
            try bound(
                rows[i].text.map { sqlite3_bind_text(stmt, 5, $0, -1, SQLITE_TRANSIENT_SWIFT) }
                    ?? sqlite3_bind_null(stmt, 5))
            let rc = sqlite3_step(stmt)
            guard rc == SQLITE_DONE else {
                let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
                sqlite3_reset(stmt)
                throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: message)
            }
            sqlite3_reset(stmt)
        }
        let last = sqlite3_last_insert_rowid(db.sqliteConnection)
        let first = last - Int64(rows.count) + 1
        st.lastSeq = last
        st.counters.readingRecords += Int64(rows.count)
        return first
    }

    private func seriesID(_ db: Database, _ key: SeriesKey, _ st: inout WriterState) throws -> Int64 {
        if let id = st.series[key] { return id }
        try db.execute(
            sql: "INSERT INTO series(device, tag, units) VALUES (?, ?, ?)", arguments: [key.device, key.tag, key.units])
        let id = db.lastInsertedRowID
        st.series[key] = id
        return id
    }

    func insertAlarm(_ db: Database, _ alarm: AlarmEventRecord, _ st: inout WriterState) throws -> Int64 {
        try db.execute(
            sql: "INSERT INTO record(kind, wall, quality, body) VALUES (?, ?, 0, ?)",
            arguments: [RecordKind.alarm.rawValue, alarm.wallMillis, try RecordRows.encode(alarm)])
        st.counters.alarmRecords += 1
        st.lastSeq = db.lastInsertedRowID
        return db.lastInsertedRowID
    }

    /// Keys in `meta` that records' state may use; the file's own keys (epoch, schema, created) are not
    /// among them.
    static let stateKeyPrefix = "state."

    func saveState(_ db: Database, _ entry: StateEntry) throws {
        try db.execute(
            sql: "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
            arguments: [Self.stateKeyPrefix + entry.key, entry.value])
    }

    func insertGap(_ db: Database, _ gap: GapRecord, _ st: inout WriterState) throws -> Int64 {
        try db.execute(
            sql: "INSERT INTO record(kind, wall, quality, body) VALUES (?, ?, 0, ?)",
            arguments: [RecordKind.gap(gap.reason).rawValue, gap.fromMillis, try RecordRows.encode(gap)])
        st.counters.readingRecords += 1
        st.counters.gapRecords += 1
        st.counters.gapRecordsWritten += 1
        st.lastSeq = db.lastInsertedRowID
        return db.lastInsertedRowID
    }
}

/// SQLite's SQLITE_TRANSIENT (copy the bound bytes), which the C header defines as a cast macro.
let SQLITE_TRANSIENT_SWIFT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
