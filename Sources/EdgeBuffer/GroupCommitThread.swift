import EdgeCore
import EdgeSystem
import Foundation

/// Something waiting to be committed, with what to call once it is (on the writer thread: it must return
/// at once — resume a continuation, yield to a stream).
enum PendingItem: Sendable {
    typealias ReadingsDone = @Sendable (Result<ClosedRange<Int64>?, BufferError>) -> Void
    typealias AlarmsDone = @Sendable (Result<[Int64], BufferError>) -> Void
    case readings([PendingReading], ReadingsDone)
    /// Alarm events (committed at once) and, in the same transaction, state that must agree with them.
    case alarms([AlarmEventRecord], state: StateEntry?, AlarmsDone)
    typealias EFMDone = @Sendable (Result<EFMStoreResult, BufferError>) -> Void
    /// EFM records with their collector's cursor (committed at once: the collector waits for it).
    case efm(EFMWrite, EFMOutcome, EFMDone)

    var recordCount: Int {
        switch self {
        case .readings(let rows, _): rows.count
        case .alarms(let list, _, _): list.count
        case .efm(let write, _, _): write.rows.count
        }
    }
    var isUrgent: Bool {
        switch self {
        case .readings: false
        case .alarms, .efm: true
        }
    }
    /// Payload bytes it adds to a transaction, roughly.
    var estimatedBytes: Int {
        switch self {
        case .readings(let rows, _): rows.reduce(0) { $0 + 40 + ($1.text?.utf8.count ?? 0) }
        case .alarms(let list, let state, _):
            list.reduce(0) { $0 + 256 + $1.reason.utf8.count } + (state?.value.utf8.count ?? 0)
        case .efm(let write, _, _): write.rows.reduce(0) { $0 + 128 + $1.raw.count * 2 + $1.decoded.utf8.count }
        }
    }
    /// What it adds to the database, for eviction planning.
    var incoming: Incoming {
        switch self {
        case .readings(let rows, _):
            Incoming(readings: rows.count, extraBytes: rows.reduce(0) { $0 + Int64($1.text?.utf8.count ?? 0) })
        case .alarms, .efm: Incoming(readings: 0, extraBytes: Int64(estimatedBytes))
        }
    }
    /// The records and their time span, for counting them as not stored.
    var loss: Loss {
        switch self {
        case .readings(let rows, _): Loss(rows)
        case .alarms(let list, _, _):
            Loss(
                count: Int64(list.count), fromMillis: list.map(\.wallMillis).min() ?? 0,
                toMillis: list.map(\.wallMillis).max() ?? 0)
        // EFM records that fail to commit are not lost: the collector reads them again from the device.
        case .efm: Loss(count: 0, fromMillis: 0, toMillis: 0)
        }
    }
    func fail(_ error: BufferError) {
        switch self {
        case .readings(_, let done): done(.failure(error))
        case .alarms(_, _, let done): done(.failure(error))
        case .efm(_, _, let done): done(.failure(error))
        }
    }
}

/// A named piece of state kept in the buffer file's `meta` table (e.g. the alarm engine's snapshot), written
/// in the same transaction as the records it belongs with.
public struct StateEntry: Sendable, Equatable {
    public var key: String
    public var value: String
    public init(key: String, value: String) { self.key = key; self.value = value }
}

/// Records about to be inserted: readings (sized by the file's average) and other bytes.
struct Incoming: Sendable {
    var readings = 0
    var extraBytes: Int64 = 0
    static func + (a: Incoming, b: Incoming) -> Incoming {
        Incoming(readings: a.readings + b.readings, extraBytes: a.extraBytes + b.extraBytes)
    }
}

/// Records that were not stored: how many and their time span.
struct Loss: Sendable {
    var count: Int64
    var fromMillis: Int64
    var toMillis: Int64
    init(count: Int64, fromMillis: Int64, toMillis: Int64) {
        self.count = count; self.fromMillis = fromMillis; self.toMillis = toMillis
    }
    init(_ rows: [PendingReading]) {
        self.init(
            count: Int64(rows.count), fromMillis: rows.map(\.wall).min() ?? 0, toMillis: rows.map(\.wall).max() ?? 0)
    }
}

/// What the writer thread drives: commits and idle-time upkeep, both blocking SQLite work.
protocol GroupCommitPerformer: AnyObject, Sendable {
    /// Commits `items` in one transaction and resumes their continuations.
    func commit(_ items: [PendingItem])
    /// Checkpoint, vacuum, retention: called once after the writer has been idle for a while, and then
    /// at least every `upkeepPeriod`.
    func upkeep()
}

/// The buffer's single writer: a dedicated thread (never the cooperative pool) that gathers appends into
/// group commits as `GroupCommitGate` decides.
// Guard: `cond` protects every stored `var` (`start()` sets `running` before the thread exists) except
// `performer`, which the thread reads unlocked: set by `start()` before the thread starts, cleared by `stop()`
// only after `finished`. The rest is immutable after init.
final class GroupCommitThread: @unchecked Sendable {
    private let cond = MonotonicCondition()
    private var items: [PendingItem] = []
    private var gate: GroupCommitGate
    private var closing = false
    private var crashing = false
    private var running = false
    private var writtenElsewhere = false
    private let finished = DispatchSemaphore(value: 0)
    private let maxTransactionBytes: Int
    private let idleDelayNanos: UInt64
    private let upkeepPeriodNanos: UInt64
    private var performer: (any GroupCommitPerformer)?
    /// Monotonic ns since the writer has been inside a commit or upkeep, or since the oldest queued item
    /// has been waiting (nil when idle with nothing queued): the watchdog's measure of a stuck writer.
    private var busySince: UInt64?
    private var waitingSince: UInt64?

    /// Readings queued behind the commit under way, and how many may be (alarm events are always taken).
    private var queuedReadings = 0
    private let maxQueuedReadings: Int

    init(
        policy: GroupCommitPolicy, maxTransactionBytes: Int, idleDelay: TimeSpan, upkeepPeriod: TimeSpan = .seconds(60),
        maxQueuedReadings: Int = .max
    ) {
        gate = GroupCommitGate(policy: policy)
        self.maxTransactionBytes = max(4096, maxTransactionBytes)
        idleDelayNanos = UInt64(max(0, idleDelay.milliseconds)) * 1_000_000
        upkeepPeriodNanos = UInt64(max(1, upkeepPeriod.milliseconds)) * 1_000_000
        self.maxQueuedReadings = maxQueuedReadings
    }

    func start(_ performer: any GroupCommitPerformer) {
        self.performer = performer
        running = true
        let thread = Thread { [self] in run() }
        thread.name = "edged-buffer-writer"
        thread.start()
    }

    enum Submitted: Equatable {
        case queued
        /// The writer is closing or closed.
        case closed
        /// Readings refused: `maxQueuedReadings` already wait (the commit under way has hung).
        case full(queued: Int)
    }

    /// Queues an item, unless the writer is closing, or it holds readings and the queue is full (one append
    /// larger than the bound is still taken when nothing waits).
    func submit(_ item: PendingItem) -> Submitted {
        cond.lock(); defer { cond.unlock() }
        guard running, !closing, !crashing else { return .closed }
        if !item.isUrgent {
            guard queuedReadings + item.recordCount <= maxQueuedReadings || queuedReadings == 0 else {
                return .full(queued: queuedReadings)
            }
            queuedReadings += item.recordCount
        }
        if items.isEmpty { waitingSince = Self.now() }
        items.append(item)
        gate.arrived(records: item.recordCount, urgent: item.isUrgent, nowNanos: Self.now())
        cond.signal()
        return .queued
    }

    /// Readings queued behind the commit under way.
    func waitingReadings() -> Int {
        cond.lock(); defer { cond.unlock() }
        return queuedReadings
    }

    /// How long the writer has been stuck, in ms: inside one commit or upkeep, or not yet taking the oldest
    /// queued item (a group-commit delay is a few ms). Zero when idle.
    func stalledMillis() -> Int64 {
        cond.lock(); defer { cond.unlock() }
        guard let since = [busySince, waitingSince].compactMap({ $0 }).min() else { return 0 }
        return Int64((Self.now() &- since) / 1_000_000)
    }

    /// Another write (acknowledge, dead-letter) changed the file: schedule idle upkeep after it.
    func noteWrite() {
        cond.lock(); defer { cond.unlock() }
        writtenElsewhere = true
        cond.signal()
    }

    /// Commits what is queued, then stops the thread and waits for it.
    func close() { stop { closing = true } }

    /// Stops at once: queued items fail with `closed` as if the process had died before committing them
    /// (a commit already under way finishes).
    func crash() { stop { crashing = true } }

    private func stop(_ mark: () -> Void) {
        cond.lock()
        guard running else { cond.unlock(); return }
        mark()
        cond.signal()
        cond.unlock()
        finished.wait()
        cond.lock(); running = false; performer = nil; cond.unlock()
    }

    private func run() {
        cond.lock()
        var lastUpkeep = Self.now()
        var lastActivity = lastUpkeep
        var idleUpkeepDone = true
        loop: while !crashing {
            let now = Self.now()
            if writtenElsewhere {
                writtenElsewhere = false
                lastActivity = now; idleUpkeepDone = false
            }
            // Upkeep at least every period, even when the writer never goes idle.
            if now - lastUpkeep >= upkeepPeriodNanos && !closing {
                upkeep(now)
                lastUpkeep = Self.now(); idleUpkeepDone = true
                continue
            }
            switch gate.decide(nowNanos: now, closing: closing) {
            case .idle:
                if closing { break loop }
                let due = idleUpkeepDone ? lastUpkeep + upkeepPeriodNanos : lastActivity + idleDelayNanos
                if now >= due {
                    upkeep(now)
                    lastUpkeep = Self.now(); idleUpkeepDone = true
                } else {
                    cond.wait(untilMonotonicNanos: due)
                }
            case .waitUntil(let t):
                cond.wait(untilMonotonicNanos: t)
            case .commitNow:
                let group = takeGroup()
                busySince = now
                cond.unlock()
                performer?.commit(group)
                cond.lock()
                busySince = nil
                lastActivity = Self.now(); idleUpkeepDone = false
            }
        }
        let left = items
        items = []
        queuedReadings = 0
        cond.unlock()
        let error = BufferError(
            .closed, path: "", operation: "append", detail: "the buffer was closed before the commit")
        for item in left { item.fail(error) }
        finished.signal()
    }

    /// Runs the performer's upkeep outside the lock (called and returning with it held), marked busy for
    /// the stall measure.
    private func upkeep(_ now: UInt64) {
        busySince = now
        cond.unlock()
        performer?.upkeep()
        cond.lock()
        busySince = nil
    }

    /// Whole appends from the front, up to the policy's record count and the transaction byte bound
    /// (always at least one).
    private func takeGroup() -> [PendingItem] {
        var taken: [PendingItem] = []
        var records = 0, bytes = 0
        var n = 0
        while n < items.count {
            let item = items[n]
            if !taken.isEmpty
                && (records + item.recordCount > gate.policy.maxRecords
                    || bytes + item.estimatedBytes > maxTransactionBytes)
            {
                break
            }
            taken.append(item)
            records += item.recordCount; bytes += item.estimatedBytes
            n += 1
        }
        items.removeFirst(n)
        queuedReadings -= taken.reduce(0) { $0 + ($1.isUrgent ? 0 : $1.recordCount) }
        waitingSince = items.isEmpty ? nil : Self.now()
        gate.took(records: records, remainingUrgent: items.contains { $0.isUrgent }, nowNanos: Self.now())
        return taken
    }

    static func now() -> UInt64 { MonotonicCondition.now() }
}
