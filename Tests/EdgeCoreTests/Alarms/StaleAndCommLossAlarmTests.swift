import EdgeCore
import Testing

@Suite struct StaleAndCommLossAlarmTests {
    static let stale = "  - {name: flow-stale, type: stale, device: well-1, tag: flow_rate, after: 1m}\n"
    static let comm = """
          - {name: w1-comm, type: comm-loss, device: well-1, after: 2m}
          - {name: w2-comm, type: comm-loss, device: well-2, priority: high}
          - {name: tp, type: limit, device: well-1, tag: tubing_pressure, h: 450, onDelay: 30s}

        """

    @Test func noGoodReadingForAfterRaisesAStaleAlarmAndAGoodOneClearsIt() throws {
        var e = try AlarmPad.engine(Self.stale)
        var events = e.read("flow_rate", 7, at: 0)
        events += e.tick(from: 1, through: 29)
        events += e.readBad("flow_rate", at: 30)  // bad readings do not refresh it
        events += e.tick(from: 30, through: 59)
        #expect(events.isEmpty)
        events += e.tick(now: t(60))
        events += e.readBad("flow_rate", at: 70)
        events += e.tick(from: 70, through: 79)
        events += e.read("flow_rate", 8, at: 80)
        #expect(events.brief == ["flow-stale raised@60", "flow-stale cleared@80"])
        #expect(events.map(\.reason) == ["flow_rate: no good reading for 1m", "flow_rate read again: 8 MCF/d"])
    }

    @Test func aTagNeverReadGoesStaleAfterTheEngineStarts() throws {
        var e = try AlarmPad.engine(Self.stale, at: 100)
        #expect(e.tick(from: 100, through: 159).isEmpty)
        #expect(e.tick(now: t(160)).brief == ["flow-stale raised@160"])
    }

    @Test func aStaleAlarmWaitsWhileItsDeviceIsOfflineAndCountsFromItsReturn() throws {
        var e = try AlarmPad.engine(Self.stale + "  - {name: w1-comm, type: comm-loss, device: well-1}\n")
        var events = e.read("flow_rate", 7, at: 0)
        events += e.deviceComm("well-1", online: false, now: t(10))
        events += e.tick(from: 10, through: 199)  // the comm-loss alarm stands instead
        events += e.deviceComm("well-1", online: true, now: t(200))
        events += e.readBad("flow_rate", at: 205)
        events += e.tick(from: 200, through: 259)
        #expect(events.brief == ["w1-comm raised@10", "w1-comm cleared@200"])
        #expect(e.tick(now: t(260)).brief == ["flow-stale raised@260"])
    }

    @Test func aDeviceOfflineForAfterRaisesCommLossAndFreezesItsValueAlarms() throws {
        var e = try AlarmPad.engine(Self.comm)
        var events = e.read("tubing_pressure", 500, at: 0)
        events += e.tick(from: 0, through: 30)
        #expect(events.brief == ["tp.h raised@30"])
        events = e.deviceComm("well-1", online: false, now: t(40))
        events += e.readBad("tubing_pressure", at: 50)
        events += e.tick(from: 41, through: 159)
        #expect(events.isEmpty)
        events += e.tick(now: t(160))
        #expect(events.brief == ["w1-comm raised@160"])
        #expect(events[0].reason == "well-1 not answering for 2m")
        #expect(Set(e.active.map(\.id)) == ["tp.h", "w1-comm"])  // the value alarm is frozen, not cleared
        events = e.deviceComm("well-1", online: false, now: t(170))  // repeated: nothing
        events += e.deviceComm("well-1", online: true, now: t(200))
        events += e.read("tubing_pressure", 400, at: 205)
        #expect(events.brief == ["w1-comm cleared@200", "tp.h cleared@205"])
        #expect(events[0].reason == "well-1 answering again")
    }

    @Test func aPendingRaiseIsAbandonedWhenTheDeviceGoesOffline() throws {
        var e = try AlarmPad.engine(Self.comm)
        var events = e.read("tubing_pressure", 500, at: 0)
        events += e.deviceComm("well-1", online: false, now: t(10))
        events += e.tick(from: 10, through: 100).filter { $0.id == "tp.h" }
        events += e.deviceComm("well-1", online: true, now: t(101)).filter { $0.id == "tp.h" }
        events += e.read("tubing_pressure", 500, at: 105)  // the on-delay starts over
        events += e.tick(from: 105, through: 135)
        #expect(events.brief == ["tp.h raised@135"])
    }

    @Test func aPendingClearIsAbandonedWhenTheDeviceGoesOffline() throws {
        var e = try AlarmPad.engine(
            "  - {name: tp, type: limit, device: well-1, tag: tubing_pressure, h: 450, offDelay: 20s}\n")
        var events = e.read("tubing_pressure", 500, at: 0)
        events += e.read("tubing_pressure", 400, at: 10)  // the off-delay starts …
        events += e.deviceComm("well-1", online: false, now: t(20))  // … and is abandoned
        events += e.tick(from: 20, through: 100)
        events += e.deviceComm("well-1", online: true, now: t(101))
        #expect(events.brief == ["tp.h raised@0"])
        events += e.read("tubing_pressure", 400, at: 105)
        events += e.tick(from: 105, through: 125)
        #expect(events.brief == ["tp.h raised@0", "tp.h cleared@125"])
    }

    @Test func commLossWithoutAfterRaisesAtOnceAndAGoodReadingEndsIt() throws {
        var e = try AlarmPad.engine(Self.comm)
        #expect(e.deviceComm("well-2", online: false, now: t(0)).brief == ["w2-comm raised@0"])
        #expect(e.status("w2-comm")?.priority == .high)
        // The poller reports the device back implicitly: a good reading proves it answers.
        #expect(e.read("flow_rate", 3, at: 5, device: "well-2").brief == ["w2-comm cleared@5"])
    }
}
