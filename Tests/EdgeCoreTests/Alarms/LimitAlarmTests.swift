import EdgeCore
import Testing

@Suite struct LimitAlarmTests {
    static let tubing =
        "  - {name: tp, type: limit, device: well-1, tag: tubing_pressure, h: 450, hh: {setpoint: 600, priority: critical}, deadband: 10, onDelay: 30s}\n"

    /// Readings every 10 s as listed, ticks every second in between: what the daemon does.
    func drive(_ engine: inout AlarmEngine, _ values: [(Int64, Double)], until end: Int64) -> [AlarmEvent] {
        var events: [AlarmEvent] = []
        var next = 0
        for second in 0...end {
            if next < values.count, values[next].0 == second {
                events += engine.read("tubing_pressure", values[next].1, at: second)
                next += 1
            }
            events += engine.tick(now: t(second))
        }
        return events
    }

    @Test func aValueThroughHAndHHAndBackRaisesAndClearsEachLevelOnce() throws {
        var e = try AlarmPad.engine(Self.tubing)
        let events = drive(
            &e,
            [
                (0, 400), (10, 500), (20, 520), (30, 620), (40, 640), (50, 650), (60, 630),
                (70, 595), (80, 585), (90, 445), (100, 430), (110, 420)
            ], until: 120)
        #expect(events.brief == ["tp.h raised@40", "tp.hh raised@60", "tp.hh cleared@80", "tp.h cleared@100"])
        #expect(events.map(\.priority) == [.medium, .critical, .critical, .medium])
        #expect(events.map(\.limit) == [450, 600, 600, 450])
        #expect(events.map(\.value) == [640, 630, 585, 430])
        #expect(events[0].reason == "tubing_pressure 640 psi ≥ H 450 for 30s")
        #expect(events[1].reason == "tubing_pressure 630 psi ≥ HH 600 for 30s")
        #expect(events[2].reason == "tubing_pressure 585 psi < 590 (HH 600 − deadband 10)")
        #expect(events[3].reason == "tubing_pressure 430 psi < 440 (H 450 − deadband 10)")
        #expect(events.allSatisfy { $0.device == "well-1" && $0.tag == "tubing_pressure" && $0.alarm == "tp" })
        #expect(e.active.isEmpty == false)  // both cleared unacknowledged: listed until acknowledged
        #expect(e.active.map(\.state) == [.returnedUnacknowledged, .returnedUnacknowledged])
    }

    @Test func theOnDelayNeedsTheConditionOnEveryReading() throws {
        var e = try AlarmPad.engine(
            "  - {name: tp, type: limit, device: well-1, tag: tubing_pressure, h: 450, onDelay: 30s}\n")
        var events = e.read("tubing_pressure", 460, at: 0)
        events += e.read("tubing_pressure", 470, at: 10)
        events += e.read("tubing_pressure", 449, at: 20)  // dips below: the delay starts over
        events += e.tick(from: 20, through: 30)
        events += e.read("tubing_pressure", 460, at: 30)
        events += e.tick(from: 31, through: 59)
        #expect(events.isEmpty)
        events += e.tick(now: t(60))
        #expect(events.brief == ["tp.h raised@60"])
    }

    @Test func itClearsOnlyPastTheDeadbandAndAfterTheOffDelay() throws {
        var e = try AlarmPad.engine(
            "  - {name: tp, type: limit, device: well-1, tag: tubing_pressure, h: 450, deadband: 10, offDelay: 20s}\n")
        var events = e.read("tubing_pressure", 455, at: 0)
        events += e.read("tubing_pressure", 445, at: 10)  // inside the deadband: stays
        events += e.read("tubing_pressure", 435, at: 20)  // past it: off-delay starts
        events += e.read("tubing_pressure", 441, at: 30)  // back inside: off-delay abandoned
        events += e.tick(from: 30, through: 39)
        events += e.read("tubing_pressure", 430, at: 40)
        events += e.tick(from: 41, through: 59)
        #expect(events.brief == ["tp.h raised@0"])
        events += e.tick(now: t(60))
        #expect(events.brief == ["tp.h raised@0", "tp.h cleared@60"])
        #expect(events[1].reason == "tubing_pressure 430 psi < 440 (H 450 − deadband 10) for 20s")
    }

    @Test func aJumpPastTheOuterLimitRaisesBothLevels() throws {
        var e = try AlarmPad.engine(
            "  - {name: tp, type: limit, device: well-1, tag: tubing_pressure, ll: 50, l: 100, h: 450, hh: 600}\n")
        #expect(e.read("tubing_pressure", 300, at: 0).isEmpty)
        #expect(e.read("tubing_pressure", 700, at: 10).brief == ["tp.h raised@10", "tp.hh raised@10"])
        #expect(
            e.read("tubing_pressure", 0, at: 20).brief == [
                "tp.hh cleared@20", "tp.h cleared@20", "tp.l raised@20", "tp.ll raised@20"
            ])
        let back = e.read("tubing_pressure", 300, at: 30)
        #expect(back.brief == ["tp.ll cleared@30", "tp.l cleared@30"])
        #expect(back[0].reason == "tubing_pressure 300 psi > LL 50")
        // Default priorities: HH and LL high, H and L medium; listed by priority, then newest first.
        #expect(
            e.active.map { "\($0.id):\($0.priority)" } == ["tp.ll:high", "tp.hh:high", "tp.l:medium", "tp.h:medium"])
    }

    @Test func eachLevelKeepsItsOwnDelayAndPriority() throws {
        var e = try AlarmPad.engine(
            "  - {name: tp, type: limit, device: well-1, tag: tubing_pressure, h: {setpoint: 450, priority: low}, hh: {setpoint: 600, priority: critical, onDelay: 0s}, onDelay: 30s}\n"
        )
        var events = e.read("tubing_pressure", 650, at: 0)
        events += e.tick(from: 1, through: 30)
        #expect(events.brief == ["tp.hh raised@0", "tp.h raised@30"])
        #expect(events.map(\.priority) == [.critical, .low])
        #expect(e.alarmIDs == ["tp.hh", "tp.h"])
    }

    @Test func badQualityReadingsNeitherRaiseNorClear() throws {
        var e = try AlarmPad.engine(
            "  - {name: tp, type: limit, device: well-1, tag: tubing_pressure, h: 450, onDelay: 20s}\n")
        var events = e.readBad("tubing_pressure", at: 0)
        events += e.read("tubing_pressure", 500, at: 5)
        events += e.tick(from: 5, through: 9)
        events += e.readBad("tubing_pressure", at: 10)  // the last good value stands
        events += e.tick(from: 10, through: 19)
        events += e.readBad("tubing_pressure", at: 20)
        events += e.tick(from: 20, through: 25)
        #expect(events.brief == ["tp.h raised@25"])
        events = e.readBad("tubing_pressure", at: 30)
        events += e.ingest(
            [
                Reading(
                    device: "well-1", tag: "tubing_pressure", value: .number(0), quality: .bad(.decode),
                    wallMillis: t(35), monotonicNanos: 0)
            ], now: t(35))
        events += e.tick(from: 35, through: 40)
        #expect(events.isEmpty)
        #expect(e.read("tubing_pressure", 400, at: 45).brief == ["tp.h cleared@45"])
    }
}
