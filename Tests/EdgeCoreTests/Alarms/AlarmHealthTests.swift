import EdgeCore
import Testing

@Suite struct AlarmHealthTests {
    /// Eleven H alarms on one tag, at setpoints 101 … 111.
    static let eleven = (1...11).map { "  - {name: f\($0), type: limit, device: well-1, tag: tubing_pressure, h: \(100 + $0)}\n" }.joined()

    @Test func moreThanTenRaisesInTenMinutesIsAFlood() throws {
        var e = try AlarmPad.engine(Self.eleven)
        #expect(e.read("tubing_pressure", 110.5, at: 0).count == 10)
        #expect(e.health(now: t(0)).raisedInFloodWindow == 10)
        #expect(e.health(now: t(0)).flooding == false)              // ten is not more than ten
        #expect(e.read("tubing_pressure", 112, at: 60).brief == ["f11.h raised@60"])
        var health = e.health(now: t(60))
        #expect(health.raisedInFloodWindow == 11 && health.flooding && health.floods == 1)

        health = e.health(now: t(600))                              // the first ten have left the window
        #expect(health.raisedInFloodWindow == 1 && !health.flooding && health.floods == 1)

        _ = e.read("tubing_pressure", 0, at: 700)
        _ = e.read("tubing_pressure", 200, at: 710)
        health = e.health(now: t(710))
        #expect(health.raisedInFloodWindow == 11 && health.flooding && health.floods == 2)
    }

    @Test func threeTransitionsOfOneAlarmInAMinuteIsChattering() throws {
        var e = try AlarmPad.engine("  - {name: tp, type: limit, device: well-1, tag: tubing_pressure, h: 450}\n")
        _ = e.read("tubing_pressure", 500, at: 0)
        _ = e.read("tubing_pressure", 400, at: 10)
        #expect(e.health(now: t(10)).chattering.isEmpty)
        _ = e.read("tubing_pressure", 500, at: 20)
        var health = e.health(now: t(20))
        #expect(health.chattering == [AlarmHealth.Chatter(id: "tp.h", transitions: 3)])
        #expect(health.chatterEpisodes == 1)
        health = e.health(now: t(61))                               // the raise at 0 s has left the minute
        #expect(health.chattering.isEmpty && health.chatterEpisodes == 1)
    }
}
