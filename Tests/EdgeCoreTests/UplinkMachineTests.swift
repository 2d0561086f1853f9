@testable import EdgeCore
import Testing

@Suite struct UplinkMachineTests {
    /// Picks the top of every range, so waits are the jitter ceilings.
    let top: (ClosedRange<Int64>) -> Int64 = { $0.upperBound }

    @Test func backoffGrowsToItsCapWithFullJitter() {
        var b = Backoff(base: .seconds(1), cap: .seconds(30))
        let ceilings = (0..<8).map { _ in b.next(random: top) }
        #expect(ceilings == [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000])
        var low = Backoff(base: .seconds(1), cap: .seconds(30))
        #expect(low.next(random: { $0.lowerBound }) == 0)          // full jitter reaches zero
        b.reset()
        #expect(b.ceilingMillis == 1000)
    }

    @Test func retryAfterInSecondsAndAsHTTPDate() {
        #expect(RetryAfter.millis("120", nowWallMillis: 0) == 120_000)
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777 s since 1970.
        #expect(RetryAfter.millis("Sun, 06 Nov 1994 08:49:37 GMT", nowWallMillis: 784_111_700_000) == 77_000)
        #expect(RetryAfter.millis("Sun, 06 Nov 1994 08:49:37 GMT", nowWallMillis: 784_111_800_000) == 0)
        #expect(RetryAfter.millis("soon", nowWallMillis: 0) == nil)
    }

    @Test func classifiesEveryStatusTheProtocolNames() {
        #expect(UplinkOutcome.classify(status: 200, retryAfter: nil, body: "", nowWallMillis: 0) == .stored)
        #expect(UplinkOutcome.classify(status: 204, retryAfter: nil, body: "", nowWallMillis: 0) == .stored)
        #expect(UplinkOutcome.classify(status: 401, retryAfter: nil, body: "", nowWallMillis: 0) == .unauthorized(401))
        #expect(UplinkOutcome.classify(status: 403, retryAfter: nil, body: "", nowWallMillis: 0) == .unauthorized(403))
        #expect(UplinkOutcome.classify(status: 413, retryAfter: nil, body: "", nowWallMillis: 0) == .tooLarge)
        #expect(UplinkOutcome.classify(status: 429, retryAfter: "7", body: "", nowWallMillis: 0) == .retry(status: 429, retryAfterMillis: 7000, reason: "HTTP 429"))
        #expect(UplinkOutcome.classify(status: 503, retryAfter: nil, body: "", nowWallMillis: 0) == .retry(status: 503, retryAfterMillis: nil, reason: "HTTP 503"))
        #expect(UplinkOutcome.classify(status: 408, retryAfter: nil, body: "", nowWallMillis: 0) == .retry(status: 408, retryAfterMillis: nil, reason: "HTTP 408"))
        #expect(UplinkOutcome.classify(status: 400, retryAfter: nil, body: "{\"error\":\"bad\"}", nowWallMillis: 0)
                == .rejected(status: 400, reason: "HTTP 400: {\"error\":\"bad\"}"))
    }

    @Test func storedAcknowledgesAndClearsTheAuthAlarm() {
        var m = UplinkMachine(maxBatchRecords: 1000)
        #expect(m.handle(.unauthorized(401), records: 10, random: top) == [
            .raiseAlarm(.unauthorized, message: "sync endpoint answered 401: token refused; buffering continues"), .wait(millis: 600_000)])
        // A second refusal does not raise the alarm again.
        #expect(m.handle(.unauthorized(401), records: 10, random: top) == [.wait(millis: 600_000)])
        #expect(m.handle(.stored, records: 10, random: top) == [.acknowledge, .clearAlarm(.unauthorized)])
        #expect(m.activeAlarms.isEmpty && m.lastError == nil)
    }

    @Test func retriesHonourRetryAfterAndBackOff() {
        var m = UplinkMachine(maxBatchRecords: 1000, backoff: Backoff(base: .seconds(1), cap: .seconds(60)))
        #expect(m.handle(.retry(status: 503, retryAfterMillis: nil, reason: "HTTP 503"), records: 5, random: top) == [.wait(millis: 1000)])
        #expect(m.handle(.retry(status: nil, retryAfterMillis: nil, reason: "dropped"), records: 5, random: top) == [.wait(millis: 2000)])
        // The server's Retry-After wins when it is longer than the jittered backoff.
        #expect(m.handle(.retry(status: 429, retryAfterMillis: 30_000, reason: "HTTP 429"), records: 5, random: top) == [.wait(millis: 30_000)])
        #expect(m.consecutiveFailures == 3)
        _ = m.handle(.stored, records: 5, random: top)
        #expect(m.backoff.attempt == 0 && m.consecutiveFailures == 0)
    }

    @Test func tooLargeHalvesTheBatchThenGrowsBack() {
        var m = UplinkMachine(maxBatchRecords: 1000)
        #expect(m.handle(.tooLarge, records: 1000, random: top) == [.resendSmaller])
        #expect(m.batchRecords == 500)
        #expect(m.handle(.tooLarge, records: 500, random: top) == [.resendSmaller])
        #expect(m.batchRecords == 250)
        _ = m.handle(.stored, records: 250, random: top)
        #expect(m.batchRecords == 500)
        // A single record that is still too large cannot be split: it is set aside, not retried forever.
        let single = m.handle(.tooLarge, records: 1, random: top)
        #expect(single.first == .deadLetter(reason: "HTTP 413 for a single record"))
    }

    @Test func malformedBatchesGoToTheDeadLetterLane() {
        var m = UplinkMachine(maxBatchRecords: 100)
        let a = m.handle(.rejected(status: 400, reason: "HTTP 400: schema"), records: 100, random: top)
        #expect(a.first == .deadLetter(reason: "HTTP 400: schema"))
        #expect(m.activeAlarms == [.rejectedBatch])
        // The next rejection is dead-lettered too, without a second alarm.
        #expect(m.handle(.rejected(status: 422, reason: "HTTP 422"), records: 3, random: top) == [.deadLetter(reason: "HTTP 422")])
        #expect(m.acknowledgeRejected() == [.clearAlarm(.rejectedBatch)])
    }
}
