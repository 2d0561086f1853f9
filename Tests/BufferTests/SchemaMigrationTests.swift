@_spi(Testing) import EdgeBuffer
import EdgeCore
import EdgeTestSupport
import Foundation
import GRDB
import Testing

/// Upgrades and downgrades of the buffer file: an older schema is migrated in place with nothing lost; a
/// newer one (a downgrade of edged) is refused with a clear error and left exactly as it was.
@Suite struct SchemaMigrationTests {
    /// The EFM tables as schema 1 made them.
    static let efmTablesV1 = """
        CREATE TABLE efm_record(
            id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, archive TEXT NOT NULL, key TEXT NOT NULL,
            hash TEXT NOT NULL, device_time TEXT NOT NULL, collected INTEGER NOT NULL, raw BLOB NOT NULL,
            decoded TEXT NOT NULL, uploaded INTEGER NOT NULL DEFAULT 0, UNIQUE(device, archive, key));
        CREATE TABLE efm_gap(
            device TEXT NOT NULL, archive TEXT NOT NULL, from_time TEXT NOT NULL, to_time TEXT NOT NULL,
            periods INTEGER NOT NULL, noted INTEGER NOT NULL,
            PRIMARY KEY(device, archive, from_time, to_time)) WITHOUT ROWID;
        """

    /// A buffer file with 3 readings queued, turned into schema `schema` (with schema-1 EFM tables holding two
    /// hourly records and a gap when `efm`).
    static func file(schema: String, efm: Bool) async throws -> (TempDir, String) {
        let dir = TempDir("edged-schema")
        let path = dir.file("b.db")
        let (store, _) = try BufferStore.open(path: path, maxBytes: testBudget)
        let readings = (0..<3).map {
            Reading(
                device: "rpc-1", tag: "tp", value: .number(Double($0)), quality: .good,
                wallMillis: Int64(Date().timeIntervalSince1970 * 1000), monotonicNanos: UInt64($0))
        }
        _ = try await store.append(readings: readings, units: { _, _ in "psi" })
        store.close()
        let q = try DatabaseQueue(path: path)
        try await q.write { db in
            if efm {
                try db.execute(sql: Self.efmTablesV1)
                let record = try ArchiveRecord(
                    raw: EnronRecordEncoder.archiveRecord(
                        EFMProfile.scanner2000.hourly.layout,
                        at: DeviceTimestamp(year: 2026, month: 11, day: 1, hour: 9, minute: 0, second: 0)!,
                        values: (0..<16).map(Float.init), order: .abcd),
                    archive: EFMProfile.scanner2000.hourly, index: 9, order: .abcd)
                for key in ["hourly@2026-11-01T09:00:00", "hourly@2026-11-01T10:00:00"] {
                    let decoded = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
                    try db.execute(
                        sql: """
                            INSERT INTO efm_record(device, archive, key, hash, device_time, collected, raw, decoded)
                            VALUES ('fc-1', 'hourly', ?, ?, ?, 5, ?, ?)
                            """,
                        arguments: [key, record.identity.hash, String(key.dropFirst(7)), Data(record.raw), decoded])
                }
                try db.execute(
                    sql:
                        "INSERT INTO efm_gap VALUES ('fc-1', 'hourly', '2026-10-01T00:00:00', '2026-10-03T00:00:00', 47, 5)"
                )
            }
            try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'schema'", arguments: [schema])
        }
        try q.close()
        return (dir, path)
    }

    @Test func schemaOneIsMigratedAndItsEFMRecordsAreQueuedOnce() async throws {
        let (dir, path) = try await Self.file(schema: "1", efm: true)
        _ = dir
        let (store, notes) = try BufferStore.open(path: path, maxBytes: testBudget)
        defer { store.close() }
        #expect(notes.contains { $0.contains("migrated from schema 1 to 2") }, "\(notes)")
        let batch = try #require(try await store.nextBatch(maxRecords: 100, maxBytes: 1 << 20))
        // The readings (seqs 1–3) stay; the two EFM records and the gap get seqs 4–6, queued once.
        #expect(batch.records.filter { $0.lane == .reading }.map(\.seq) == [1, 2, 3])
        #expect(batch.efmSeqs == [4, 5, 6])
        #expect(
            try store.efmRecords(device: "fc-1", archive: "hourly").map(\.key) == [
                "hourly@2026-11-01T09:00:00", "hourly@2026-11-01T10:00:00"
            ])
        #expect(try store.efmCounts(device: "fc-1").gaps == ["hourly": 1])
        // A new record after the migration takes the next seq.
        _ = try await store.append(readings: [], units: { _, _ in nil })
        let last = try await store.stats().lastSeq
        #expect(last == 6, "lastSeq \(last)")
        store.close()
        // Opened again: already at the current schema, nothing migrated twice.
        let (again, notes2) = try BufferStore.open(path: path, maxBytes: testBudget)
        defer { again.close() }
        #expect(!notes2.contains { $0.contains("migrated") })
        #expect(try await again.nextBatch(maxRecords: 100, maxBytes: 1 << 20)?.count == 6)
    }

    @Test func schemaOneWithoutEFMTablesIsMigrated() async throws {
        let (dir, path) = try await Self.file(schema: "1", efm: false)
        _ = dir
        let (store, notes) = try BufferStore.open(path: path, maxBytes: testBudget)
        defer { store.close() }
        #expect(notes.contains { $0.contains("migrated") })
        #expect(try await store.nextBatch(maxRecords: 100, maxBytes: 1 << 20)?.count == 3)
    }

    @Test func aFileFromANewerEdgedIsRefusedAndLeftAsItIs() async throws {
        let (dir, path) = try await Self.file(schema: "3", efm: false)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect {
            _ = try BufferStore.open(path: path, maxBytes: testBudget)
        } throws: { error in
            guard let e = error as? BufferError else { return false }
            return e.code == .newerSchema && e.detail.contains("schema 3, written by a newer edged")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the file is left exactly as it was")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).allSatisfy { !$0.contains("corrupt") })
    }
}
