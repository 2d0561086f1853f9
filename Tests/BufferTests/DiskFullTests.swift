import EdgeBuffer
import EdgeCore
import EdgeTestSupport
import Foundation
import Testing

/// A small tmpfs, mounted for the test (needs CAP_SYS_ADMIN; the test is skipped without it).
final class SmallFilesystem: @unchecked Sendable {
    let dir = TempDir("edged-tmpfs")
    init?(bytes: Int) {
        guard mount("tmpfs", dir.path, "tmpfs", 0, "size=\(bytes)") == 0 else { return nil }
    }
    deinit { umount2(dir.path, Int32(MNT_DETACH)) }

    static let available: Bool = SmallFilesystem(bytes: 1 << 20) != nil
}

@Suite("Disk full")
struct DiskFullTests {
    @Test(.enabled(if: SmallFilesystem.available, "needs permission to mount a tmpfs"))
    func diskFullCountsWhatWasNotStoredKeepsRunningAndRecovers() async throws {
        let fs = try #require(SmallFilesystem(bytes: 3 << 20))
        let path = fs.dir.file("buffer.db")
        let filler = fs.dir.file("filler")
        // The budget is far above what the filesystem holds: the disk fills before the budget does.
        let (store, _) = try BufferStore.open(
            path: path, maxBytes: ByteCount(bytes: 256 << 20), logger: quietLogger, options: fastCommit)
        defer { store.close() }
        try Data(count: 1 << 20).write(to: URL(fileURLWithPath: filler))

        var stored: [Int64: Reading] = [:]
        var notStored = 0
        var failures = 0
        var start = 0
        // Fill the disk, then keep writing through a run of failures.
        while failures < 10 && start < 2_000_000 {
            let readings = Fixtures.readings(500, start: start)
            start += 500
            do {
                let seqs = try await store.append(readings: readings, units: Fixtures.units)!
                for (s, r) in zip(seqs, readings) { stored[s] = r }
            } catch {
                #expect(error.code == .diskFull || error.code == .ioError, "\(error)")
                #expect(error.countsAsNotStored)
                failures += 1
                notStored += readings.count
            }
        }
        #expect(failures == 10, "the disk never filled")
        #expect(try await store.stats().notStoredRecords == Int64(notStored))

        // Space returns; the next append succeeds and the gap record goes in with it.
        try FileManager.default.removeItem(atPath: filler)
        let after = try #require(
            try await store.append(readings: Fixtures.readings(10, start: start), units: Fixtures.units))
        let all = try queued(store)
        let gaps = all.compactMap(\.gap)
        #expect(gaps.count == 1)
        let gap = try #require(gaps.first)
        #expect(gap.reason == .diskFull && gap.count == Int64(notStored))
        #expect(gap.lastSeq - gap.firstSeq + 1 == gap.count && gap.firstSeq > stored.keys.max()!)
        let gapSeq = try #require(all.first { $0.gap != nil }?.seq)
        #expect(gapSeq > gap.lastSeq && gapSeq < after.lowerBound)
        // Nothing that was reported stored is missing.
        let present = Set(all.map(\.seq))
        #expect(stored.keys.allSatisfy { present.contains($0) })
        #expect(try await store.stats().notStoredRecords == Int64(notStored))
    }
}
