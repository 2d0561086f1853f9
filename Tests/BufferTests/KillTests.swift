import EdgeBuffer
import EdgeCore
import EdgeTestSupport
import Foundation
import Testing

/// The writer subprocess (`edgebuf-writer`) is killed with SIGKILL at random moments; every seq it logged
/// as stored — after its append returned, fsynced to a side file — must be in the buffer afterwards.
@Suite("Kill -9", .serialized)
struct KillTests {
    /// Side-file lines: `r <first> <last>` or `a <seq>`; a torn last line (no newline) is ignored.
    static func loggedSeqs(_ path: String) -> [ClosedRange<Int64>] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if !text.hasSuffix("\n") { lines.removeLast() }
        return lines.compactMap { line in
            let f = line.split(separator: " ")
            switch f.first {
            case "r": if f.count == 3, let a = Int64(f[1]), let b = Int64(f[2]) { return a...b }
            case "a": if f.count == 2, let a = Int64(f[1]) { return a...a }
            default: break
            }
            return nil
        }
    }

    static func fileSize(_ path: String) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
    }

    @Test func everyLoggedSeqSurvivesSIGKILL() async throws {
        let writer = try productPath("edgebuf-writer")
        let dir = TempDir("edged-kill")
        let db = dir.file("buffer.db"), log = dir.file("seqs.log")
        // Small enough that eviction runs during the test: logged seqs must then be in a gap record's range.
        let budget = 1 << 20
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000))
        let seed = rng.state
        var epoch: String?
        var kills = 0
        var earlyKills = 0
        var checked = 0
        var viaGaps = 0
        var evictions: Int64 = 0
        var statesChecked = 0
        for round in 0..<55 {
            let before = Self.fileSize(log)
            let child = try ChildProcess(
                writer,
                [
                    db, log, "--max-bytes", "\(budget)", "--producers", "3", "--batch", "40",
                    "--alarm-every", "7", "--linger-ms", "\(Int.random(in: 0...5, using: &rng))"
                ],
                output: dir.file("writer.out"))
            if round % 6 == 0 {
                // Sometimes during start-up: opening, checking, creating the file.
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...40, using: &rng)))
                earlyKills += 1
            } else {
                #expect(
                    await eventually(timeout: 20, poll: .milliseconds(5)) { Self.fileSize(log) > before },
                    "writer made no progress (round \(round))")
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...120, using: &rng)))
            }
            child.signal(SIGKILL)
            let status = try #require(await child.wait(timeout: 10))
            #expect(
                status & 0x7f == SIGKILL, "writer exited on its own (status \(status)); see \(dir.file("writer.out"))")
            kills += 1

            // Reopen as the daemon would after the crash, and look for every logged seq.
            let logged = Self.loggedSeqs(log)
            guard !logged.isEmpty || FileManager.default.fileExists(atPath: db) else { continue }
            let (store, notes) = try BufferStore.open(
                path: db, maxBytes: ByteCount(bytes: Int64(budget)), logger: quietLogger)
            #expect(!notes.contains { $0.contains("unusable") }, "round \(round): \(notes)")
            if let epoch {
                #expect(store.epoch == epoch, "round \(round): the file was replaced")
            } else if !logged.isEmpty {
                epoch = store.epoch
            }
            let all = try queued(store)
            let present = Set(all.map(\.seq))
            let gaps = all.compactMap(\.gap)
            var missing: [Int64] = []
            viaGaps = 0
            for range in logged {
                for seq in range where !present.contains(seq) {
                    if gaps.contains(where: { $0.covers(seq) }) { viaGaps += 1 } else { missing.append(seq) }
                }
            }
            // The state committed with each alarm event names the producer's last alarm event in the file.
            for producer in 0..<3 {
                let last = all.compactMap(\.alarm).filter { $0.device == "well-\(producer)" }.last
                #expect(
                    try await store.state("writer-\(producer)") == last?.occurrence,
                    "round \(round): producer \(producer)'s state and events disagree")
                if last != nil { statesChecked += 1 }
            }
            let firstMissing = Array(missing.prefix(5))
            #expect(
                missing.isEmpty,
                "round \(round) (seed \(seed)): \(missing.count) logged seqs lost, first \(firstMissing)")
            checked = logged.reduce(0) { $0 + $1.count }
            let stats = try await store.stats()
            #expect(stats.bytesOnDisk <= Int64(budget))
            evictions = stats.evictions
            store.close()
        }
        #expect(kills >= 50)
        #expect(checked > 1000, "too few seqs logged to mean anything")
        #expect(evictions > 0, "the budget never evicted: the gap path went untested")
        #expect(statesChecked > 20, "too few alarm states checked")
        print(
            "kill test: \(kills) SIGKILLs (\(earlyKills) during start-up), \(checked) logged seqs all found "
                + "(\(checked - viaGaps) present, \(viaGaps) evicted and covered by gap records; \(evictions) evictions); "
                + "alarm state agreed with the alarm events \(statesChecked) times")
    }

    @Test func killedWhileCreatingTheFileLeavesNoHalfMadeBuffer() async throws {
        let writer = try productPath("edgebuf-writer")
        var rng = SplitMix64(seed: 7)
        for round in 0..<12 {
            let dir = TempDir("edged-kill-create")
            let db = dir.file("buffer.db")
            let child = try ChildProcess(writer, [db, dir.file("seqs.log")], output: "/dev/null")
            try await Task.sleep(for: .microseconds(Int.random(in: 0...30_000, using: &rng)))
            child.signal(SIGKILL)
            _ = await child.wait(timeout: 10)
            let (store, notes) = try BufferStore.open(path: db, maxBytes: testBudget, logger: quietLogger)
            #expect(!notes.contains { $0.contains("unusable") }, "round \(round): \(notes)")
            _ = try await store.append(alarm: Fixtures.alarm(round))
            store.close()
        }
    }
}
