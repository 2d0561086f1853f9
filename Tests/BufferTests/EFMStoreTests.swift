import EdgeBuffer
import EdgeCore
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
}
