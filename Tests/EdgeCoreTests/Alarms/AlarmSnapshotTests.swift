import EdgeCore
import Foundation
import Testing

@Suite struct AlarmSnapshotTests {
    static let rules = """
          - {name: tp, type: limit, device: well-1, tag: tubing_pressure, h: 450, hh: {setpoint: 600, priority: critical}, deadband: 10}
          - {name: rod, type: state, device: well-1, tag: rod_part, states: [true], priority: critical, latching: true}
          - {name: fill, type: limit, device: well-1, tag: pump_fillage, l: 50, suppressWhen: well_state != running}
          - {name: w2-comm, type: comm-loss, device: well-2, after: 1m}

        """

    /// The snapshot as the daemon would store it: JSON bytes, decoded again.
    func roundTrip(_ s: AlarmSnapshot) throws -> AlarmSnapshot {
        try JSONDecoder().decode(AlarmSnapshot.self, from: try JSONEncoder().encode(s))
    }

    @Test func aRestartMidAlarmNeitherRaisesTwiceNorLosesAClear() throws {
        var before = try AlarmPad.engine(Self.rules)
        var events = before.read("well_state", 1, at: 0)
        events += before.read("tubing_pressure", 650, at: 0)  // raised: tp.h, tp.hh
        events += before.read("rod_part", 1, at: 0)  // raised, then latched
        events += before.read("pump_fillage", 30, at: 0)  // raised, then shelved
        events += before.read("rod_part", 0, at: 5)
        events += try before.shelve("fill.l", for: .hours(1), by: "jdoe", now: t(6))
        events += try before.acknowledge("tp.hh", by: "jdoe", now: t(7))
        events += before.deviceComm("well-2", online: false, now: t(8))
        events += before.tick(from: 8, through: 68)  // w2-comm raised
        let snapshot = try roundTrip(before.snapshot)
        #expect(snapshot.version == AlarmSnapshot.currentVersion)

        // The daemon restarts at 100 s.
        var after = try AlarmPad.engine(Self.rules, at: 100)
        #expect(after.restore(snapshot).isEmpty)
        #expect(after.active == before.active)
        #expect(after.status("rod")?.state == .latched)
        #expect(after.status("fill.l")?.shelvedUntil == t(3606))

        // The values are still abnormal after the restart: nothing is raised again.
        var later = after.read("well_state", 1, at: 110)
        later += after.read("tubing_pressure", 650, at: 110)
        later += after.read("rod_part", 0, at: 110)
        later += after.read("pump_fillage", 30, at: 110)
        later += after.tick(from: 110, through: 120)
        #expect(later.isEmpty)

        // Then everything returns to normal: each clear arrives exactly once.
        later += after.read("tubing_pressure", 300, at: 130)
        later += after.read("tubing_pressure", 300, at: 140)
        later += try after.acknowledge("rod", by: "ann", now: t(150))
        later += after.read("pump_fillage", 80, at: 160)
        later += try after.unshelve("fill.l", by: "ann", now: t(170))
        later += after.read("flow_rate", 5, at: 180, device: "well-2")
        later += after.tick(from: 180, through: 200)
        #expect(
            later.brief == [
                "tp.hh cleared@130", "tp.h cleared@130", "rod acknowledged@150", "rod cleared@150",
                "fill.l unshelved@170", "fill.l cleared@170", "w2-comm cleared@180"
            ])
        let all = events + later
        for id: AlarmID in ["tp.h", "tp.hh", "rod", "fill.l", "w2-comm"] {
            #expect(all.filter { $0.id == id && $0.transition == .raised }.count == 1, "\(id)")
            #expect(all.filter { $0.id == id && $0.transition == .cleared }.count == 1, "\(id)")
        }
    }

    @Test func suppressionSurvivesARestartWithoutASecondEvent() throws {
        var before = try AlarmPad.engine(Self.rules)
        #expect(before.read("well_state", 0, at: 0).brief == ["fill.l suppressed@0"])
        var after = try AlarmPad.engine(Self.rules, at: 50)
        after.restore(try roundTrip(before.snapshot))
        var events = after.read("pump_fillage", 20, at: 60)  // the restored last value still suppresses
        events += after.read("well_state", 0, at: 60)
        #expect(events.isEmpty)
        #expect(after.read("well_state", 1, at: 70).brief == ["fill.l unsuppressed@70", "fill.l raised@70"])
    }

    @Test func aSuppressionWhoseConditionWasRemovedLiftsAfterARestart() throws {
        var before = try AlarmPad.engine(Self.rules)
        _ = before.read("well_state", 0, at: 0)
        var after = try AlarmPad.engine(
            "  - {name: fill, type: limit, device: well-1, tag: pump_fillage, l: 50}\n", at: 50)
        after.restore(try roundTrip(before.snapshot))
        #expect(after.status("fill.l")?.suppressed == true)
        let events = after.read("pump_fillage", 20, at: 60)
        #expect(events.brief == ["fill.l unsuppressed@60", "fill.l raised@60"])
        #expect(events.first?.reason == "suppression no longer configured")
    }

    @Test func aStaleAlarmStaysRaisedAcrossARestartUntilAGoodReading() throws {
        let rule = "  - {name: flow-stale, type: stale, device: well-1, tag: flow_rate, after: 1m}\n"
        var before = try AlarmPad.engine(rule)
        let raised = before.tick(from: 0, through: 60)
        #expect(raised.brief == ["flow-stale raised@60"])
        var after = try AlarmPad.engine(rule, at: 100)
        after.restore(try roundTrip(before.snapshot))
        var events = after.tick(from: 100, through: 130)  // not read since the restart: no clear
        events += after.read("flow_rate", 4, at: 131)
        events += after.tick(from: 131, through: 190)
        #expect(events.brief == ["flow-stale cleared@131"])
    }

    @Test func alarmsOfRemovedRulesAreDroppedAndClearedIfRaised() throws {
        var before = try AlarmPad.engine(Self.rules)
        _ = before.read("tubing_pressure", 650, at: 0)
        _ = before.read("rod_part", 1, at: 0)
        // The new configuration drops HH (and the rod alarm altogether) and raises H to 700.
        var after = try AlarmPad.engine(
            """
              - {name: tp, type: limit, device: well-1, tag: tubing_pressure, h: 700, deadband: 10}

            """, at: 100)
        let events = after.restore(try roundTrip(before.snapshot))
        #expect(events.brief == ["tp.hh cleared@100", "rod cleared@100"])
        #expect(events.allSatisfy { $0.reason == "alarm no longer configured; cleared at restart" })
        #expect(events.map(\.priority) == [.critical, .critical])
        #expect(after.active.map(\.id) == ["tp.h"])  // kept: same id
        #expect(after.status("tp.h")?.limit == 700)
        // Re-evaluated against the new setpoint on the next reading: cleared, once.
        #expect(after.read("tubing_pressure", 650, at: 110).brief == ["tp.h cleared@110"])
    }
}
