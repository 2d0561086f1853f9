import EdgeCore
import Testing

@Suite struct WatchdogVerdictTests {
    let margin = WatchdogVerdict.busMarginMillis

    @Test func pingsWhileEveryBusMovesWithinItsAllowanceAndTheWriterIsNotStuck() {
        let buses = [
            WatchdogVerdict.Bus(name: "rs485", lastProgress: 100_000, allowance: 1_000),
            WatchdogVerdict.Bus(name: "lan", lastProgress: 90_000, allowance: 20_000)
        ]
        // rs485 idle 5.9 s of 6 s allowed; lan idle 15.9 s of 25 s allowed; writer 59.9 s of 60 s.
        #expect(
            WatchdogVerdict.decide(now: 105_900, buses: buses, writerStallMillis: 59_900, writerLimitMillis: 60_000)
                == .ping)
        #expect(WatchdogVerdict.decide(now: 0, buses: [], writerStallMillis: 0, writerLimitMillis: 60_000) == .ping)
    }

    @Test func aBusPastItsOwnAllowanceIsNamedTheLongestStuckFirst() {
        let buses = [
            WatchdogVerdict.Bus(name: "rs485", lastProgress: 100_000, allowance: 1_000),
            WatchdogVerdict.Bus(name: "lan", lastProgress: 90_000, allowance: 20_000),
            WatchdogVerdict.Bus(name: "tanks", lastProgress: 99_000, allowance: 1_000)
        ]
        // At 106 s: rs485 is at exactly its 6 s, tanks past its 6 s; lan (a long connect timeout) is fine.
        #expect(
            WatchdogVerdict.decide(now: 106_000, buses: buses, writerStallMillis: 0, writerLimitMillis: 60_000)
                == .busStuck(bus: "tanks", millis: 7_000))
        // The same idle time is within the allowance of a bus with a long connect timeout.
        #expect(
            WatchdogVerdict.decide(
                now: 90_000 + margin + 20_000 - 1, buses: [buses[1]], writerStallMillis: 0, writerLimitMillis: 60_000)
                == .ping)
        #expect(
            WatchdogVerdict.decide(
                now: 90_000 + margin + 20_000, buses: [buses[1]], writerStallMillis: 0, writerLimitMillis: 60_000)
                == .busStuck(bus: "lan", millis: margin + 20_000))
    }

    @Test func aStuckWriterComesFirst() {
        let stuckBus = [WatchdogVerdict.Bus(name: "rs485", lastProgress: 0, allowance: 1_000)]
        #expect(
            WatchdogVerdict.decide(now: 100_000, buses: stuckBus, writerStallMillis: 60_000, writerLimitMillis: 60_000)
                == .writerStuck(millis: 60_000))
        #expect(
            WatchdogVerdict.decide(now: 100_000, buses: stuckBus, writerStallMillis: 59_999, writerLimitMillis: 60_000)
                == .busStuck(bus: "rs485", millis: 100_000))
    }
}
