@_spi(Testing) import EdgeBuffer
import EdgeCore
import EdgeSystem
import EdgeTestSupport
import Foundation
import Testing

/// EFM records in a real buffer file: stored once, never written over, with their cursor in the same
/// transaction, and still there after the file is closed and opened again.
@Suite struct EFMStoreTests {
    func row(_ hour: Int, bytes: [UInt8]? = nil) -> EFMRow {
        let raw = bytes ?? [UInt8(hour), 1, 2, 3]
        return EFMRow(
            key: "hourly/2026-12-01T\(hour < 10 ? "0" : "")\(hour):00:00",
            hash: RecordIdentity.fnv1a64Hex(raw), deviceTime: "2026-12-01 \(hour):00:00", collectedWallMillis: 1,
            raw: raw, decoded: #"{"hour":\#(hour)}"#)
    }

    @Test func aRecordCollectedTwiceIsStoredOnceAndAChangedOneIsKeptAside() async throws {
        let dir = TempDir("edged-efm")
        let (store, _) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget)
        let first = try await store.storeEFM(
            EFMWrite(device: "fc-1", archive: "hourly", rows: (0..<5).map { row($0) }, cursor: #"{"index":5}"#))
        #expect(first.stored == 5 && first.duplicates == 0 && first.conflicts.isEmpty)
        // A crash between the commit and the collector's next step reads the same records again.
        let again = try await store.storeEFM(
            EFMWrite(device: "fc-1", archive: "hourly", rows: (3..<7).map { row($0) }, cursor: #"{"index":7}"#))
        #expect(again.stored == 2 && again.duplicates == 2)
        // Hour 4 changed on the device after it was collected: a conflict, the stored bytes stay.
        let changed = try await store.storeEFM(
            EFMWrite(device: "fc-1", archive: "hourly", rows: [row(4, bytes: [9, 9, 9, 9])], cursor: nil))
        #expect(changed.stored == 0 && changed.conflicts == [row(4).key])
        let records = try store.efmRecords(device: "fc-1", archive: "hourly")
        #expect(records.map(\.key) == (0..<7).map { row($0).key })
        #expect(records.first { $0.key == row(4).key }?.raw == row(4).raw)
        #expect(try store.efmCursors(device: "fc-1") == ["hourly": #"{"index":7}"#], "a nil cursor keeps the saved one")
        #expect(try store.efmCounts(device: "fc-1").conflicts == ["hourly": 1])
        store.close()

        let (reopened, _) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget)
        defer { reopened.close() }
        #expect(try reopened.efmRecords(device: "fc-1", archive: "hourly").count == 7)
        #expect(try reopened.efmCursors(device: "fc-1")["hourly"] == #"{"index":7}"#)
        #expect(try reopened.efmCursors(device: "fc-2").isEmpty)
    }

    /// A gap found twice (edged restarted before the next store) is recorded once.
    @Test func aGapIsRecordedOnce() async throws {
        let dir = TempDir("edged-efm")
        let (store, _) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget)
        defer { store.close() }
        let gap = EFMGapRow(from: "2026-11-01 00:00:00", to: "2026-11-20 00:00:00", periods: 456, notedWallMillis: 1)
        for _ in 0..<2 {
            _ = try await store.storeEFM(
                EFMWrite(device: "fc-1", archive: "hourly", rows: [], gaps: [gap], cursor: nil))
        }
        #expect(try store.efmCounts(device: "fc-1").gaps == ["hourly": 1])
    }

    /// The EFM lane: records take seqs from the record sequence (between readings), go in the batch after the
    /// alarm events and before the readings, encode as version 2, and are marked uploaded — not deleted — when
    /// the server stored them; a rejected batch marks them rejected, never resent. Uploaded records older than
    /// the retention are pruned at upkeep.
    @Test func efmRecordsTravelAheadOfReadingsAndStayAfterUpload() async throws {
        let dir = TempDir("edged-efm")
        let clock = Locked(Int64(1_800_000_000_000))
        let (store, _) = try BufferStore.open(
            path: dir.file("b.db"), maxBytes: testBudget,
            options: BufferOptions(retention: .hours(24), wallClock: { clock.withLock { $0 } }))
        defer { store.close() }
        let readings = (0..<3).map {
            Reading(
                device: "rpc-1", tag: "tp", value: .number(Double($0)), quality: .good,
                wallMillis: clock.withLock { $0 } + Int64($0),
                monotonicNanos: UInt64($0))
        }
        _ = try await store.append(readings: readings, units: { _, _ in "psi" })
        var p = EFMProfile.scanner2000
        p.hourly.capacity.value = 10
        let raw = EnronRecordEncoder.archiveRecord(
            p.hourly.layout, at: DeviceTimestamp(year: 2026, month: 11, day: 1, hour: 9, minute: 0, second: 0)!,
            values: (0..<16).map { Float($0) + 0.5 }, order: .abcd)
        let record = try ArchiveRecord(raw: raw, archive: p.hourly, index: 3, order: .abcd)
        let write = try EFMWrite(
            device: "fc-1", meter: "M-1", contractHour: 9, profile: p, archive: "hourly", records: [record], events: [],
            gaps: [], cursor: nil, collectedWallMillis: clock.withLock { $0 })
        #expect(try await store.storeEFM(write).stored == 1)
        _ = try await store.append(readings: readings, units: { _, _ in "psi" })

        let batch = try #require(try await store.nextBatch(maxRecords: 100, maxBytes: 1 << 20))
        #expect(batch.records.map(\.lane) == [.efm, .reading, .reading, .reading, .reading, .reading, .reading])
        #expect(batch.efmSeqs == [4], "the EFM record took the seq after the first three readings")
        let body = String(
            decoding: BatchEncoder(
                sender: BatchSender(gateway: "gw", tenant: "t", site: "s", software: "1"), formats: [:]
            ).encode(batch, sentAt: 0, clockSynchronized: true), as: UTF8.self)
        #expect(body.hasPrefix(#"{"schema":"wellpulse.edge.batch/2""#))
        #expect(
            body.contains(
                #""efm":[{"seq":4,"kind":"hourly","device":"fc-1","meter":"M-1","contractHour":9,"deviceTime":"2026-11-01T09:00:00","key":"hourly@2026-11-01T09:00:00","hash":"\#(record.identity.hash)""#
            ), "\(body)")
        #expect(
            body.contains(#""values":{"fr1_volume":0.5,"fr1_mass":1.5,"#)
                && body.contains(#""units":{"fr1_volume":"MCF""#))

        try await store.acknowledge(batch)
        #expect(try await store.nextBatch(maxRecords: 100, maxBytes: 1 << 20) == nil)
        let kept = try store.efmRecords(device: "fc-1", archive: "hourly")
        #expect(kept.map(\.upload) == [1] && kept.map(\.seq) == [4])
        #expect(try store.efmCounts(device: "fc-1").uploaded == 1)

        // Rejected by the server: kept, marked, not sent again.
        let second = try EFMWrite(
            device: "fc-1", meter: "M-1", contractHour: 9, profile: p, archive: "hourly",
            records: [try ArchiveRecord(raw: raw.map { $0 }, archive: p.hourly, index: 3, order: .abcd)], events: [],
            gaps: [
                EFMCollector.Gap(
                    archive: .hourly,
                    lastCollected: .init(index: 3, timestamp: record.timestamp),
                    oldestAvailable: .init(
                        index: 5,
                        timestamp: DeviceTimestamp(secondsSince2000: record.timestamp.secondsSince2000 + 5 * 3600)))
            ],
            cursor: nil, collectedWallMillis: clock.withLock { $0 })
        #expect(try await store.storeEFM(second).duplicates == 1)
        let gapBatch = try #require(try await store.nextBatch(maxRecords: 100, maxBytes: 1 << 20))
        #expect(
            gapBatch.records.map(\.lane) == [.efm]
                && gapBatch.records.first?.payload
                    == .efmGap(
                        EFMGapUpload(
                            kind: "hourly", device: "fc-1", meter: "M-1", from: "2026-11-01T09:00:00",
                            to: "2026-11-01T14:00:00", periods: 4, notedWallMillis: clock.withLock { $0 }))
        )
        try await store.deadLetter(gapBatch, reason: "test")
        #expect(try await store.nextBatch(maxRecords: 100, maxBytes: 1 << 20) == nil)
        #expect(try store.efmCounts(device: "fc-1").rejected == 1)

        // A day and more later: the uploaded record is pruned, the rejected gap stays.
        clock.withLock { $0 += 25 * 3_600_000 }
        store.runUpkeep()
        #expect(try store.efmRecords(device: "fc-1", archive: "hourly").isEmpty)
        #expect(try store.efmCounts(device: "fc-1").gaps == ["hourly": 1])
    }
}
