import EdgeCore
import Foundation
import GRDB

/// The size budget: eviction with gap records, checkpoints, incremental vacuum, retention.
extension BufferStore {
    func spaceSnapshot(_ db: Database, _ st: WriterState) throws -> SpaceSnapshot {
        SpaceSnapshot(
            pageCount: try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0,
            freePages: try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0,
            records: st.counters.totalRecords)
    }

    /// Evicts the oldest records until `incoming` fits under the high-water mark, in transactions of at
    /// most one chunk each (each leaves one gap record), committed before the group that needs the room.
    /// `force` evicts at least one chunk (the backstop was hit). Returns the records removed.
    @discardableResult
    func makeRoom(_ db: Database, incoming: Incoming, force: Bool = false) throws -> Int64 {
        var removed: Int64 = 0
        var mustEvict = force
        while true {
            let snap = try spaceSnapshot(db, lock.withLock { state })
            let perRecord = budget.bytesPerRecord(snap)
            let incomingBytes = Int64((Double(incoming.readings) * perRecord).rounded(.up)) + incoming.extraBytes
            let step = budget.evictionStepRecords(snap)
            var n = min(budget.recordsToEvict(snap, incomingBytes: incomingBytes), step)
            if mustEvict { n = step; mustEvict = false }
            guard n > 0 else { return removed }
            let evicted = try transaction(db) { db, st in try self.evictOldest(db, count: n, &st) }
            guard evicted > 0 else { return removed }
            removed += evicted
        }
    }

    /// Whether `max_page_count` stopped the last write (as opposed to the disk).
    func backstopReached(_ db: Database) -> Bool {
        guard let pages = try? Int64.fetchOne(db, sql: "PRAGMA page_count"),
            let max = try? Int64.fetchOne(db, sql: "PRAGMA max_page_count")
        else { return false }
        return pages >= max - 2
    }

    /// Removes about `count` of the oldest records — the reading lane first (eviction gaps met there are
    /// absorbed), then dead letters, then alarm events and loss gaps — and leaves one gap record saying
    /// what went. Returns the rows removed.
    @discardableResult
    func evictOldest(_ db: Database, count: Int64, _ st: inout WriterState) throws -> Int64 {
        var remaining = count
        var gap: GapRecord?
        func add(_ g: GapRecord?) { if let g { gap = gap.map { $0.absorbing(g) } ?? g } }

        if remaining > 0, let last = try boundary(db, table: "record", where: "kind IN (0, 2)", count: remaining) {
            let (g, rows) = try evictRecords(db, through: last, kinds: "0, 2", &st)
            add(g); remaining -= rows
        }
        if remaining > 0, let last = try boundary(db, table: "dead_letter", where: "1", count: remaining) {
            let row = try Row.fetchOne(
                db, sql: "SELECT COUNT(*), MIN(seq), MAX(seq), MIN(wall), MAX(wall) FROM dead_letter WHERE seq <= ?",
                arguments: [last])!
            let n: Int64 = row[0]
            try db.execute(sql: "DELETE FROM dead_letter WHERE seq <= ?", arguments: [last])
            st.counters.deadLetterRecords -= n
            st.counters.evictedRecords += n
            add(
                GapRecord(
                    firstSeq: row[1], lastSeq: row[2], count: n, fromMillis: row[3], toMillis: row[4], reason: .evicted)
            )
            remaining -= n
        }
        if remaining > 0, let last = try boundary(db, table: "record", where: "kind IN (1, 3)", count: remaining) {
            let (g, rows) = try evictRecords(db, through: last, kinds: "1, 3", &st)
            add(g); remaining -= rows
        }
        guard var gap else { return 0 }
        gap.reason = .evicted
        _ = try insertGap(db, gap, &st)
        st.counters.evictions += 1
        let removed = count - remaining
        logger.notice(
            "buffer \(path): evicted \(gap.count) records (seq \(gap.firstSeq)...\(gap.lastSeq)) to stay within \(budget.maxBytes) bytes"
        )
        return removed
    }

    /// The seq of the `count`-th oldest row matching `condition`, or the newest such row when there are fewer.
    private func boundary(_ db: Database, table: String, where condition: String, count: Int64) throws -> Int64? {
        if let seq = try Int64.fetchOne(
            db, sql: "SELECT seq FROM \(table) WHERE \(condition) ORDER BY seq LIMIT 1 OFFSET ?", arguments: [count - 1]
        ) {
            return seq
        }
        return try Int64.fetchOne(db, sql: "SELECT seq FROM \(table) WHERE \(condition) ORDER BY seq DESC LIMIT 1")
    }

    /// Deletes the rows of the given kinds with seq ≤ `last`; returns the gap that describes them (gap
    /// records among them absorbed) and the rows deleted.
    private func evictRecords(_ db: Database, through last: Int64, kinds: String, _ st: inout WriterState) throws -> (
        GapRecord?, Int64
    ) {
        var gap: GapRecord?
        var rows: Int64 = 0
        let groups = try Row.fetchAll(
            db,
            sql: """
                SELECT kind, COUNT(*), MIN(seq), MAX(seq), MIN(wall), MAX(wall) FROM record
                WHERE seq <= ? AND kind IN (\(kinds)) GROUP BY kind
                """, arguments: [last])
        for g in groups {
            let kind = RecordKind(rawValue: g[0])
            let n: Int64 = g[1]
            rows += n
            switch kind {
            case .reading, .alarm:
                let part = GapRecord(
                    firstSeq: g[2], lastSeq: g[3], count: n, fromMillis: g[4], toMillis: g[5], reason: .evicted)
                gap = gap.map { $0.absorbing(part) } ?? part
                st.counters.evictedRecords += n
                if kind == .reading { st.counters.readingRecords -= n } else { st.counters.alarmRecords -= n }
            case .evictionGap, .lossGap:
                let bodies = try String.fetchAll(
                    db, sql: "SELECT body FROM record WHERE seq <= ? AND kind = ?", arguments: [last, g[0] as Int64])
                for body in bodies {
                    let old = try RecordRows.decode(GapRecord.self, body, seq: last)
                    gap = gap.map { $0.absorbing(old) } ?? old
                }
                st.counters.readingRecords -= n
                st.counters.gapRecords -= n
            case nil:
                break
            }
        }
        try db.execute(sql: "DELETE FROM record WHERE seq <= ? AND kind IN (\(kinds))", arguments: [last])
        return (gap, rows)
    }

    /// After every commit on the writer connection: note the peak size; checkpoint with TRUNCATE when the
    /// automatic checkpoint fell behind.
    func afterCommit(_ db: Database) {
        let sizes = FileSizes.of(path)
        lock.withLock {
            state.peakBytes = max(state.peakBytes, sizes.total)
            remembered.sizes = sizes
        }
        if sizes.wal > budget.walTruncateBytes {
            do { try db.checkpoint(.truncate) } catch { logger.debug("buffer \(path): checkpoint deferred: \(error)") }
        }
    }

    /// Idle-time upkeep on the writer thread: retention, incremental vacuum when a quarter of the file is
    /// free, and a TRUNCATE checkpoint.
    func upkeep() {
        guard !isClosed else { return }
        do {
            try pool.writeWithoutTransaction { db in
                if let retention = options.retention {
                    try evictExpired(db, olderThan: options.wallClock() - retention.milliseconds)
                    try pruneUploadedEFM(db, olderThan: options.wallClock() - retention.milliseconds)
                }
                let snap = try spaceSnapshot(db, lock.withLock { state })
                if budget.shouldVacuum(snap, idle: true) { try vacuumToCompletion(db) }
                _ = try db.checkpoint(.truncate)
            }
        } catch {
            logger.warning("buffer \(path): upkeep failed: \(error)")
        }
    }

    /// Evicts readings (from the front of the reading lane) whose time is before `cutoff`, one eviction
    /// step per transaction.
    func evictExpired(_ db: Database, olderThan cutoff: Int64) throws {
        while true {
            let step = budget.evictionStepRecords(try spaceSnapshot(db, lock.withLock { state }))
            var last: Int64?
            var scanned: Int64 = 0
            var reachedNewer = false
            let rows = try Row.fetchCursor(
                db, sql: "SELECT seq, wall FROM record WHERE kind IN (0, 2) ORDER BY seq LIMIT ?", arguments: [step])
            while let row = try rows.next() {
                scanned += 1
                guard (row[1] as Int64) < cutoff else { reachedNewer = true; break }
                last = row[0]
            }
            guard let last else { return }
            try transaction(db) { db, st in
                let (gap, _) = try evictRecords(db, through: last, kinds: "0, 2", &st)
                if var gap {
                    gap.reason = .retention
                    _ = try insertGap(db, gap, &st)
                    st.counters.evictions += 1
                    logger.notice("buffer \(path): \(gap.count) records older than the retention evicted")
                }
            }
            if reachedNewer || scanned < step { return }
        }
    }

    /// EFM records and gaps the server stored, collected before `cutoff`: the server holds them now, so the
    /// buffer file (and its size budget) keeps only the retention's worth for `edgectl efm` on site. Records
    /// still queued, or rejected by the server, are never pruned.
    func pruneUploadedEFM(_ db: Database, olderThan cutoff: Int64) throws {
        guard try Self.efmTablesExist(db) else { return }
        let pruned = try transaction(db) { db, _ in
            try db.execute(
                sql: "DELETE FROM efm_record WHERE uploaded = ? AND collected < ?",
                arguments: [BufferSchema.EFMUpload.uploaded.rawValue, cutoff])
            let records = db.changesCount
            try db.execute(
                sql: "DELETE FROM efm_gap WHERE uploaded = ? AND noted < ?",
                arguments: [BufferSchema.EFMUpload.uploaded.rawValue, cutoff])
            return records
        }
        if pruned > 0 {
            logger.info("buffer \(path): \(pruned) uploaded EFM records older than the retention removed")
        }
    }

    /// `PRAGMA incremental_vacuum` in steps small enough for the WAL's share, checkpointing between steps,
    /// until no free page is left (or a step frees nothing).
    func vacuumToCompletion(_ db: Database) throws {
        var previous = Int64.max
        while true {
            let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
            guard free > 0, free < previous else { break }
            previous = free
            try db.execute(sql: "PRAGMA incremental_vacuum(\(budget.vacuumStepPages))")
            if FileSizes.of(path).wal > budget.walTruncateBytes { _ = try? db.checkpoint(.truncate) }
        }
        try db.execute(sql: "PRAGMA max_page_count = \(budget.maxPageCount)")
    }
}
