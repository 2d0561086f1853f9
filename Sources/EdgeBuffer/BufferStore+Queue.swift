import EdgeCore
import Foundation
import GRDB

/// The uplink's side: dequeue, acknowledge, dead-letter, and what the buffer holds.
extension BufferStore {
    /// The next batch: alarm-lane records first, then reading-lane records (readings and gap records in
    /// seq order), at most `maxRecords` records and about `maxBytes` estimated wire bytes (at least one
    /// record). Nil when the queue is empty. Records stay queued until `acknowledge`. Each lane is read
    /// through an index in its exact ORDER BY with a LIMIT, so the cost and memory do not grow with the backlog.
    public func nextBatch(maxRecords: Int, maxBytes: Int) throws(BufferError) -> BufferBatch? {
        try read("next batch") { db in try self.readBatch(db, maxRecords: maxRecords, maxBytes: maxBytes) }
    }

    /// `nextBatch` on GRDB's reader queue, not the caller's thread.
    public func nextBatch(maxRecords: Int, maxBytes: Int) async throws(BufferError) -> BufferBatch? {
        try await read("next batch") { db in try self.readBatch(db, maxRecords: maxRecords, maxBytes: maxBytes) }
    }

    func readBatch(_ db: Database, maxRecords: Int, maxBytes: Int) throws -> BufferBatch? {
        var filler = BatchFiller(maxRecords: maxRecords, maxBytes: maxBytes)
        var open = true
        let alarms = try Row.fetchCursor(db, sql: BufferSchema.alarmLaneSQL, arguments: [filler.remainingRecords])
        while open, let row = try alarms.next() { open = filler.offer(try RecordRows.alarm(row)) }
        // Gas measurement records go with the alarm events, ahead of the readings backlog.
        if open && !filler.isFull, try Self.efmTablesExist(db) {
            let rows = try Row.fetchCursor(db, sql: BufferSchema.efmLaneSQL, arguments: [filler.remainingRecords])
            while open, let row = try rows.next() { open = filler.offer(try RecordRows.efm(row)) }
        }
        if open && !filler.isFull {
            let rows = try Row.fetchCursor(db, sql: BufferSchema.readingLaneSQL, arguments: [filler.remainingRecords])
            while open, let row = try rows.next() { open = filler.offer(try RecordRows.readingLane(row)) }
        }
        return filler.records.isEmpty ? nil : BufferBatch(epoch: epoch, records: filler.records)
    }

    /// The server stored `batch`: deletes its records, per lane by seq range, in one transaction.
    public func acknowledge(_ batch: BufferBatch) throws(BufferError) {
        let operation = "acknowledge \(batch.count) records"
        try checkEpoch(batch, operation)
        try write(operation) { db, st in try self.delete(db, batch, &st) }
    }

    /// `acknowledge` on GRDB's writer queue.
    public func acknowledge(_ batch: BufferBatch) async throws(BufferError) {
        let operation = "acknowledge \(batch.count) records"
        try checkEpoch(batch, operation)
        try await asyncWrite(operation) { db, st in try self.delete(db, batch, &st) }
    }

    /// The server rejected `batch` as malformed: its records move to the dead-letter lane (kept, counted,
    /// never resent) with `reason`, in one transaction, so the queue moves on.
    public func deadLetter(_ batch: BufferBatch, reason: String) throws(BufferError) {
        let operation = "dead-letter \(batch.count) records"
        try checkEpoch(batch, operation)
        let now = options.wallClock()
        try write(operation) { db, st in try self.moveToDeadLetter(db, batch, reason: reason, now: now, &st) }
    }

    /// `deadLetter` on GRDB's writer queue.
    public func deadLetter(_ batch: BufferBatch, reason: String) async throws(BufferError) {
        let operation = "dead-letter \(batch.count) records"
        try checkEpoch(batch, operation)
        let now = options.wallClock()
        try await asyncWrite(operation) { db, st in try self.moveToDeadLetter(db, batch, reason: reason, now: now, &st)
        }
    }

    /// Drops readings that will not be sent (the monthly data budget's thinning) and records why: deletes
    /// those of `records` that are still queued readings and writes one gap record (`reason`, its own new
    /// seq) naming their range, count and time span, in one transaction. Returns the gap's seq, or nil when
    /// none of them was still queued.
    public func drop(_ records: [BufferedRecord], reason: GapReason) async throws(BufferError) -> Int64? {
        let readings = records.filter { $0.reading != nil }
        guard !readings.isEmpty else { return nil }
        let operation = "drop \(readings.count) readings (\(reason.rawValue))"
        guard !isClosed else { throw closedError(operation) }
        do {
            return try await pool.writeWithoutTransaction { db in
                try self.transaction(db) { db, st -> Int64? in
                    var deleted: [BufferedRecord] = []
                    let statement = try db.cachedStatement(sql: "DELETE FROM record WHERE seq = ? AND kind = 0")
                    for r in readings {
                        try statement.execute(arguments: [r.seq])
                        if db.changesCount > 0 { deleted.append(r) }
                    }
                    guard !deleted.isEmpty else { return nil }
                    st.counters.readingRecords -= Int64(deleted.count)
                    let times = deleted.compactMap { $0.reading?.wallMillis }
                    let gap = GapRecord(
                        firstSeq: deleted.map(\.seq).min()!, lastSeq: deleted.map(\.seq).max()!,
                        count: Int64(deleted.count),
                        fromMillis: times.min() ?? 0, toMillis: times.max() ?? 0, reason: reason)
                    return try self.insertGap(db, gap, &st)
                }
            }
        } catch {
            throw bufferError(error, path: path, operation: operation)
        }
    }

    /// Dead-lettered records, oldest first, at most `maxRecords` (lane `deadLetter`).
    public func deadLetters(maxRecords: Int) throws(BufferError) -> [BufferedRecord] {
        try read("list dead letters") { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT r.seq, r.kind, r.wall, r.value, r.quality, r.body, s.device, s.tag, s.units
                    FROM dead_letter r LEFT JOIN series s ON s.id = r.series ORDER BY r.seq LIMIT ?
                    """, arguments: [maxRecords]
            ).map { try RecordRows.readingLane($0, lane: .deadLetter) }
        }
    }

    /// The dead-lettered batches with their reasons, oldest first.
    public func deadLetterBatches() throws(BufferError) -> [DeadLetterBatch] {
        try read("list dead-letter batches") { db in
            try Row.fetchAll(
                db, sql: "SELECT id, reason, wall, records, first_seq, last_seq FROM dead_batch ORDER BY id"
            ).map {
                DeadLetterBatch(
                    id: $0[0], reason: $0[1], wallMillis: $0[2], records: $0[3], firstSeq: $0[4], lastSeq: $0[5])
            }
        }
    }

    /// Records per lane, bytes on disk (database + WAL + shm) against the budget, evictions, gaps, dead
    /// letters, records not stored (including those waiting for their gap record), oldest reading time.
    public func stats() throws(BufferError) -> BufferStats {
        try read("stats") { db in try self.stats(db) }
    }

    /// `stats` on GRDB's reader queue, not the caller's thread (the control socket and the status line ask
    /// from async code).
    public func stats() async throws(BufferError) -> BufferStats {
        try await read("stats") { db in try self.stats(db) }
    }

    private func stats(_ db: Database) throws -> BufferStats {
        let oldest = try Int64.fetchOne(db, sql: "SELECT wall FROM record WHERE kind = 0 ORDER BY seq LIMIT 1")
        let sizes = FileSizes.of(path)
        let now = GroupCommitThread.now()
        return lock.withLock {
            remembered.oldestReadingMillis = oldest
            remembered.sizes = sizes
            remembered.readAtNanos = now
            return figures(state, oldest: oldest, sizes: sizes)
        }
    }

    /// The buffer's figures from memory alone, for `edgectl status`: never a read of the file, so it answers
    /// at once whatever the disk does. Record counts, seqs and losses are current (they live in memory);
    /// the oldest reading and the file sizes are those of the last read of the file (`stats()`) or commit,
    /// `diskFiguresAgeMillis` ago (nil before the first).
    public func rememberedStats() -> RememberedBufferStats {
        let now = GroupCommitThread.now()
        return lock.withLock {
            let r = remembered
            // With no reading queued now (the counts are current), there is no oldest, whatever was read.
            let queued = state.counters.readingRecords > state.counters.gapRecords
            return RememberedBufferStats(
                stats: figures(
                    state, oldest: queued ? r.oldestReadingMillis : nil,
                    sizes: r.sizes ?? FileSizes(database: 0, wal: 0, shm: 0)),
                diskFiguresAgeMillis: r.readAtNanos.map { Int64((now &- $0) / 1_000_000) })
        }
    }

    /// Figures from the writer state and what was read of the file (called with `lock` held).
    private func figures(_ st: WriterState, oldest: Int64?, sizes: FileSizes) -> BufferStats {
        let c = st.counters
        return BufferStats(
            epoch: epoch, alarmRecords: c.alarmRecords, readingRecords: c.readingRecords,
            deadLetterRecords: c.deadLetterRecords, gapRecords: c.gapRecords, bytesOnDisk: sizes.total,
            databaseBytes: sizes.database, walBytes: sizes.wal, shmBytes: sizes.shm,
            peakBytesOnDisk: max(st.peakBytes, sizes.total), budgetBytes: budget.maxBytes,
            evictions: c.evictions, evictedRecords: c.evictedRecords,
            notStoredRecords: c.notStoredRecords + st.ledger.count, gapRecordsWritten: c.gapRecordsWritten,
            deadLetterBatches: c.deadLetterBatches, oldestReadingMillis: oldest, lastSeq: st.lastSeq)
    }

    // MARK: - Helpers

    private func checkEpoch(_ batch: BufferBatch, _ operation: String) throws(BufferError) {
        guard batch.epoch == epoch else {
            throw BufferError(
                .staleBatch, path: path, operation: operation,
                detail: "batch is from epoch \(batch.epoch), this file's epoch is \(epoch)")
        }
    }

    private func asyncWrite(
        _ operation: String, _ body: @escaping @Sendable (Database, inout WriterState) throws -> Void
    ) async throws(BufferError) {
        guard !isClosed else { throw closedError(operation) }
        do {
            try await pool.writeWithoutTransaction { db in try self.transaction(db, body) }
        } catch {
            throw bufferError(error, path: path, operation: operation)
        }
    }

    /// Per-lane deletes of the batch's seq ranges; counters follow what was really deleted.
    private func delete(_ db: Database, _ batch: BufferBatch, _ st: inout WriterState) throws {
        _ = try removeRanges(db, batch, &st)
        try markEFM(db, batch, as: .uploaded)
    }

    /// EFM records and gaps are kept after upload (`edgectl efm` reads them on site): marked, one by one.
    private func markEFM(_ db: Database, _ batch: BufferBatch, as state: BufferSchema.EFMUpload) throws {
        guard !batch.efmSeqs.isEmpty else { return }
        for chunk in stride(from: 0, to: batch.efmSeqs.count, by: 500) {
            let seqs = batch.efmSeqs[chunk..<min(chunk + 500, batch.efmSeqs.count)]
            let list = seqs.map(String.init).joined(separator: ",")
            for table in ["efm_record", "efm_gap"] {
                try db.execute(
                    sql: "UPDATE \(table) SET uploaded = ? WHERE seq IN (\(list))", arguments: [state.rawValue])
            }
        }
    }

    private func moveToDeadLetter(
        _ db: Database, _ batch: BufferBatch, reason: String, now: Int64, _ st: inout WriterState
    ) throws {
        try db.execute(
            sql: "INSERT INTO dead_batch(reason, wall, records, first_seq, last_seq) VALUES (?, ?, ?, ?, ?)",
            arguments: [reason, now, batch.count, batch.records.map(\.seq).min(), batch.records.map(\.seq).max()])
        let id = db.lastInsertedRowID
        for (range, condition) in laneRanges(batch) {
            try db.execute(
                sql: """
                    INSERT INTO dead_letter(seq, batch, kind, series, wall, value, quality, body)
                    SELECT seq, ?, kind, series, wall, value, quality, body FROM record WHERE seq BETWEEN ? AND ? AND \(condition)
                    """, arguments: [id, range.lowerBound, range.upperBound])
        }
        // EFM records stay where they are (they are the original records), marked as rejected: never resent.
        let moved = try removeRanges(db, batch, &st) + Int64(batch.efmSeqs.count)
        try markEFM(db, batch, as: .rejected)
        try db.execute(sql: "UPDATE dead_batch SET records = ? WHERE id = ?", arguments: [moved, id])
        st.counters.deadLetterRecords += moved
        st.counters.deadLetterBatches += 1
        logger.error("buffer \(path): \(moved) records set aside as dead letters: \(reason)")
    }

    private func laneRanges(_ batch: BufferBatch) -> [(ClosedRange<Int64>, String)] {
        var out: [(ClosedRange<Int64>, String)] = []
        if let r = batch.alarmSeqs { out.append((r, "kind = 1")) }
        if let r = batch.readingSeqs { out.append((r, "kind != 1")) }
        return out
    }

    /// Deletes the batch's ranges from `record`; returns the rows deleted.
    private func removeRanges(_ db: Database, _ batch: BufferBatch, _ st: inout WriterState) throws -> Int64 {
        var total: Int64 = 0
        for (range, condition) in laneRanges(batch) {
            let groups = try Row.fetchAll(
                db, sql: "SELECT kind, COUNT(*) FROM record WHERE seq BETWEEN ? AND ? AND \(condition) GROUP BY kind",
                arguments: [range.lowerBound, range.upperBound])
            for g in groups {
                let n: Int64 = g[1]
                total += n
                switch RecordKind(rawValue: g[0]) {
                case .alarm: st.counters.alarmRecords -= n
                case .reading: st.counters.readingRecords -= n
                case .evictionGap, .lossGap: st.counters.readingRecords -= n; st.counters.gapRecords -= n
                case nil: break
                }
            }
            try db.execute(
                sql: "DELETE FROM record WHERE seq BETWEEN ? AND ? AND \(condition)",
                arguments: [range.lowerBound, range.upperBound])
        }
        return total
    }
}
