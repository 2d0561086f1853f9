import EdgeCore
import Foundation
import ModbusPoller
import Synchronization
import Testing

/// The queue between the bus threads and ingest: bounded, oldest dropped first, and every dropped report
/// handed over to be counted — never lost silently.
@Suite struct PollReportQueueTests {
    func report(_ n: Int) -> PollReport {
        PollReport(
            bus: "b", device: "d\(n)",
            readings: [
                Reading(
                    device: "d\(n)", tag: "t", value: .number(Double(n)), quality: .good, wallMillis: Int64(n),
                    monotonicNanos: 0)
            ],
            transition: nil, online: true, errors: [])
    }

    final class Dropped: Sendable {
        let devices = Mutex<[String]>([])
    }

    @Test func aFullQueueHandsItsOldestReportsToTheCounterAndKeepsOrder() async {
        let dropped = Dropped()
        let queue = PollReportQueue(capacity: 3) { r in dropped.devices.withLock { $0.append(r.device) } }
        for i in 0..<5 { queue.push(report(i)) }
        #expect(dropped.devices.withLock { $0 } == ["d0", "d1"])
        var got: [String] = []
        for _ in 0..<3 { got.append(await queue.next()?.device ?? "nil") }
        #expect(got == ["d2", "d3", "d4"])
    }

    @Test func aWaitingConsumerGetsTheNextReportAndStopsWhenToldTo() async {
        let queue = PollReportQueue(capacity: 10) { _ in }
        let consumer = Task { await queue.next()?.device }
        // Whether the consumer waits already or comes later, it gets the report.
        queue.push(report(7))
        #expect(await consumer.value == "d7")
        let stopped = Task { await queue.next() }
        queue.stopWaiting()
        #expect(await stopped.value == nil)
    }

    @Test func finishReturnsWhatIsQueuedAndLaterReportsAreCountedAsDropped() async {
        let dropped = Dropped()
        let queue = PollReportQueue(capacity: 10) { r in dropped.devices.withLock { $0.append(r.device) } }
        queue.push(report(1))
        queue.stopWaiting()
        queue.push(report(2))  // bus threads may still report after the consumer stopped: kept
        #expect(queue.finish().map(\.device) == ["d1", "d2"])
        queue.push(report(3))
        #expect(dropped.devices.withLock { $0 } == ["d3"])
        #expect(await queue.next() == nil)
    }
}
