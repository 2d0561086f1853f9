import EdgeBuffer
import EdgeCore
import EdgeTestSupport
import Foundation
import Testing

@Suite("Corrupt or unreadable buffer files")
struct CorruptFileTests {
    enum Damage: String, CaseIterable, CustomStringConvertible {
        /// Garbage over the header: not a database.
        case header
        /// Garbage over b-tree pages in the middle: fails quick_check or reading.
        case pages
        /// Garbage over the whole file.
        case everything
        /// A valid SQLite file of someone else's.
        case foreign
        var description: String { rawValue }
    }

    /// A buffer with records in it, closed (its WAL checkpointed into the file).
    static func filledBuffer(_ path: String) async throws -> String {
        let (store, _) = try BufferStore.open(path: path, maxBytes: testBudget, options: fastCommit)
        _ = try await store.append(readings: Fixtures.readings(20_000), units: Fixtures.units)
        _ = try await store.append(alarm: Fixtures.alarm(1))
        let epoch = store.epoch
        store.close()
        return epoch
    }

    static func damage(_ path: String, _ how: Damage) throws {
        if how == .foreign {
            unlink(path)
            let sqlite = Process()
            sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
            sqlite.arguments = [path, "CREATE TABLE t(x); INSERT INTO t VALUES (1);"]
            try sqlite.run()
            sqlite.waitUntilExit()
            return
        }
        var g = SplitMix64(seed: 42)
        let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber).intValue
        // Closed exactly once: the tests run in parallel in one process, and a descriptor closed twice may by
        // then belong to another test's SQLite file (its writes then fail with EBADF, SQLite code 778).
        let fd = open(path, O_WRONLY)
        try #require(fd >= 0, "open \(path): errno \(errno)")
        defer { close(fd) }
        func garbage(at offset: Int, _ count: Int) {
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &g) }
            _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, count, off_t(offset)) }
        }
        switch how {
        case .header: garbage(at: 0, 100)
        case .pages: for page in stride(from: 3, to: size / 4096, by: 4) { garbage(at: page * 4096 + 50, 300) }
        case .everything: garbage(at: 0, size)
        case .foreign: break
        }
    }

    @Test(arguments: Damage.allCases)
    func corruptFileIsMovedAsideAndANewEpochStarts(_ how: Damage) async throws {
        if how == .foreign, !FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3") { return }
        let dir = TempDir("edged-corrupt")
        let path = dir.file("buffer.db")
        let oldEpoch = try await Self.filledBuffer(path)
        try Self.damage(path, how)
        let damaged = try Data(contentsOf: URL(fileURLWithPath: path))

        let (store, notes) = try BufferStore.open(
            path: path, maxBytes: testBudget, logger: quietLogger, options: fastCommit)
        defer { store.close() }
        // Moved aside, kept byte for byte.
        let note = try #require(notes.first { $0.contains("moved to") }, "\(notes)")
        let aside = try #require(
            try FileManager.default.contentsOfDirectory(atPath: dir.path).first {
                $0.hasPrefix("buffer.db.corrupt-") && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm")
            })
        #expect(note.contains(aside))
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file(aside))) == damaged)
        // A new file with a new epoch, working.
        #expect(store.epoch != oldEpoch && store.epoch.count == 32)
        #expect(try await store.stats().readingRecords == 0)
        let seqs = try #require(try await store.append(readings: Fixtures.readings(10), units: Fixtures.units))
        let batch = try #require(try await store.nextBatch(maxRecords: 100, maxBytes: 1 << 20))
        #expect(batch.records.map(\.seq) == Array(seqs) && batch.epoch == store.epoch)
        store.close()
        // And it reopens cleanly: no crash loop, same new epoch.
        let (again, notes2) = try BufferStore.open(path: path, maxBytes: testBudget)
        #expect(again.epoch == store.epoch && notes2.isEmpty)
        again.close()
    }

    @Test func aTruncatedFileIsMovedAsideToo() async throws {
        let dir = TempDir("edged-corrupt")
        let path = dir.file("buffer.db")
        _ = try await Self.filledBuffer(path)
        #expect(truncate(path, 4096 * 3) == 0)
        let (store, notes) = try BufferStore.open(path: path, maxBytes: testBudget, logger: quietLogger)
        defer { store.close() }
        #expect(notes.contains { $0.contains("moved to") }, "\(notes)")
        _ = try await store.append(alarm: Fixtures.alarm(2))
    }
}
