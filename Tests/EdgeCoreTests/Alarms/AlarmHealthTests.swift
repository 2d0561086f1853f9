import EdgeCore
import Foundation
import Testing

@Suite struct AlarmHealthTests {
    /// Eleven H alarms on one tag, at setpoints 101 … 111.
    static let eleven = (1...11).map {
        "  - {name: f\($0), type: limit, device: well-1, tag: tubing_pressure, h: \(100 + $0)}\n"
    }.joined()

    @Test func moreThanTenRaisesInTenMinutesIsAFlood() throws {
        var e = try AlarmPad.engine(Self.eleven)
        #expect(e.read("tubing_pressure", 110.5, at: 0).count == 10)
        #expect(e.health(now: t(0)).raisedInFloodWindow == 10)
        #expect(e.health(now: t(0)).flooding == false)  // ten is not more than ten
        #expect(e.read("tubing_pressure", 112, at: 60).brief == ["f11.h raised@60"])
        var health = e.health(now: t(60))
        #expect(health.raisedInFloodWindow == 11 && health.flooding && health.floods == 1)

        health = e.health(now: t(600))  // the first ten have left the window
        #expect(health.raisedInFloodWindow == 1 && !health.flooding && health.floods == 1)

        _ = e.read("tubing_pressure", 0, at: 700)
        _ = e.read("tubing_pressure", 200, at: 710)
        health = e.health(now: t(710))
        #expect(health.raisedInFloodWindow == 11 && health.flooding && health.floods == 2)
    }

    /// What the daemon does across a restart or a reload: the snapshot as JSON, restored into a new engine.
    func restarted(_ e: AlarmEngine, alarms: String, at seconds: Int64) throws -> AlarmEngine {
        let json = try JSONEncoder().encode(e.snapshot)
        var after = try AlarmPad.engine(alarms, at: seconds)
        after.restore(try JSONDecoder().decode(AlarmSnapshot.self, from: json))
        return after
    }

    @Test func aFloodAndAChatteringAlarmOutliveARestart() throws {
        let rules = Self.eleven + "  - {name: tp, type: limit, device: well-1, tag: flow_rate, h: 450}\n"
        var e = try AlarmPad.engine(rules)
        _ = e.read("tubing_pressure", 112, at: 0)  // eleven raised: a flood
        for (i, v) in [500.0, 400, 500].enumerated() { _ = e.read("flow_rate", v, at: Int64(10 + i)) }
        let before = e.health(now: t(15))
        #expect(
            before.flooding && before.floods == 1 && before.chatterEpisodes == 1
                && before.chattering.map(\.id) == ["tp.h"])

        var after = try restarted(e, alarms: rules, at: 20)
        #expect(after.health(now: t(20)) == e.health(now: t(20)))
        // The episode counts go on from where they were; the windows age as before.
        _ = after.read("flow_rate", 400, at: 30)
        _ = after.read("flow_rate", 500, at: 40)
        #expect(after.health(now: t(40)).chatterEpisodes == 1, "still the same chattering episode")
        let aged = after.health(now: t(700))
        #expect(!aged.flooding && aged.floods == 1 && aged.chattering.isEmpty && aged.chatterEpisodes == 1)
    }

    @Test func aSnapshotWrittenBeforeHealthWasKeptStillRestores() throws {
        var e = try AlarmPad.engine(Self.eleven)
        _ = e.read("tubing_pressure", 112, at: 0)
        // The snapshot JSON as an older edged wrote it: no "health" key.
        var object = try #require(
            try JSONSerialization.jsonObject(with: try JSONEncoder().encode(e.snapshot)) as? [String: Any])
        #expect(object.removeValue(forKey: "health") != nil)
        let old = try JSONDecoder().decode(AlarmSnapshot.self, from: try JSONSerialization.data(withJSONObject: object))
        var after = try AlarmPad.engine(Self.eleven, at: 10)
        #expect(after.restore(old).isEmpty)
        #expect(after.active.count == 11)
        // The raises before the restart are not in that snapshot: the health starts afresh, as it did before.
        let health = after.health(now: t(10))
        #expect(
            health.raisedInFloodWindow == 0 && !health.flooding && health.floods == 0 && health.chatterEpisodes == 0)
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
        health = e.health(now: t(61))  // the raise at 0 s has left the minute
        #expect(health.chattering.isEmpty && health.chatterEpisodes == 1)
    }
}
