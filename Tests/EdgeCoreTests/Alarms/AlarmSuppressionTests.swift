import EdgeCore
import Testing

@Suite struct AlarmSuppressionTests {
    static let fillage =
        "  - {name: fill, type: limit, device: well-1, tag: pump_fillage, l: 50, onDelay: 20s, suppressWhen: well_state != running}\n"

    @Test func whileTheConditionHoldsTheAlarmIsNeitherRaisedNorCleared() throws {
        var e = try AlarmPad.engine(Self.fillage)
        var events: [AlarmEvent] = []
        // well_state never read: the condition is unknown, which does not suppress.
        events += e.read("pump_fillage", 30, at: 0)
        events += e.tick(from: 0, through: 29)
        events += e.read("well_state", 0, at: 30)  // stopped: suppressed, once
        events += e.read("well_state", 0, at: 35)
        events += e.read("pump_fillage", 80, at: 40)  // back to normal, but no clear …
        events += e.tick(from: 40, through: 59)
        events += e.read("well_state", 1, at: 60)  // … until the suppression lifts
        #expect(
            events.brief == ["fill.l raised@20", "fill.l suppressed@30", "fill.l unsuppressed@60", "fill.l cleared@60"])
        #expect(events[1].reason == "suppressed while well_state != running")
        #expect(events[2].reason == "well_state != running no longer holds")

        events = e.read("well_state", 0, at: 70)
        events += e.read("pump_fillage", 20, at: 80)  // low, but suppressed
        events += e.tick(from: 80, through: 129)
        #expect(e.status("fill.l")?.suppressed == true)
        events += e.read("well_state", 1, at: 130)  // lifts: the on-delay starts now
        events += e.tick(from: 130, through: 150)
        #expect(events.brief == ["fill.l suppressed@70", "fill.l unsuppressed@130", "fill.l raised@150"])
    }

    @Test func aPendingRaiseIsAbandonedWhenSuppressionStarts() throws {
        var e = try AlarmPad.engine(Self.fillage)
        var events = e.read("well_state", 1, at: 0)
        events += e.read("pump_fillage", 30, at: 0)  // the on-delay starts …
        events += e.tick(from: 0, through: 9)
        events += e.read("well_state", 4, at: 10)  // … a pump-off cycle suppresses …
        events += e.read("well_state", 1, at: 15)  // … and the delay starts over
        events += e.tick(from: 15, through: 35)
        #expect(events.brief == ["fill.l suppressed@10", "fill.l unsuppressed@15", "fill.l raised@35"])
    }

    @Test func aConditionOnAnotherDeviceUsesItsLastGoodValue() throws {
        var e = try AlarmPad.engine(
            "  - {name: no-flow, type: limit, device: well-2, tag: flow_rate, ll: 5, suppressWhen: well-1.well_state != running}\n"
        )
        var events = e.read("well_state", 0, at: 0)
        events += e.read("flow_rate", 2, at: 5, device: "well-2")
        events += e.readBad("well_state", at: 8)  // a bad reading keeps the last good value
        events += e.read("flow_rate", 2, at: 9, device: "well-2")
        #expect(events.brief == ["no-flow.ll suppressed@0"])
        events += e.read("well_state", 1, at: 10)
        #expect(events.brief == ["no-flow.ll suppressed@0", "no-flow.ll unsuppressed@10", "no-flow.ll raised@10"])
    }

    @Test func anUnknownValueDoesNotSuppress() throws {
        var e = try AlarmPad.engine(
            "  - {name: no-flow, type: limit, device: well-2, tag: flow_rate, ll: 5, suppressWhen: well-1.well_state != running and tubing_pressure < 1000}\n"
        )
        // well-2's own tubing_pressure is unknown: `true and unknown` is unknown, so not suppressed.
        var events = e.read("well_state", 0, at: 0)
        events += e.read("flow_rate", 2, at: 5, device: "well-2")
        #expect(events.brief == ["no-flow.ll raised@5"])
        #expect(e.read("tubing_pressure", 100, at: 10, device: "well-2").brief == ["no-flow.ll suppressed@10"])
    }
}
