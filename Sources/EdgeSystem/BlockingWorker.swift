import Foundation

/// A dedicated thread that runs submitted jobs one at a time, in order: blocking C calls and waits (curl,
/// stopping a bus thread, opening or closing the buffer) live here, never on Swift's cooperative pool or on
/// an actor.
// Guard: `condition` protects `jobs` and `stopping`; the jobs run one at a time on the worker's own thread.
public final class BlockingWorker: @unchecked Sendable {
    // Guard: `condition` protects `jobs` and `stopping`.
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var stopping = false

    public init(name: String) {
        let t = Thread { [self] in loop() }
        t.name = name
        t.start()
    }

    /// Queues `job`; returns at once.
    public func run(_ job: @escaping () -> Void) {
        condition.withLock {
            jobs.append(job)
            condition.signal()
        }
    }

    /// Runs `job` on the worker and waits for its result without blocking the caller's thread.
    public func perform<T: Sendable>(_ job: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            run { c.resume(returning: job()) }
        }
    }

    /// Runs `last` after the queued jobs, then ends the thread.
    public func stopAfter(_ last: @escaping () -> Void) {
        condition.withLock {
            jobs.append(last)
            stopping = true
            condition.signal()
        }
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty && stopping { condition.unlock(); return }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
