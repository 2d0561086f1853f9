import EdgeBuffer
import EdgeCore
import EdgeTestSupport
import Foundation
import Testing
import Uplink

/// The monthly data budget against the reference receiver: near the cap only alarms, gap records and one
/// reading per series per hour go out; every other reading is accounted for by a `data-budget` gap record.
@Suite(.serialized) struct UplinkBudgetTests {
    @Test func nearTheCapOnlyAlarmsGapsAndHourlySnapshotsAreSent() async throws {
        let rx = try ReferenceReceiver()
        let h = try UplinkHarness(rx, maxRecords: 100) { $0.monthlyBudget = ByteCount(bytes: 1_000_000) }
        try await h.setMonthUsage(950_000)  // 95 %: saving

        // Three whole UTC hours of four series, one reading a minute, ending more than an hour ago.
        let hour: Int64 = 3_600_000
        let start = (Int64(Date().timeIntervalSince1970 * 1000) / hour - 4) * hour
        let device = try #require(h.config.devices.first)
        let tags = Array(h.config.effectiveTags(of: device).filter { $0.type != .string }.prefix(4))
        var readings: [Reading] = []
        for minute in 0..<180 {
            for (i, tag) in tags.enumerated() {
                readings.append(
                    Reading(
                        device: device.name, tag: tag.name, value: .number(Double(100 + i + minute % 7)),
                        quality: .good,
                        wallMillis: start + Int64(minute) * 60_000 + Int64(i), monotonicNanos: UInt64(minute)))
            }
        }
        let seqs = try #require(try await h.store.append(readings: readings, units: h.units))
        let alarmSeq = try await h.appendAlarm()

        let service = h.start()
        #expect(await h.drained(timeout: 60), "\(service.status) queued \(h.queued)")
        await h.stop()

        let records = try rx.records(epoch: h.epoch, limit: 100_000)
        let sentReadings = records.filter { $0["kind"] as? String == "reading" }
        let gaps = records.filter { $0["kind"] as? String == "gap" }.compactMap { $0["record"] as? [String: Any] }
        // One snapshot per series per hour: the first reading of each hour.
        #expect(sentReadings.count == tags.count * 3, "\(sentReadings.count) readings sent")
        let expectedSnapshots = Set(
            zip(seqs, readings).filter { _, r in (r.wallMillis - start) % hour < 60_000 }.map { Int($0.0) })
        #expect(Set(sentReadings.compactMap { ($0["seq"] as? NSNumber)?.intValue }) == expectedSnapshots)
        // Every other reading is counted by a data-budget gap record whose range covers it.
        #expect(!gaps.isEmpty && gaps.allSatisfy { $0["reason"] as? String == "data-budget" }, "\(gaps)")
        let counted = gaps.reduce(0) { $0 + (($1["count"] as? NSNumber)?.intValue ?? 0) }
        #expect(counted == readings.count - expectedSnapshots.count)
        let ranges = gaps.compactMap { g -> ClosedRange<Int>? in
            guard let a = (g["firstSeq"] as? NSNumber)?.intValue, let b = (g["lastSeq"] as? NSNumber)?.intValue else {
                return nil
            }
            return a...b
        }
        let uncovered = seqs.map(Int.init).filter { seq in
            !expectedSnapshots.contains(seq) && !ranges.contains { $0.contains(seq) }
        }
        #expect(uncovered.isEmpty, "dropped readings no gap accounts for: \(uncovered.prefix(10))")
        // The alarm event went out, and the uplink reported that it is saving data.
        #expect(records.contains { ($0["seq"] as? NSNumber)?.int64Value == alarmSeq })
        #expect(h.alarmChanges.summary == ["+" + UplinkService.dataBudgetAlarm], "\(h.alarmChanges.summary)")
        #expect(service.status.dataBudgetMode == "saving" && service.status.readingsDroppedForBudget == Int64(counted))
        // The month's usage grew by what went over the wire and was saved in the buffer file.
        let saved = try #require(try h.savedMonthUsage())
        #expect(
            saved.bytes > 950_000 && saved.bytes == service.status.monthBytes,
            "saved \(saved), status \(service.status.monthBytes)")
        #expect(service.status.monthBytes - 950_000 == service.status.bytesSent + service.status.bytesReceived)
    }

    @Test func belowTheCapEverythingIsSentAndTheUsageCounted() async throws {
        let rx = try ReferenceReceiver()
        let h = try UplinkHarness(rx, maxRecords: 100) { $0.monthlyBudget = ByteCount(bytes: 100_000_000) }
        let seqs = try await h.appendReadings(500)
        let service = h.start()
        #expect(await h.drained(timeout: 60), "\(service.status)")
        await h.stop()
        #expect(try rx.storedSeqs(epoch: h.epoch).count == seqs.count)
        #expect(service.status.dataBudgetMode == "normal" && service.status.readingsDroppedForBudget == 0)
        #expect(h.alarmChanges.all.isEmpty)
        let saved = try #require(try h.savedMonthUsage())
        #expect(saved.bytes > 0 && saved.bytes == service.status.bytesSent + service.status.bytesReceived)
    }
}
