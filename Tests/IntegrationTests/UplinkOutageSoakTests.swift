import EdgeCore
import EdgeTestSupport
import Foundation
import Testing

/// How soon uploads resume after the endpoint comes back, against the reference receiver, with the waits
/// drawn at random as in the field. Minutes of real time: `make soak` only (EDGED_SOAK=1).
///
/// Before the `UplinkScheduler`, after 60 s of 503 the first batch was stored 19 s and 46 s after the
/// endpoint's return (two runs), and 132 s after a 5-minute outage.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["EDGED_SOAK"] != nil))
struct UplinkOutageSoakTests {
    /// One outage: the receiver answers 503 for `outage`, then stores again. Returns the seconds from its
    /// return to the first stored batch, and the requests it answered 503 to.
    static func outage(seconds outage: Double) async throws -> (resumed: Double, attempts: Int) {
        let rx = try ReferenceReceiver()
        let h = try UplinkHarness(rx, maxRecords: 100, randomWaits: true)
        try await h.appendReadings(200)
        try rx.setFault(#"{"mode": "status", "code": 503}"#)
        h.start()
        try await Task.sleep(for: .seconds(outage))
        try rx.setFault(#"{"mode": "none"}"#)
        let back = ContinuousClock.now
        let resumed = await eventually(timeout: 90) { ((try? rx.stats().recordsStored) ?? 0) > 0 }
        let after = ContinuousClock.now - back
        #expect(await h.drained(timeout: 60), "buffer still holds \(h.queued)")
        await h.stop()
        let s = try rx.stats()
        #expect(resumed, "nothing stored 90 s after the endpoint came back")
        #expect(s.recordsStored == 200 && s.duplicates == 0)
        let seconds = Double(after.components.seconds) + Double(after.components.attoseconds) / 1e18
        return (seconds, s.answered(503))
    }

    /// Five 60-second outages and one of 5 minutes, side by side: uploads resume within 60 s of the
    /// endpoint's return every time, with a median of at most 15 s after the 60-second ones.
    @Test func uploadsResumeWithinSecondsOfTheEndpointsReturn() async throws {
        let results = try await withThrowingTaskGroup(of: (Double, Double, Int).self) { group in
            for outage in [60.0, 60, 60, 60, 60, 300] {
                group.addTask {
                    let r = try await Self.outage(seconds: outage)
                    return (outage, r.resumed, r.attempts)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for (outage, resumed, attempts) in results.sorted(by: { $0.0 < $1.0 }) {
            print(
                "uplink outage of \(Int(outage)) s: first batch stored \(String(format: "%.1f", resumed)) s after "
                    + "the endpoint's return; \(attempts) attempts answered 503")
            #expect(resumed <= 60, "\(resumed) s after a \(outage) s outage")
        }
        let short = results.filter { $0.0 == 60 }.map(\.1).sorted()
        #expect(short[short.count / 2] <= 15, "median \(short[short.count / 2]) s after 60 s outages: \(short)")
        // A long outage: after its first 5 minutes at most one attempt a minute; in the first 5 minutes the
        // backoff grows to its 20 s cap (about 30 attempts).
        if let long = results.first(where: { $0.0 == 300 }) { #expect(long.2 <= 45, "\(long.2) attempts in 5 min") }
    }
}
