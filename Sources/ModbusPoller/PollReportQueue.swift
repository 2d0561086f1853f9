import EdgeSystem

/// Poll reports on their way from the bus threads to ingest: bounded, oldest dropped first, and never
/// silently — every report that is dropped (the queue was full, or it came after `finish`) goes to
/// `onDrop`, so its readings can be counted in a gap record. One consumer.
///
/// Bus threads push without blocking (a slow consumer must not stall polling); ingest never waits on the
/// disk, so the queue fills only when the process is starved of CPU for thousands of reports.
public final class PollReportQueue: Sendable {
    private struct State {
        var items: [PollReport] = []
        var head = 0
        var waiter: CheckedContinuation<PollReport?, Never>?
        /// `stopWaiting()`: `next()` returns nil at once; reports are still taken (for `finish`).
        var consumerStopped = false
        /// `finish()`: nothing is taken any more.
        var finished = false
        var count: Int { items.count - head }

        mutating func popFirst() -> PollReport? {
            guard head < items.count else { return nil }
            let r = items[head]
            head += 1
            if head >= 1024 && head * 2 >= items.count {
                items.removeFirst(head)
                head = 0
            }
            return r
        }
    }

    private let state = Locked(State())
    public let capacity: Int
    private let onDrop: @Sendable (PollReport) -> Void

    public init(capacity: Int, onDrop: @escaping @Sendable (PollReport) -> Void) {
        self.capacity = max(1, capacity)
        self.onDrop = onDrop
    }

    /// Queues a report (from a bus thread; never blocks). A full queue drops its oldest report to `onDrop`.
    public func push(_ report: PollReport) {
        enum Outcome { case handed(CheckedContinuation<PollReport?, Never>), queued, dropped(PollReport) }
        let outcome = state.withLock { s -> Outcome in
            if s.finished { return .dropped(report) }
            if let w = s.waiter {
                s.waiter = nil
                return .handed(w)
            }
            var dropped: PollReport?
            if s.count >= capacity { dropped = s.popFirst() }
            s.items.append(report)
            return dropped.map { .dropped($0) } ?? .queued
        }
        switch outcome {
        case .handed(let w): w.resume(returning: report)
        case .queued: break
        case .dropped(let r): onDrop(r)
        }
    }

    /// The next report, waiting for one; nil once `stopWaiting()` or `finish()` was called.
    public func next() async -> PollReport? {
        await withCheckedContinuation { (c: CheckedContinuation<PollReport?, Never>) in
            let ready = state.withLock { s -> PollReport?? in
                if s.consumerStopped || s.finished { return .some(nil) }
                if let r = s.popFirst() { return .some(r) }
                s.waiter = c
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }

    /// Ends a waiting `next()` (and every later one) with nil; reports are still taken and kept for
    /// `finish()` — the bus threads may not have stopped yet.
    public func stopWaiting() {
        let w = state.withLock { s -> CheckedContinuation<PollReport?, Never>? in
            s.consumerStopped = true
            defer { s.waiter = nil }
            return s.waiter
        }
        w?.resume(returning: nil)
    }

    /// Takes nothing more (later pushes go to `onDrop`) and returns what is still queued, oldest first.
    public func finish() -> [PollReport] {
        let (rest, w) = state.withLock { s -> ([PollReport], CheckedContinuation<PollReport?, Never>?) in
            s.finished = true
            let rest = Array(s.items[s.head...])
            s.items = []
            s.head = 0
            defer { s.waiter = nil }
            return (rest, s.waiter)
        }
        w?.resume(returning: nil)
        return rest
    }

    /// Reports waiting.
    public var count: Int { state.withLock { $0.count } }
}
