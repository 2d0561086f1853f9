import Foundation

/// A dedicated thread that runs submitted jobs one at a time, in order: blocking C calls live here, never
/// on Swift's cooperative pool.
final class SerialThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var stopping = false

    init(name: String) {
        let t = Thread { [self] in loop() }
        t.name = name
        t.start()
    }

    func run(_ job: @escaping () -> Void) {
        condition.withLock {
            jobs.append(job)
            condition.signal()
        }
    }

    /// Runs `last` after the queued jobs, then ends the thread.
    func stopAfter(_ last: @escaping () -> Void) {
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
