import EdgeCore
import Testing

@Suite struct RateAndStateAlarmTests {
    @Test func aRiseOfMoreThanTheChangeWithinThePeriodRaisesUntilTheValueSettles() throws {
        var e = try AlarmPad.engine(
            "  - {name: flow-rate, type: rate, device: well-1, tag: flow_rate, change: 50, per: 1m, direction: rise}\n")
        var events: [AlarmEvent] = []
        for (s, v) in [
            (0, 100.0), (10, 110), (20, 130), (30, 160), (40, 160), (50, 160), (60, 160), (70, 160), (80, 160)
        ] as [(Int64, Double)] {
            events += e.read("flow_rate", v, at: s)
        }
        // 160 − 100 = 60 > 50 from 30 s; at 70 s the window (10…70 s) starts at 110: 50 is not above 50.
        #expect(events.brief == ["flow-rate raised@30", "flow-rate cleared@70"])
        #expect(events[0].value == 60)
        #expect(events[0].limit == 50)
        #expect(events[0].reason == "flow_rate rose 60 MCF/d within 1m (limit 50 MCF/d)")
        #expect(events[1].reason == "flow_rate moved no more than 50 MCF/d within 1m; now 160 MCF/d")
    }

    @Test func eachDirectionWatchesItsOwnWay() throws {
        var e = try AlarmPad.engine(
            """
              - {name: up, type: rate, device: well-1, tag: flow_rate, change: 50, per: 1m, direction: rise}
              - {name: down, type: rate, device: well-1, tag: flow_rate, change: 50, per: 1m, direction: fall}
              - {name: any, type: rate, device: well-1, tag: flow_rate, change: 50, per: 1m}

            """)
        var raised: [AlarmID] = []
        raised += e.read("flow_rate", 200, at: 0).filter { $0.transition == .raised }.map(\.id)
        raised += e.read("flow_rate", 120, at: 10).filter { $0.transition == .raised }.map(\.id)
        #expect(raised == ["down", "any"])
        let fall = e.active.first { $0.id == "down" }
        #expect(fall?.reason == "flow_rate fell 80 MCF/d within 1m (limit 50 MCF/d)")
        raised = e.read("flow_rate", 300, at: 20).filter { $0.transition == .raised }.map(\.id)
        #expect(raised == ["up"])  // `any` is still raised from the fall
    }

    @Test func aStateAlarmRaisesOnANamedStateAndClearsOnAnother() throws {
        var e = try AlarmPad.engine(
            "  - {name: ws, type: state, device: well-1, tag: well_state, states: [malfunction], priority: high}\n")
        var events = e.read("well_state", 1, at: 0)
        events += e.read("well_state", 3, at: 10)
        events += e.read("well_state", 3, at: 20)
        events += e.read("well_state", 0, at: 30)
        #expect(events.brief == ["ws raised@10", "ws cleared@30"])
        #expect(
            events.map(\.reason) == [
                "well_state is malfunction (3)", "well_state is stopped (0), no longer an alarm state"
            ])
        #expect(events.map(\.priority) == [.high, .high])
    }

    @Test func aStateAlarmHonoursItsOnDelay() throws {
        var e = try AlarmPad.engine(
            "  - {name: rod, type: state, device: well-1, tag: rod_part, states: [true], onDelay: 10s}\n")
        var events = e.read("rod_part", 1, at: 0)
        events += e.read("rod_part", 0, at: 5)  // a blip: no alarm
        events += e.tick(from: 5, through: 20)
        events += e.read("rod_part", 1, at: 20)
        events += e.tick(from: 21, through: 30)
        #expect(events.brief == ["rod raised@30"])
    }
}
