import EdgeCore
import EdgeTestSupport
import Testing

/// The EFM bus-time model against figures worked out by hand (9600 baud 8N1: 1/960 s per character).
@Suite struct EFMBusModelTests {
    /// RS-485 at 9600 baud, 100 ms inter-frame delay, a device turnaround of 20 ms: 0.12 s + 7 characters per
    /// transaction, 13 characters of framing.
    static let rtu9600 = BusTiming(characterTime: 1.0 / 960, perTransaction: 0.12 + 7.0 / 960, framingBytes: 13)

    static func model(live: [EFMBusModel.LivePoll] = [], guardSeconds: Double = 0.9) -> EFMBusModel {
        EFMBusModel(
            profile: .scanner2000, timing: rtu9600, checkSeconds: 60, slackGuard: guardSeconds, live: live)
    }

    @Test func eachRequestCostsItsFramesAndTurnaround() {
        let m = Self.model()
        let base = 0.12 + 7.0 / 960
        // Pointers 7000..7001: one read of two floats, 8 data bytes.
        #expect(abs(m.seconds(.pointers) - (base + 21.0 / 960)) < 1e-9)
        // The 16-field hourly record: 8 + 4 × 16 = 72 bytes in the reply.
        #expect(abs(m.seconds(.hourlyRecord) - (base + 85.0 / 960)) < 1e-9)
        #expect(abs(m.seconds(.hourlyRecord) - 0.215_833_3) < 1e-6)
        #expect(m.seconds(.dailyRecord) == m.seconds(.hourlyRecord))
        #expect(abs(m.seconds(.eventReadEmpty) - (base + 13.0 / 960)) < 1e-9)
        // 251 reply bytes hold 12 events of 20 bytes.
        #expect(abs(m.seconds(.eventReadFull) - (base + 253.0 / 960)) < 1e-9)
        // FC 05 echoes register and value: 8 bytes each way.
        #expect(abs(m.seconds(.acknowledge) - (base + 16.0 / 960)) < 1e-9)
        // The DL8000's 7-field record is 36 bytes; its pointers 7160..7161 are one read as well.
        var dl = m
        dl.profile = .flobossDL8000
        #expect(abs(dl.seconds(.hourlyRecord) - (base + 49.0 / 960)) < 1e-9)
        #expect(dl.pointerReadSeconds.count == 1)
    }

    @Test func caughtUpCostsTheChecksAndTwoReadsPerRecord() {
        let m = Self.model()
        // 60 checks × (0.149167 + 0.140833) = 17.4 s; 2 × 0.215833 hourly; 2 × 0.215833 / 24 daily.
        let perHour = 60 * 0.29 + 2 * 0.215_833_33 + 2 * 0.215_833_33 / 24
        #expect(abs(m.steadyStateSecondsPerHour - perHour) < 1e-6)
        #expect(abs(m.steadyStateShare - 0.004_958_237) < 1e-8)
    }

    @Test func liveScheduleGapsRunFromTheEndOfPollsDueTogetherToTheNextDue() {
        let m = Self.model(live: [
            .init(device: "a", intervalSeconds: 1, busSeconds: 0.1),
            .init(device: "b", intervalSeconds: 2, busSeconds: 0.3)
        ])
        #expect(abs(m.liveLoad - 0.25) < 1e-12)
        let s = m.liveSchedule()
        #expect(s.window == 3600)
        #expect(s.gaps.count == 3600)
        // At 0 both are due: 0.1 + 0.3 busy, idle until a's poll at 1; at 1 only a.
        #expect(abs(s.gaps[0].start - 0.4) < 1e-9 && s.gaps[0].end == 1)
        #expect(abs(s.gaps[1].start - 1.1) < 1e-9 && s.gaps[1].end == 2)
    }

    @Test func requestsGoOnlyWhileTheGuardRemainsBeforeTheNextLivePoll() throws {
        let m = Self.model(live: [.init(device: "a", intervalSeconds: 1, busSeconds: 0.2)], guardSeconds: 0.3)
        // Gap 0.2 … 1.0: requests of 0.2 s start at 0.2, 0.4 and 0.6 (0.8, 0.6, 0.4 s left); at 0.8 only 0.2 s
        // remain. Seven requests: 3 + 3 + 1, the last ending at 2 + 0.2 + 0.2.
        let t = try #require(m.drainSeconds(Array(repeating: 0.2, count: 7)))
        #expect(abs(t - 2.4) < 1e-9)
        // With no live polls the requests go back to back.
        #expect(abs((Self.model().drainSeconds(Array(repeating: 0.2, count: 7)) ?? 0) - 1.4) < 1e-9)
        // A gap of 0.8 s never leaves a 0.9 s guard: a backfill would never progress.
        let starved = Self.model(live: [.init(device: "a", intervalSeconds: 1, busSeconds: 0.2)], guardSeconds: 0.9)
        #expect(starved.backfillSeconds(hourly: 10, daily: 0) == nil)
    }

    @Test func aBackfillReadsTheCursorRecordThenTheMissedOnes() {
        let m = Self.model()
        let requests = m.backfillRequests(hourly: 840, daily: 35)
        // Pointers, 1 + 840 hourly, 1 + 35 daily, the event log.
        #expect(requests.count == 1 + 841 + 36 + 1)
        let busTime = m.seconds(.pointers) + 877 * m.seconds(.hourlyRecord) + m.seconds(.eventReadEmpty)
        #expect(abs((m.backfillSeconds(hourly: 840, daily: 35) ?? 0) - busTime) < 1e-6)
    }

    /// The example pad's efm-1 (a Scanner 2000 on rs485-wells with four rod pump controllers): the bus's
    /// figures from the configuration, and a backfill no faster than its bus time over the free share.
    @Test func theExamplePadsFlowComputer() throws {
        let pad = try ExamplePad.load()
        let device = try #require(pad.device(named: "efm-1"))
        let m = try #require(EFMBusModel(device: device, in: pad))
        #expect(abs(m.slackGuard - 0.9) < 1e-9)  // responseTimeout 800 ms + interFrameDelay 100 ms
        #expect(abs(m.seconds(.hourlyRecord) - 0.215_833_3) < 1e-6)  // turnaround 20 ms, as above
        #expect(m.live.map(\.device).sorted() == ["efm-1", "rpc-1", "rpc-2", "rpc-3", "rpc-4"])
        let busTime = m.backfillRequests(hourly: 840, daily: 35).reduce(0, +)
        let t = try #require(m.backfillSeconds(hourly: 840, daily: 35))
        #expect(t > busTime / (1 - m.liveLoad))
        #expect(t < 2 * busTime / (1 - m.liveLoad), "the guard costs less than the live polls' own time here")
        // A device that does not collect has no model.
        #expect(EFMBusModel(device: try #require(pad.device(named: "rpc-1")), in: pad) == nil)
    }
}
