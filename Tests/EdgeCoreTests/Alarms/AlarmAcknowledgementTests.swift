import EdgeCore
import Testing

@Suite struct AlarmAcknowledgementTests {
    static let rodPart =
        "  - {name: rod, type: state, device: well-1, tag: rod_part, states: [true], priority: critical, latching: true}\n"
    static let tubing = "  - {name: tp, type: limit, device: well-1, tag: tubing_pressure, h: 450, hh: 600}\n"

    @Test func aLatchingAlarmStaysRaisedUntilAcknowledged() throws {
        var e = try AlarmPad.engine(Self.rodPart)
        var events = e.read("rod_part", 1, at: 0)
        events += e.read("rod_part", 0, at: 10)  // the condition is gone
        events += e.tick(from: 10, through: 29)
        #expect(events.brief == ["rod raised@0"])
        #expect(events[0].reason == "rod_part is true")
        #expect(e.status("rod")?.state == .latched)
        #expect(e.status("rod")?.conditionActive == false)
        let ack = try e.acknowledge("rod", by: "jdoe", now: t(30))
        #expect(ack.brief == ["rod acknowledged@30", "rod cleared@30"])
        #expect(ack[0].by == "jdoe")
        #expect(ack[1].reason == "latch reset by acknowledgement of jdoe; rod_part is false, no longer an alarm state")
        #expect(e.active.isEmpty)
    }

    @Test func aLatchingAlarmAcknowledgedWhileActiveClearsWhenTheConditionGoes() throws {
        var e = try AlarmPad.engine(Self.rodPart)
        _ = e.read("rod_part", 1, at: 0)
        #expect(try e.acknowledge("rod", by: "jdoe", now: t(5)).brief == ["rod acknowledged@5"])
        #expect(e.status("rod")?.state == .active)
        #expect(e.read("rod_part", 0, at: 10).brief == ["rod cleared@10"])
        #expect(e.active.isEmpty)
    }

    @Test func acknowledgingANonLatchingAlarmLeavesItActive() throws {
        var e = try AlarmPad.engine(Self.tubing)
        #expect(e.read("tubing_pressure", 500, at: 0).brief == ["tp.h raised@0"])
        #expect(try e.acknowledge("tp.h", by: "jdoe", now: t(5)).brief == ["tp.h acknowledged@5"])
        let status = try #require(e.status("tp.h"))
        #expect(status.state == .active && status.acknowledged && status.acknowledgedBy == "jdoe")
        #expect(throws: AlarmCommandError.self) { try e.acknowledge("tp.h", by: "ann", now: t(6)) }
        do { _ = try e.acknowledge("tp.h", by: "ann", now: t(6)) } catch {
            #expect(error.code == .notAcknowledgeable)
            #expect(error.description == "tp.h is already acknowledged (by jdoe)")
        }
        #expect(e.read("tubing_pressure", 400, at: 10).brief == ["tp.h cleared@10"])
        #expect(e.active.isEmpty)
    }

    @Test func aClearBeforeAcknowledgementStaysListedUntilAcknowledged() throws {
        var e = try AlarmPad.engine(Self.tubing)
        _ = e.read("tubing_pressure", 500, at: 0)
        _ = e.read("tubing_pressure", 400, at: 10)
        #expect(e.status("tp.h")?.state == .returnedUnacknowledged)
        let ack = try e.acknowledge("tp.h", by: "jdoe", now: t(20))
        #expect(ack.brief == ["tp.h acknowledged@20"])
        #expect(ack[0].reason == "acknowledged by jdoe (already back to normal)")
        #expect(e.active.isEmpty)
        do { _ = try e.acknowledge("tp.h", by: "jdoe", now: t(21)); Issue.record("acknowledged twice") } catch {
            #expect(error.description == "tp.h is not in alarm; nothing to acknowledge")
        }
    }

    @Test func aRuleNameAcknowledgesAllItsWaitingLevels() throws {
        var e = try AlarmPad.engine(Self.tubing)
        _ = e.read("tubing_pressure", 700, at: 0)
        #expect(try e.acknowledge("tp", by: "jdoe", now: t(1)).brief == ["tp.hh acknowledged@1", "tp.h acknowledged@1"])
    }

    @Test func anUnknownAlarmIsRefusedWithAHint() throws {
        var e = try AlarmPad.engine(Self.tubing)
        do { _ = try e.acknowledge("tp.hhh", by: "jdoe", now: 0); Issue.record("accepted") } catch {
            #expect(error.code == .unknownAlarm)
            #expect(error.alarm == "tp.hhh")
            #expect(error.description == "no alarm 'tp.hhh'; did you mean 'tp.hh'?")
        }
    }
}
