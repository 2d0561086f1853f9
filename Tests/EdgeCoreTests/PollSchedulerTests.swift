import EdgeCore
import Testing

@Suite struct PollSchedulerTests {
    func scheduler(_ specs: [(String, Int64)], offlineAfter: Int = 3, maxBackoff: Int64 = 8_000) -> PollScheduler {
        PollScheduler(
            devices: specs.map {
                (
                    name: $0.0, interval: TimeSpan(milliseconds: $0.1), offlineAfter: offlineAfter,
                    maxBackoff: TimeSpan(milliseconds: maxBackoff)
                )
            }, now: 0)
    }

    @Test func servesTheNearestDeadlineFirst() {
        var s = scheduler([("slow", 1000), ("fast", 200)])
        var now: Int64 = 0
        var order: [String] = []
        // Each poll takes 50 ms of bus time.
        while now < 2000 {
            switch s.next(now: now) {
            case .poll(let i):
                order.append(s.devices[i].name)
                now += 50
                _ = s.completed(i, answered: true, now: now)
            case .sleep(let until): now = until
            default: Issue.record("unexpected action"); return
            }
        }
        #expect(order.filter { $0 == "fast" }.count == 10)
        #expect(order.filter { $0 == "slow" }.count == 2)
        #expect(order.prefix(2) == ["slow", "fast"])
    }

    @Test func aDeadDeviceGoesOfflineAndCostsLittle() {
        var s = scheduler([("dead", 1000), ("live", 1000)], offlineAfter: 3, maxBackoff: 8000)
        var now: Int64 = 0
        var deadAttempts = 0, livePolls = 0
        var wentOffline: Int64?
        while now < 60_000 {
            switch s.next(now: now) {
            case .poll(let i), .probe(let i):
                if s.devices[i].name == "dead" {
                    deadAttempts += 1
                    now += 500  // a timeout
                    if case .wentOffline = s.completed(i, answered: false, now: now) { wentOffline = now }
                } else {
                    livePolls += 1
                    now += 50
                    _ = s.completed(i, answered: true, now: now)
                }
            case .sleep(let until): now = until
            case .idle: return
            }
        }
        #expect(wentOffline != nil && wentOffline! < 4000)
        // Three failures, then probes at 2 s, 4 s, 8 s, 8 s, ... : about ten attempts in a minute, not sixty.
        #expect(deadAttempts <= 12)
        #expect(livePolls >= 58)
        #expect(s.devices[0].offlineSince == wentOffline)
    }

    @Test func backoffIsCappedAndAnAnswerBringsTheDeviceBack() {
        var s = scheduler([("d", 1000)], offlineAfter: 1, maxBackoff: 5000)
        #expect(s.completed(0, answered: false, now: 0) == .wentOffline(0))
        #expect(s.devices[0].nextDue == 2000)
        _ = s.completed(0, answered: false, now: 2000)
        #expect(s.devices[0].nextDue == 6000)  // 4 s
        _ = s.completed(0, answered: false, now: 6000)
        #expect(s.devices[0].nextDue == 11_000)  // capped at 5 s
        #expect(s.next(now: 11_000) == .probe(0))
        #expect(s.completed(0, answered: true, now: 11_100) == .cameBack(0))
        #expect(s.next(now: 11_100) == .poll(0))
    }

    @Test func aLateBusDoesNotBurstToCatchUp() {
        var s = scheduler([("d", 100)])
        #expect(s.next(now: 0) == .poll(0))
        _ = s.completed(0, answered: true, now: 1000)  // the poll overran ten intervals
        #expect(s.devices[0].nextDue == 1000)
        _ = s.completed(0, answered: true, now: 1010)
        #expect(s.devices[0].nextDue == 1100)
    }
}
