@_spi(Testing) import EdgeBuffer
import EdgeCore
import EdgeTestSupport
import Foundation
import Testing

@Suite("Buffer store")
struct BufferStoreTests {
    @Test func newFileHasEpochPragmasAndDurableSettingsOnEveryConnection() async throws {
        let dir = TempDir("edged-buf")
        let (store, notes) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget)
        defer { store.close() }
        #expect(notes.count == 1 && notes[0].contains("created"))
        #expect(store.epoch.count == 32)
        let s = try store.connectionSettings()
        #expect(s.writerSynchronous == 2 && s.readerSynchronous == 2)  // FULL
        #expect(s.journalMode == "wal")
        #expect(s.pageSize == 4096 && s.autoVacuum == 2)  // incremental, set before the first table
        #expect(Int64(s.maxPageCount) == store.budget.maxPageCount)
        #expect(Int64(s.journalSizeLimit) == store.budget.journalSizeLimit)
        #expect(Int64(s.walAutocheckpoint) == store.budget.autocheckpointPages)
        // Page caches with a stated bound (negative: KiB), the reader's smaller than the writer's.
        #expect(s.writerCacheSize == -BufferStore.writerCacheKiB && s.readerCacheSize == -BufferStore.readerCacheKiB)
        #expect(BufferStore.readerCacheKiB < BufferStore.writerCacheKiB)
        let memory = BufferStore.sqliteMemory
        #expect(memory.used > 0 && memory.used <= memory.peak)
        #expect(!FileManager.default.fileExists(atPath: dir.file("b.db.creating")))
    }

    @Test func dequeueIsServedInIndexOrderWithoutASort() async throws {
        let dir = TempDir("edged-buf")
        let (store, _) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget)
        defer { store.close() }
        let alarm = try store.dequeuePlan(.alarm).joined(separator: " | ")
        let reading = try store.dequeuePlan(.reading).joined(separator: " | ")
        #expect(alarm.contains("record_alarm") && !alarm.contains("TEMP B-TREE"), "\(alarm)")
        #expect(reading.contains("SCAN r") && !reading.contains("TEMP B-TREE"), "\(reading)")
        #expect(reading.contains("SEARCH s USING INTEGER PRIMARY KEY"), "\(reading)")
    }

    /// `edgectl status` answers from memory: before the file was ever read for its figures, readings just
    /// committed are the oldest; once nothing is queued, there is no oldest, whatever was read before.
    @Test func rememberedFiguresKnowTheOldestReadingWithoutReadingTheFile() async throws {
        let dir = TempDir("edged-buf")
        let (store, _) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget, options: fastCommit)
        defer { store.close() }
        #expect(store.rememberedStats().stats.oldestReadingMillis == nil)
        let readings = Fixtures.readings(20)
        _ = try await store.append(readings: readings, units: Fixtures.units)
        let remembered = store.rememberedStats()
        #expect(remembered.stats.readingRecords == 20)
        #expect(remembered.stats.oldestReadingMillis == readings.map(\.wallMillis).min(), "\(remembered.stats)")
        #expect(remembered.stats.oldestReadingMillis == (try await store.stats()).oldestReadingMillis)
        while let batch = try await store.nextBatch(maxRecords: 64, maxBytes: 1 << 20) {
            try await store.acknowledge(batch)
        }
        #expect(store.rememberedStats().stats.oldestReadingMillis == nil)
    }

    @Test func alarmEventsAndTheirStateCommitTogetherAndSurviveReopening() async throws {
        let dir = TempDir("edged-buf")
        let path = dir.file("b.db")
        var (store, _) = try BufferStore.open(path: path, maxBytes: testBudget, options: fastCommit)
        #expect(try await store.state("alarms") == nil)
        let seqs = try await store.append(
            alarms: [Fixtures.alarm(1), Fixtures.alarm(2), Fixtures.alarm(3)],
            state: StateEntry(key: "alarms", value: "{\"after\":3}"))
        #expect(seqs.count == 3 && seqs == Array(seqs[0]...seqs[0] + 2), "consecutive seqs: \(seqs)")
        #expect(try await store.state("alarms") == "{\"after\":3}")
        // State alone (no events) replaces it; other keys are separate; the file's own meta rows are not state.
        #expect(
            try await store.append(alarms: [], state: StateEntry(key: "alarms", value: "{\"after\":\"tick\"}")) == [])
        _ = try await store.append(alarms: [], state: StateEntry(key: "other", value: "x"))
        #expect(try await store.state("epoch") == nil)
        store.simulateCrash()  // no final checkpoint: what was committed is in the WAL

        (store, _) = try BufferStore.open(path: path, maxBytes: testBudget, options: fastCommit)
        defer { store.close() }
        #expect(try await store.state("alarms") == "{\"after\":\"tick\"}")
        #expect(try await store.state("other") == "x")
        #expect(try queued(store).compactMap(\.alarm) == [Fixtures.alarm(1), Fixtures.alarm(2), Fixtures.alarm(3)])
    }

    @Test func theClockFlagOfReadingsAndAlarmsIsStoredWithoutChangingTheirQuality() async throws {
        let dir = TempDir("edged-buf")
        let (store, _) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget, options: fastCommit)
        defer { store.close() }
        var readings = Fixtures.readings(6)
        for i in [1, 2, 4] { readings[i].clockSynchronized = false }
        readings[4].value = nil
        readings[4].quality = .bad(.exception(2))
        _ = try await store.append(readings: readings, units: Fixtures.units)
        var unsynchronizedAlarm = Fixtures.alarm(1)
        unsynchronizedAlarm.clockSynchronized = false
        _ = try await store.append(alarm: unsynchronizedAlarm)
        _ = try await store.append(alarm: Fixtures.alarm(2))
        let all = try queued(store)
        #expect(all.compactMap(\.reading) == readings.map { Fixtures.stored($0) })
        #expect(all.compactMap(\.reading).map(\.clockSynchronized) == [true, false, false, true, false, true])
        #expect(all.compactMap(\.reading)[4].quality == .bad(.exception(2)))
        #expect(all.compactMap(\.alarm).map(\.clockSynchronized) == [false, nil])
    }

    @Test func roundTripAlarmsFirstThenReadingsInSeqOrder() async throws {
        let dir = TempDir("edged-buf")
        let (store, _) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget, options: fastCommit)
        defer { store.close() }
        let readings = Fixtures.readings(300)
        let r1 = try #require(try await store.append(readings: Array(readings[0..<100]), units: Fixtures.units))
        let a1 = try await store.append(alarm: Fixtures.alarm(1))
        let r2 = try #require(try await store.append(readings: Array(readings[100...]), units: Fixtures.units))
        let a2 = try await store.append(alarm: Fixtures.alarm(2, transition: .cleared))
        #expect(r1.count == 100 && r2.count == 200)
        #expect(r1.upperBound < a1 && a1 < r2.lowerBound && r2.upperBound < a2)
        #expect(try await store.append(readings: [], units: Fixtures.units) == nil)

        let all = try queued(store)
        #expect(all.count == 302)
        #expect(all[0].alarm == Fixtures.alarm(1) && all[0].seq == a1 && all[0].lane == .alarm)
        #expect(all[1].alarm == Fixtures.alarm(2, transition: .cleared) && all[1].seq == a2)
        let stored = all.dropFirst(2)
        #expect(stored.map(\.seq) == Array(r1) + Array(r2))
        #expect(stored.map { $0.reading } == readings.map { Fixtures.stored($0) })

        // Bounded batches, acknowledged in order, drain the queue.
        var seen: [Int64] = []
        while let batch = try await store.nextBatch(maxRecords: 64, maxBytes: 1 << 20) {
            #expect(batch.count <= 64 && batch.epoch == store.epoch)
            seen += batch.records.map(\.seq)
            try await store.acknowledge(batch)
        }
        #expect(seen == all.map(\.seq))
        let stats = try await store.stats()
        #expect(stats.alarmRecords == 0 && stats.readingRecords == 0 && stats.oldestReadingMillis == nil)
        #expect(stats.lastSeq == a2)
    }

    @Test func batchesAreBoundedByBytes() async throws {
        let dir = TempDir("edged-buf")
        let (store, _) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget, options: fastCommit)
        defer { store.close() }
        _ = try await store.append(readings: Fixtures.readings(1000), units: Fixtures.units)
        let batch = try #require(try await store.nextBatch(maxRecords: 5000, maxBytes: 10_000))
        #expect(batch.estimatedBytes <= 10_000 && batch.count > 50 && batch.count < 200)
    }

    @Test func seqsAreNeverReusedAfterTheQueueDrainsAndTheFileReopens() async throws {
        let dir = TempDir("edged-buf")
        let path = dir.file("b.db")
        var last: Int64 = 0
        var epoch = ""
        for round in 0..<3 {
            let (store, _) = try BufferStore.open(path: path, maxBytes: testBudget, options: fastCommit)
            if round == 0 { epoch = store.epoch } else { #expect(store.epoch == epoch) }
            let r = try #require(try await store.append(readings: Fixtures.readings(10), units: Fixtures.units))
            #expect(r.lowerBound > last)
            last = r.upperBound
            while let b = try await store.nextBatch(maxRecords: 100, maxBytes: 1 << 20) {
                try await store.acknowledge(b)
            }
            #expect(try await store.stats().readingRecords == 0)
            store.close()
        }
    }

    @Test func deadLetteredBatchesAreKeptCountedAndOutOfTheQueue() async throws {
        let dir = TempDir("edged-buf")
        let (store, _) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget, options: fastCommit)
        defer { store.close() }
        _ = try await store.append(alarm: Fixtures.alarm(1))
        _ = try await store.append(readings: Fixtures.readings(50), units: Fixtures.units)
        let bad = try #require(try await store.nextBatch(maxRecords: 20, maxBytes: 1 << 20))
        try await store.deadLetter(bad, reason: "HTTP 422: field value out of range")
        let stats = try await store.stats()
        #expect(stats.deadLetterRecords == 20 && stats.deadLetterBatches == 1)
        #expect(stats.alarmRecords == 0 && stats.readingRecords == 31)
        let kept = try store.deadLetters(maxRecords: 100)
        #expect(kept.map(\.seq) == bad.records.map(\.seq).sorted())
        #expect(kept.allSatisfy { $0.lane == .deadLetter })
        #expect(kept.compactMap(\.alarm) == [Fixtures.alarm(1)])
        let batches = try store.deadLetterBatches()
        #expect(batches.count == 1 && batches[0].reason.contains("422") && batches[0].records == 20)
        let next = try #require(try await store.nextBatch(maxRecords: 100, maxBytes: 1 << 20))
        #expect(next.records.first?.seq == bad.readingSeqs!.upperBound + 1)
    }

    @Test func staleBatchesFromAnotherEpochAreRefused() async throws {
        let dir = TempDir("edged-buf")
        let (store, _) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget, options: fastCommit)
        defer { store.close() }
        _ = try await store.append(readings: Fixtures.readings(5), units: Fixtures.units)
        var batch = try #require(try await store.nextBatch(maxRecords: 10, maxBytes: 1 << 20))
        batch.epoch = "someone-else"
        #expect(throws: BufferError.self) { try store.acknowledge(batch) }
        #expect(try await store.stats().readingRecords == 5)
    }

    @Test func groupCommitPutsConcurrentAppendsInOneTransaction() async throws {
        let dir = TempDir("edged-buf")
        // Commit at 80 records, or after 10 min: appends that return well before that were committed by count
        // (the margin is wide so a loaded test machine cannot make the test fail).
        let options = BufferOptions(groupCommit: GroupCommitPolicy(maxRecords: 80, maxDelay: .seconds(600)))
        let (store, _) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget, options: options)
        defer { store.close() }
        let t0 = ContinuousClock.now
        let ranges = try await withThrowingTaskGroup(of: ClosedRange<Int64>?.self) { group in
            for k in 0..<8 {
                group.addTask {
                    try await store.append(readings: Fixtures.readings(10, start: k * 10), units: Fixtures.units)
                }
            }
            var out: [ClosedRange<Int64>] = []
            for try await r in group { out.append(r!) }
            return out.sorted { $0.lowerBound < $1.lowerBound }
        }
        #expect(ContinuousClock.now - t0 < .seconds(300))
        #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound + 1 == $1.lowerBound })

        // An alarm does not wait for the group: it commits at once, with the readings waiting before it.
        let t1 = ContinuousClock.now
        async let waiting = store.append(readings: Fixtures.readings(5, start: 100), units: Fixtures.units)
        try await Task.sleep(for: .milliseconds(20))
        let alarmSeq = try await store.append(alarm: Fixtures.alarm(3))
        let readingSeqs = try #require(try await waiting)
        #expect(ContinuousClock.now - t1 < .seconds(300))
        #expect(readingSeqs.upperBound < alarmSeq)
    }

    @Test func closeCommitsWhatIsWaiting() async throws {
        let dir = TempDir("edged-buf")
        let path = dir.file("b.db")
        // A long linger: the appends are still waiting when close() is called.
        let options = BufferOptions(groupCommit: GroupCommitPolicy(maxRecords: 10_000, maxDelay: .seconds(30)))
        let (store, _) = try BufferStore.open(path: path, maxBytes: testBudget, options: options)
        let pending = (0..<3).map { k in
            Task { () async throws(BufferError) -> ClosedRange<Int64>? in
                try await store.append(readings: Fixtures.readings(20, start: k * 20), units: Fixtures.units)
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        store.close()
        var seqs: [Int64] = []
        for t in pending { seqs += Array(try #require(try await t.value)) }
        let (again, _) = try BufferStore.open(path: path, maxBytes: testBudget)
        defer { again.close() }
        #expect(try queued(again).map(\.seq) == seqs.sorted())
    }

    @Test func closedStoreRefusesWork() async throws {
        let dir = TempDir("edged-buf")
        let (store, _) = try BufferStore.open(path: dir.file("b.db"), maxBytes: testBudget)
        store.close()
        await #expect(throws: BufferError.self) {
            try await store.append(readings: Fixtures.readings(1), units: Fixtures.units)
        }
        #expect(throws: BufferError.self) { try store.stats() }
        store.close()  // twice is fine
    }

    @Test func retentionEvictsOldReadingsWithAGap() async throws {
        let dir = TempDir("edged-buf")
        let now = Fixtures.readings(1)[0].wallMillis + 10 * 86_400_000
        let options = BufferOptions(
            groupCommit: GroupCommitPolicy(maxRecords: 1000, maxDelay: TimeSpan(milliseconds: 2)),
            retention: .hours(24), idleUpkeepDelay: TimeSpan(milliseconds: 50), wallClock: { now })
        let (store, _) = try BufferStore.open(
            path: dir.file("b.db"), maxBytes: testBudget, logger: quietLogger, options: options)
        defer { store.close() }
        _ = try await store.append(readings: Fixtures.readings(100), units: Fixtures.units)  // ten days old
        let fresh = Fixtures.readings(10, wall: now - 1000)
        let kept = try #require(try await store.append(readings: fresh, units: Fixtures.units))
        #expect(await eventually(timeout: 10) { (try? store.stats().evictedRecords) == 100 })
        let all = try queued(store)
        #expect(all.filter { $0.reading != nil }.map(\.seq) == Array(kept))
        let gap = try #require(all.compactMap(\.gap).first)
        #expect(gap.count == 100 && gap.reason == .retention)
    }
}
