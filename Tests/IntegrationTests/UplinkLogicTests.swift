import EdgeCore
import Testing

/// The rules added to the uplink's pure logic with the integration tests (docs/sync-protocol.md §7). Pure
/// tests; they belong beside `UplinkMachineTests` in EdgeCoreTests and sit here only because this change
/// could not touch that target.
@Suite struct UplinkLogicTests {
    let low: (ClosedRange<Int64>) -> Int64 = { $0.lowerBound }

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

    @Test func aWrongEndpointKeepsTheBacklogAndRetriesSlowly() {
        #expect(UplinkOutcome.classify(status: 404, retryAfter: nil, body: "", nowWallMillis: 0) == .wrongEndpoint(404))
        #expect(UplinkOutcome.classify(status: 405, retryAfter: nil, body: "", nowWallMillis: 0) == .wrongEndpoint(405))
        var m = UplinkMachine(maxBatchRecords: 100)
        let actions = m.handle(.wrongEndpoint(404), records: 100, random: low)
        #expect(!actions.contains { if case .deadLetter = $0 { true } else { false } }, "the batch is not at fault")
        #expect(actions.last == .wait(millis: 300_000))
        #expect(m.activeAlarms == [.wrongEndpoint])
        #expect(m.handle(.stored, records: 100, random: low) == [.acknowledge, .clearAlarm(.wrongEndpoint)])
    }

    @Test func anUntrustedServerRaisesTheTLSAlarmOnceAndBacksOff() {
        var m = UplinkMachine(maxBatchRecords: 100)
        let first = m.handle(.untrusted(reason: "pin mismatch"), records: 10, random: { $0.upperBound })
        #expect(first == [.raiseAlarm(.untrustedServer, message: "pin mismatch; buffering continues"), .wait(millis: 1000)])
        #expect(m.handle(.untrusted(reason: "pin mismatch"), records: 10, random: { $0.upperBound }) == [.wait(millis: 2000)])
        #expect(m.lastError == "pin mismatch")
        #expect(m.handle(.stored, records: 10, random: low) == [.acknowledge, .clearAlarm(.untrustedServer)])
    }
}
