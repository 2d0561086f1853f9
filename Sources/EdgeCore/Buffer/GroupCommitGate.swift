/// When a group of readings is committed: at `maxRecords` records, or `maxDelay` after the first one
/// arrived, whichever comes first.
public struct GroupCommitPolicy: Sendable, Equatable {
    public var maxRecords: Int
    public var maxDelay: TimeSpan
    public init(maxRecords: Int = 1000, maxDelay: TimeSpan = TimeSpan(milliseconds: 50)) {
        self.maxRecords = max(1, maxRecords); self.maxDelay = maxDelay
    }
    public static let `default` = GroupCommitPolicy()
}

/// The writer's decision machine for group commit. The writer thread reports arrivals and asks what
/// to do; alarm events are urgent and commit at once (with whatever readings are waiting).
public struct GroupCommitGate: Sendable {
    /// What the writer should do now.
    public enum Decision: Sendable, Equatable {
        /// Nothing is waiting.
        case idle
        /// Commit what is waiting.
        case commitNow
        /// Sleep until this monotonic time (or the next arrival), then ask again.
        case waitUntil(nanos: UInt64)
    }

    public let policy: GroupCommitPolicy
    public private(set) var pendingRecords = 0
    public private(set) var firstPendingNanos: UInt64?
    public private(set) var urgent = false

    public init(policy: GroupCommitPolicy) { self.policy = policy }

    /// Records arrived.
    public mutating func arrived(records: Int, urgent isUrgent: Bool, nowNanos: UInt64) {
        if firstPendingNanos == nil { firstPendingNanos = nowNanos }
        pendingRecords += records
        urgent = urgent || isUrgent
    }

    /// What to do at `nowNanos`; `closing` commits what waits without lingering.
    public func decide(nowNanos: UInt64, closing: Bool = false) -> Decision {
        guard let first = firstPendingNanos else { return .idle }
        if urgent || closing || pendingRecords >= policy.maxRecords { return .commitNow }
        let deadline = first + UInt64(max(0, policy.maxDelay.milliseconds)) * 1_000_000
        return nowNanos >= deadline ? .commitNow : .waitUntil(nanos: deadline)
    }

    /// The writer took `records` records (all of them, or the first groups) for a commit.
    public mutating func took(records: Int, remainingUrgent: Bool, nowNanos: UInt64) {
        pendingRecords = max(0, pendingRecords - records)
        if pendingRecords == 0 && !remainingUrgent {
            firstPendingNanos = nil; urgent = false
        } else {
            // What is left has waited already; it goes out in the next commit.
            urgent = true
        }
    }
}
