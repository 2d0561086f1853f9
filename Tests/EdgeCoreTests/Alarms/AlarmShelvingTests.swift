import EdgeCore
import Testing

@Suite struct AlarmShelvingTests {
    static let tubing = "  - {name: tp, type: limit, device: well-1, tag: tubing_pressure, h: 450, hh: 600}\n"

    @Test func aShelvedAlarmIsHeldUntilTheShelveExpires() throws {
        var e = try AlarmPad.engine(Self.tubing)
        var events = e.read("tubing_pressure", 500, at: 0)
        events += try e.shelve("tp.h", for: .minutes(10), by: "jdoe", now: t(10))
        events += e.read("tubing_pressure", 400, at: 20)  // would clear: held
        events += e.read("tubing_pressure", 500, at: 30)
        events += e.tick(from: 30, through: 609)
        #expect(events.brief == ["tp.h raised@0", "tp.h shelved@10"])
        #expect(events[1].shelvedUntil == t(610))
        #expect(events[1].by == "jdoe")
        #expect(events[1].reason == "shelved by jdoe for 10m")
        #expect(e.status("tp.h")?.shelvedUntil == t(610))
        #expect(e.status("tp.h")?.shelvedBy == "jdoe")
        let expiry = e.tick(now: t(610))
        #expect(expiry.brief == ["tp.h unshelved@610"])  // still high: stays raised, no new raise
        #expect(expiry[0].by == nil)
        #expect(expiry[0].reason == "shelve expired (shelved by jdoe)")
        #expect(e.read("tubing_pressure", 400, at: 620).brief == ["tp.h cleared@620"])
    }

    @Test func unshelvingReconcilesAtOnce() throws {
        var e = try AlarmPad.engine(Self.tubing)
        var events = try e.shelve("tp.h", for: .hours(2), by: "jdoe", now: t(0))
        events += e.read("tubing_pressure", 500, at: 10)  // would raise: held
        events += try e.unshelve("tp.h", by: "ann", now: t(20))
        #expect(events.brief == ["tp.h shelved@0", "tp.h unshelved@20", "tp.h raised@20"])
        #expect(events[1].by == "ann")

        events = try e.shelve("tp", for: .hours(1), by: "jdoe", now: t(30))  // a rule name shelves every level
        events += e.read("tubing_pressure", 100, at: 40)
        events += try e.unshelve("tp", by: "jdoe", now: t(50))
        #expect(
            events.brief == [
                "tp.hh shelved@30", "tp.h shelved@30", "tp.hh unshelved@50", "tp.h unshelved@50", "tp.h cleared@50"
            ])
    }

    @Test func shelveCommandsAreCheckedAndBounded() throws {
        var e = try AlarmPad.engine(Self.tubing)
        let cases: [(TimeSpan, String)] = [(.seconds(0), "0s"), (.hours(25), "1d1h")]
        for (span, text) in cases {
            do { _ = try e.shelve("tp.h", for: span, by: "jdoe", now: 0); Issue.record("shelved for \(span)") } catch {
                #expect(error.code == .invalidShelveDuration)
                #expect(
                    error.description == "cannot shelve tp.h for \(text): a shelve lasts more than 0s and at most 1d")
            }
        }
        do { _ = try e.unshelve("tp.h", by: "jdoe", now: 0); Issue.record("unshelved") } catch {
            #expect(error.code == .notShelved)
            #expect(error.description == "tp.h is not shelved")
        }
        do { _ = try e.shelve("pt", for: .hours(1), by: "jdoe", now: 0); Issue.record("shelved") } catch {
            #expect(error.code == .unknownAlarm)
        }
    }

    @Test func anAlarmOutOfServiceIsHeldUntilReturnedToService() throws {
        var e = try AlarmPad.engine(Self.tubing)
        var events = try e.setOutOfService("tp.h", true, by: "tech", now: t(0))
        events += e.read("tubing_pressure", 500, at: 10)
        events += e.tick(from: 10, through: 20)
        #expect(events.brief == ["tp.h out-of-service@0"])
        #expect(e.status("tp.h")?.outOfService == true)
        #expect(e.status("tp.h")?.conditionActive == true)  // still tracked
        do { _ = try e.setOutOfService("tp.h", true, by: "tech", now: t(21)); Issue.record("twice") } catch {
            #expect(error.code == .alreadyInThatService)
            #expect(error.description == "tp.h is already out of service")
        }
        events = try e.setOutOfService("tp.h", false, by: "tech", now: t(30))
        #expect(events.brief == ["tp.h in-service@30", "tp.h raised@30"])
        #expect(events[0].reason == "returned to service by tech")
    }
}
