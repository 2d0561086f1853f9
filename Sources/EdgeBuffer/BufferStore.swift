import EdgeCore
import Foundation
import GRDB
import Logging

/// Tuning of a buffer store; the defaults are what edged runs with.
public struct BufferOptions: Sendable {
    /// Group commit: up to this many records, or this long after the first one waits.
    public var groupCommit: GroupCommitPolicy
    /// Readings older than this are evicted (with a gap record) even when the budget holds; nil keeps them.
    public var retention: TimeSpan?
    /// How long the writer must be idle before it checkpoints, vacuums and applies retention.
    public var idleUpkeepDelay: TimeSpan
    /// Upkeep runs at least this often, even when the writer never goes idle.
    public var upkeepPeriod: TimeSpan
    /// Readings that may wait behind a commit under way. When a commit hangs (a hung disk), appends beyond
    /// this are refused at once and counted as not stored (an `io-error` gap record once the disk is back)
    /// instead of piling up in memory. 100,000 readings are tens of MB and over 10 s of a busy gateway.
    public var maxQueuedReadings: Int
    /// Wall-clock milliseconds since 1970 (injected by tests).
    public var wallClock: @Sendable () -> Int64

    public init(
        groupCommit: GroupCommitPolicy = .default, retention: TimeSpan? = nil,
        idleUpkeepDelay: TimeSpan = TimeSpan(milliseconds: 500), upkeepPeriod: TimeSpan = .seconds(60),
        maxQueuedReadings: Int = 100_000,
        wallClock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) {
        self.groupCommit = groupCommit; self.retention = retention
        self.idleUpkeepDelay = idleUpkeepDelay; self.upkeepPeriod = upkeepPeriod
        self.maxQueuedReadings = maxQueuedReadings; self.wallClock = wallClock
    }
}

/// The store-and-forward buffer: a durable SQLite queue (GRDB `DatabasePool`, WAL, `synchronous=FULL` on
/// every connection) that keeps every reading and alarm event until the uplink says the server stored it.
///
/// - One writer: a dedicated thread (`edged-buffer-writer`) gathers appends into group commits
///   (`GroupCommitGate`: up to N records or T ms; alarm events at once) and does the idle upkeep
///   (retention, incremental vacuum, TRUNCATE checkpoint); acknowledgements and dead-lettering go through
///   the same GRDB writer connection, serialized by GRDB's writer queue.
/// - `append` returns only after the transaction holding the records committed (WAL fsynced).
/// - Every record gets a seq from `INTEGER PRIMARY KEY AUTOINCREMENT`, never reused; the file has a random
///   epoch made at creation. Records leave the queue only by `acknowledge`, `deadLetter`, or eviction —
///   which always leaves a gap record.
/// - `storage.maxBytes` bounds database + WAL + shm (see `BufferBudget` for the split).
///
/// The synchronous methods (`open`, `nextBatch`, `acknowledge`, `deadLetter`, `stats`, `close`) block the
/// calling thread on SQLite: call them from a dedicated thread, or use the `async` forms of `nextBatch`,
/// `acknowledge` and `deadLetter`, which run on GRDB's queues. `close()` must be called: the writer thread
/// keeps the store alive until then.
// Guard: `lock` protects `state`, `remembered`, `closed` and `refusedSinceFull` (a transaction works on a copy
// of `state` and publishes it under `lock`); the rest is immutable after init.
public final class BufferStore: @unchecked Sendable {
    /// The buffer file.
    public let path: String
    /// The random id made when the file was created; (gateway, epoch, seq) identifies a record forever.
    public let epoch: String
    public let budget: BufferBudget
    let options: BufferOptions
    let logger: Logger
    let pool: DatabasePool
    let writer: GroupCommitThread

    /// State owned by the writer connection: read and replaced only inside GRDB write accesses (which are
    /// serialized); `lock` makes snapshots for `stats()` consistent.
    struct WriterState: Sendable {
        var counters: BufferCounters
        var series: [SeriesKey: Int64]
        var ledger = LossLedger()
        var lastSeq: Int64
        var peakBytes: Int64 = 0
    }
    let lock = NSLock()
    var state: WriterState
    /// What was last read of the file (under `lock`), for `rememberedStats()`.
    var remembered = RememberedDiskFigures()
    private var closed = false
    /// Readings refused since the writer's queue filled up (nil while appends are taken).
    private var refusedSinceFull: Int64?

    init(
        path: String, epoch: String, budget: BufferBudget, options: BufferOptions, logger: Logger,
        pool: DatabasePool, state: WriterState
    ) {
        self.path = path; self.epoch = epoch; self.budget = budget; self.options = options
        self.logger = logger; self.pool = pool; self.state = state
        writer = GroupCommitThread(
            policy: options.groupCommit, maxTransactionBytes: Int(budget.maxTransactionBytes),
            idleDelay: options.idleUpkeepDelay, upkeepPeriod: options.upkeepPeriod,
            maxQueuedReadings: options.maxQueuedReadings)
        writer.start(self)
    }

    // MARK: - Appending

    /// Stores readings; returns their seqs (contiguous, in order) once the group commit holding them has
    /// committed, or nil for no readings. `units` gives each (device, tag)'s units.
    ///
    /// On disk full or an I/O error it throws `diskFull`/`ioError`: the readings were not stored and are
    /// counted in a gap record written with the next successful commit. The store keeps running and
    /// recovers by itself when space returns.
    public func append(readings: [Reading], units: (String, String) -> String?) async throws(BufferError)
        -> ClosedRange<Int64>?
    {
        guard !readings.isEmpty else { return nil }
        let result = await withCheckedContinuation {
            (c: CheckedContinuation<Result<ClosedRange<Int64>?, BufferError>, Never>) in
            enqueue(readings: readings, units: units) { c.resume(returning: $0) }
        }
        return try result.get()
    }

    /// `append(readings:)` without waiting: the readings join the writer's queue now, in the order of the
    /// calls, and `done` is called once with their seqs or the error (on the writer thread, or at once when
    /// they are refused; it must return quickly). A refusal (closed, or the queue full behind a hung
    /// commit) counts the readings as not stored, as `append` does.
    public func enqueue(
        readings: [Reading], units: (String, String) -> String?,
        done: @escaping @Sendable (Result<ClosedRange<Int64>?, BufferError>) -> Void
    ) {
        guard !readings.isEmpty else { return done(.success(nil)) }
        let rows = readings.map { PendingReading($0, units: units($0.device, $0.tag)) }
        switch writer.submit(.readings(rows, done)) {
        case .queued: acceptingAgain()
        case .closed: done(.failure(closedError("append \(rows.count) readings")))
        case .full(let queued): done(.failure(refuse(rows, queued: queued)))
        }
    }

    /// Stores an alarm event, committed at once (with any readings waiting); returns its seq.
    public func append(alarm: AlarmEventRecord) async throws(BufferError) -> Int64 {
        try await append(alarms: [alarm], state: nil)[0]
    }

    /// Stores alarm events, committed at once, and `state` in the same transaction: after a crash the file
    /// holds both or neither (the alarm engine's snapshot never disagrees with the events sent). Returns the
    /// events' seqs. With no events it only saves `state`.
    public func append(alarms: [AlarmEventRecord], state: StateEntry?) async throws(BufferError) -> [Int64] {
        guard !alarms.isEmpty || state != nil else { return [] }
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<[Int64], BufferError>, Never>) in
            enqueue(alarms: alarms, state: state) { c.resume(returning: $0) }
        }
        return try result.get()
    }

    /// `append(alarms:state:)` without waiting: queued now, in the order of the calls (alarm events are
    /// never refused for a full queue); `done` is called once with their seqs or the error, on the writer
    /// thread (it must return quickly).
    public func enqueue(
        alarms: [AlarmEventRecord], state: StateEntry?,
        done: @escaping @Sendable (Result<[Int64], BufferError>) -> Void
    ) {
        guard !alarms.isEmpty || state != nil else { return done(.success([])) }
        if writer.submit(.alarms(alarms, state: state, done)) != .queued {
            done(.failure(closedError("append \(alarms.count) alarm events")))
        }
    }

    /// Counts readings that never reached the buffer (dropped before they could be queued) as not stored:
    /// they are named by a gap record with `reason` in the next successful commit.
    public func countNotStored(_ readings: [Reading], reason: GapReason) {
        guard !readings.isEmpty else { return }
        let walls = readings.map(\.wallMillis)
        lock.withLock {
            state.ledger.lost(
                count: Int64(readings.count), fromMillis: walls.min()!, toMillis: walls.max()!, reason: reason)
        }
    }

    /// Counts readings the full queue refused as not stored (a gap record once a commit succeeds again); says
    /// so in the log when refusing starts, not for every append.
    private func refuse(_ rows: [PendingReading], queued: Int) -> BufferError {
        let loss = Loss(rows)
        let first = lock.withLock { () -> Bool in
            state.ledger.lost(count: loss.count, fromMillis: loss.fromMillis, toMillis: loss.toMillis, reason: .ioError)
            defer { refusedSinceFull = (refusedSinceFull ?? 0) + loss.count }
            return refusedSinceFull == nil
        }
        let detail =
            "the writer has not committed for \(writer.stalledMillis() / 1000) s and \(queued) readings wait; new readings are not stored until it does"
        if first { logger.error("buffer \(path): \(detail) (counted for a gap record)") }
        return BufferError(.ioError, path: path, operation: "append \(rows.count) readings", detail: detail)
    }

    /// After refusals: appends are taken again; says how many were not stored.
    private func acceptingAgain() {
        guard
            let refused = lock.withLock({ () -> Int64? in
                defer { refusedSinceFull = nil }; return refusedSinceFull
            })
        else { return }
        logger.notice(
            "buffer \(path): the writer takes readings again; \(refused) were not stored and go into a gap record")
    }

    /// State saved with `append(alarms:state:)` under `key`, or nil.
    public func state(_ key: String) throws(BufferError) -> String? {
        try read("read state \(key)") { db in
            try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [Self.stateKeyPrefix + key])
        }
    }

    /// `state(_:)` on GRDB's reader queue, not the caller's thread.
    public func state(_ key: String) async throws(BufferError) -> String? {
        let fullKey = Self.stateKeyPrefix + key
        return try await read("read state \(key)") { db in
            try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [fullKey])
        }
    }

    /// How long the writer thread has been stuck (ms): in one commit or upkeep, or with appends queued and
    /// not taken. Zero when it is idle or keeping up. The daemon's watchdog stops pinging when this grows.
    public var writerStalledMillis: Int64 { writer.stalledMillis() }
    /// Readings queued behind the commit under way (at most `BufferOptions.maxQueuedReadings`).
    public var readingsWaitingForCommit: Int { writer.waitingReadings() }

    // MARK: - Closing

    /// Commits what is waiting, checkpoints the WAL away and closes the file. Later calls throw `closed`.
    public func close() {
        guard markClosed() else { return }
        writer.close()
        do {
            try pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        } catch {
            logger.warning("buffer \(path): final checkpoint failed: \(error)")
        }
        try? pool.close()
    }

    /// Ends the store as a crash would: queued appends fail with `closed` without being committed, no
    /// final checkpoint.
    @_spi(Testing) public func simulateCrash() {
        guard markClosed() else { return }
        writer.crash()
        try? pool.close()
    }

    private func markClosed() -> Bool {
        lock.withLock {
            if closed { return false }
            closed = true
            return true
        }
    }

    var isClosed: Bool { lock.withLock { closed } }

    func closedError(_ operation: String) -> BufferError {
        BufferError(.closed, path: path, operation: operation, detail: "the buffer is closed")
    }

    // MARK: - Access helpers (typed errors)

    func read<T>(_ operation: String, _ body: (Database) throws -> T) throws(BufferError) -> T {
        guard !isClosed else { throw closedError(operation) }
        do { return try pool.read(body) } catch { throw bufferError(error, path: path, operation: operation) }
    }

    /// `read` on GRDB's reader queue, for async callers: the cooperative pool's thread is not blocked.
    func read<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T)
        async throws(BufferError) -> T
    {
        guard !isClosed else { throw closedError(operation) }
        do { return try await pool.read(body) } catch { throw bufferError(error, path: path, operation: operation) }
    }

    /// A transaction on the writer connection with a copy of the writer state, published when it commits.
    func write<T>(_ operation: String, _ body: (Database, inout WriterState) throws -> T) throws(BufferError) -> T {
        guard !isClosed else { throw closedError(operation) }
        do {
            return try pool.writeWithoutTransaction { db in try self.transaction(db, body) }
        } catch {
            throw bufferError(error, path: path, operation: operation)
        }
    }

    func transaction<T>(_ db: Database, _ body: (Database, inout WriterState) throws -> T) throws -> T {
        var st = lock.withLock { state }
        let old = st.counters
        let ledgerAtStart = st.ledger
        var result: T?
        try db.inTransaction(.immediate) {
            result = try body(db, &st)
            try BufferSchema.saveCounters(db, st.counters, old: old)
            return .commit
        }
        lock.withLock {
            // Losses counted while this transaction ran (readings refused behind it, dropped before the
            // queue) are not in `st`: keep them for the next transaction's gap record.
            let meanwhile = state.ledger.added(since: ledgerAtStart)
            state = st
            state.ledger.merge(meanwhile)
        }
        afterCommit(db)
        writer.noteWrite()
        return result!
    }
}

extension BufferStore: GroupCommitPerformer {}

/// The parts of the buffer's figures that only the file can tell, as last read.
struct RememberedDiskFigures: Sendable {
    var oldestReadingMillis: Int64?
    var sizes: FileSizes?
    /// Monotonic ns of the read; nil before the first.
    var readAtNanos: UInt64?
}

/// The buffer's figures from memory (`BufferStore.rememberedStats()`): counts are current; the oldest
/// reading and file sizes are as last read, `diskFiguresAgeMillis` ago.
public struct RememberedBufferStats: Sendable {
    public var stats: BufferStats
    /// How long ago the oldest reading and the file sizes were read; nil if never.
    public var diskFiguresAgeMillis: Int64?
}
