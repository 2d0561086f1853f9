import EdgeCore
import EdgeTestSupport
import Testing

/// The shipped example configuration's alarms run as written.
@Suite struct ExamplePadAlarmTests {
    @Test func everyConfiguredAlarmGetsAnID() throws {
        let pad = try ExamplePad.load()
        let e = AlarmEngine(config: pad, now: 0)
        let ids = Set(e.alarmIDs)
        for id: AlarmID in [
            "rpc-1-tubing.h", "rpc-1-tubing.hh", "rpc-1-fillage.l", "rpc-1-fillage.ll", "rpc-1-malfunction",
            "rpc-1-rod-part", "rpc-1-comm", "efm-no-flow.ll", "efm-stale", "mvt-dp-rate", "tanks-comm"
        ] {
            #expect(ids.contains(id), "\(id)")
        }
        #expect(e.alarmIDs.count == ids.count)
    }

    @Test func tubingPressureSpikeReadsAsAFieldTechExpects() throws {
        var e = AlarmEngine(config: try ExamplePad.load(), now: 0)
        var events: [AlarmEvent] = []
        for s in stride(from: Int64(0), through: 40, by: 10) {
            events += e.read("tubing_pressure", 612, at: s, device: "rpc-1")
            events += e.tick(now: t(s))
        }
        let hh = try #require(events.first { $0.id == "rpc-1-tubing.hh" })
        #expect(hh.transition == .raised && hh.priority == .critical && hh.wallMillis == t(30))
        #expect(hh.reason == "tubing_pressure 612 psi ≥ HH 600 for 30s")
        #expect(events.brief == ["rpc-1-tubing.h raised@30", "rpc-1-tubing.hh raised@30"])
    }

    @Test func aMalfunctionStateNamedInTheConfigRaisesTheLatchingAlarm() throws {
        var e = AlarmEngine(config: try ExamplePad.load(), now: 0)
        // well_state 3 is `malfunction` in the rod pump template.
        let events = e.read("well_state", 3, at: 0, device: "rpc-1").filter { $0.id == "rpc-1-malfunction" }
        #expect(events.brief == ["rpc-1-malfunction raised@0"])
        #expect(events.first?.reason == "well_state is malfunction (3)")
        _ = e.read("well_state", 1, at: 10, device: "rpc-1")
        #expect(e.status("rpc-1-malfunction")?.state == .latched)
    }
}
