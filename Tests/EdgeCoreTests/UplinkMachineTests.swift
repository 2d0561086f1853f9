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
        #expect(low.next(random: { $0.lowerBound }) == 0)  // full jitter reaches zero
        b.reset()
        #expect(b.ceilingMillis == 1000)
    }

    @Test func retryAfterInSecondsAndAsHTTPDate() {
        #expect(RetryAfter.millis("120", nowWallMillis: 0) == 120_000)
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777 s since 1970.
        #expect(RetryAfter.millis("Sun, 06 Nov 1994 08:49:37 GMT", nowWallMillis: 784_111_700_000) == 77_000)
        #expect(RetryAfter.millis("Sun, 06 Nov 1994 08:49:37 GMT", nowWallMillis: 784_111_800_000) == 0)
        #expect(RetryAfter.millis("soon", nowWallMillis: 0) == nil)
        // Fields out of range are an unparsable header (ignored), never an overflow (a make fuzz finding: this
        // asctime date trapped the gateway).
        #expect(RetryAfter.millis("Sun Nov  6 08:49:37 199444444444019744", nowWallMillis: 0) == nil)
        #expect(RetryAfter.millis("Sun, 06 Nov 1994 999999999999999:49:37 GMT", nowWallMillis: 0) == nil)
        #expect(RetryAfter.millis("Sunday, 06-Nov-94 08:61:37 GMT", nowWallMillis: 0) == nil)
        #expect(RetryAfter.millis("Sun Nov  6 08:49:37 1994", nowWallMillis: 784_111_700_000) == 77_000)
    }

    @Test func classifiesEveryStatusTheProtocolNames() {
        #expect(UplinkOutcome.classify(status: 200, retryAfter: nil, body: "", nowWallMillis: 0) == .stored)
        #expect(UplinkOutcome.classify(status: 204, retryAfter: nil, body: "", nowWallMillis: 0) == .stored)
        #expect(UplinkOutcome.classify(status: 401, retryAfter: nil, body: "", nowWallMillis: 0) == .unauthorized(401))
        #expect(UplinkOutcome.classify(status: 403, retryAfter: nil, body: "", nowWallMillis: 0) == .unauthorized(403))
        #expect(UplinkOutcome.classify(status: 413, retryAfter: nil, body: "", nowWallMillis: 0) == .tooLarge)
        #expect(
            UplinkOutcome.classify(status: 429, retryAfter: "7", body: "", nowWallMillis: 0)
                == .retry(status: 429, retryAfterMillis: 7000, reason: "HTTP 429"))
        #expect(
            UplinkOutcome.classify(status: 503, retryAfter: nil, body: "", nowWallMillis: 0)
                == .retry(status: 503, retryAfterMillis: nil, reason: "HTTP 503"))
        #expect(
            UplinkOutcome.classify(status: 408, retryAfter: nil, body: "", nowWallMillis: 0)
                == .retry(status: 408, retryAfterMillis: nil, reason: "HTTP 408"))
        #expect(
            UplinkOutcome.classify(status: 400, retryAfter: nil, body: "{\"error\":\"bad\"}", nowWallMillis: 0)
                == .rejected(status: 400, reason: "HTTP 400: {\"error\":\"bad\"}"))
    }

    @Test func storedAcknowledgesAndClearsTheAuthAlarm() {
        var m = UplinkMachine(maxBatchRecords: 1000)
        #expect(
            m.handle(.unauthorized(401), records: 10) == [
                .raiseAlarm(.unauthorized, message: "sync endpoint answered 401: token refused; buffering continues")
            ])
        // A second refusal does not raise the alarm again.
        #expect(m.handle(.unauthorized(401), records: 10) == [])
        #expect(m.handle(.stored, records: 10) == [.acknowledge, .clearAlarm(.unauthorized)])
        #expect(m.activeAlarms.isEmpty && m.lastError == nil)
    }

    @Test func retriesKeepTheBatchAndCountFailures() {
        var m = UplinkMachine(maxBatchRecords: 1000)
        #expect(m.handle(.retry(status: 503, retryAfterMillis: nil, reason: "HTTP 503"), records: 5) == [])
        #expect(m.handle(.retry(status: 429, retryAfterMillis: 30_000, reason: "HTTP 429"), records: 5) == [])
        #expect(m.consecutiveFailures == 2 && m.lastError == "HTTP 429")
        #expect(m.handle(.stored, records: 5) == [.acknowledge])
        #expect(m.consecutiveFailures == 0)
    }

    @Test func tooLargeHalvesTheBatchThenGrowsBack() {
        var m = UplinkMachine(maxBatchRecords: 1000)
        #expect(m.handle(.tooLarge, records: 1000) == [.resendSmaller])
        #expect(m.batchRecords == 500)
        #expect(m.handle(.tooLarge, records: 500) == [.resendSmaller])
        #expect(m.batchRecords == 250)
        _ = m.handle(.stored, records: 250)
        #expect(m.batchRecords == 500)
        // A single record that is still too large cannot be split: it is set aside, not retried forever.
        let single = m.handle(.tooLarge, records: 1)
        #expect(single.first == .deadLetter(reason: "HTTP 413 for a single record"))
    }

    @Test func malformedBatchesGoToTheDeadLetterLane() {
        var m = UplinkMachine(maxBatchRecords: 100)
        let a = m.handle(.rejected(status: 400, reason: "HTTP 400: schema"), records: 100)
        #expect(a.first == .deadLetter(reason: "HTTP 400: schema"))
        #expect(m.activeAlarms == [.rejectedBatch])
        // The next rejection is dead-lettered too, without a second alarm.
        #expect(m.handle(.rejected(status: 422, reason: "HTTP 422"), records: 3) == [.deadLetter(reason: "HTTP 422")])
        #expect(m.acknowledgeRejected() == [.clearAlarm(.rejectedBatch)])
    }

    @Test func retryAfterAcceptsTheObsoleteDateFormsAndCountsAnHourAtMost() {
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777 s since 1970, in the three forms RFC 9110 names.
        let now: Int64 = 784_111_700_000
        #expect(RetryAfter.millis("Sun, 06 Nov 1994 08:49:37 GMT", nowWallMillis: now) == 77_000)
        #expect(RetryAfter.millis("Sunday, 06-Nov-94 08:49:37 GMT", nowWallMillis: now) == 77_000)
        #expect(RetryAfter.millis("Sun Nov  6 08:49:37 1994", nowWallMillis: now) == 77_000)
        #expect(RetryAfter.millis("7200", nowWallMillis: 0) == 3_600_000)
        #expect(RetryAfter.millis("99999999999999999999999", nowWallMillis: 0) == 3_600_000)
        #expect(RetryAfter.millis("Sun, 06 Nov 1994 08:49:37 GMT", nowWallMillis: 0) == 3_600_000)
        #expect(RetryAfter.millis("-5", nowWallMillis: 0) == nil)
        #expect(RetryAfter.millis("Sun, 32 Nov 1994 08:49:37 GMT", nowWallMillis: 0) == nil)
    }

    @Test func aWrongEndpointKeepsTheBacklogAndRaisesItsAlarm() {
        #expect(UplinkOutcome.classify(status: 404, retryAfter: nil, body: "", nowWallMillis: 0) == .wrongEndpoint(404))
        #expect(UplinkOutcome.classify(status: 405, retryAfter: nil, body: "", nowWallMillis: 0) == .wrongEndpoint(405))
        var m = UplinkMachine(maxBatchRecords: 100)
        let actions = m.handle(.wrongEndpoint(404), records: 100)
        #expect(!actions.contains { if case .deadLetter = $0 { true } else { false } }, "the batch is not at fault")
        #expect(m.activeAlarms == [.wrongEndpoint])
        #expect(m.handle(.stored, records: 100) == [.acknowledge, .clearAlarm(.wrongEndpoint)])
    }

    @Test func anUntrustedServerRaisesTheTLSAlarmOnce() {
        var m = UplinkMachine(maxBatchRecords: 100)
        #expect(
            m.handle(.untrusted(reason: "pin mismatch"), records: 10) == [
                .raiseAlarm(.untrustedServer, message: "pin mismatch; buffering continues")
            ])
        #expect(m.handle(.untrusted(reason: "pin mismatch"), records: 10) == [])
        #expect(m.lastError == "pin mismatch")
        #expect(m.handle(.stored, records: 10) == [.acknowledge, .clearAlarm(.untrustedServer)])
    }
}
