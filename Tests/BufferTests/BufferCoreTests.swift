import EdgeCore
import Testing

@Suite("Buffer core: budget, group commit, gaps, batches")
struct BufferCoreTests {
    @Test func budgetSplitAddsUpAndRefusesTinyBudgets() throws {
        #expect(BufferBudget(maxBytes: 512 << 10) == nil)
        for bytes: Int64 in [1 << 20, 8 << 20, 256 << 20, 4 << 30] {
            let b = try #require(BufferBudget(maxBytes: bytes))
            #expect(b.databaseBytes + b.walBytes + BufferBudget.shmBytes <= bytes)
            #expect(b.maxPageCount * BufferBudget.pageSize <= b.databaseBytes)
            #expect(b.walCheckpointBytes + b.maxTransactionBytes < b.walBytes)
            #expect(b.highWaterPages < b.maxPageCount && b.evictionChunkPages > 0)
            #expect(b.autocheckpointPages >= 1)
        }
        #expect(BufferBudget(maxBytes: 4 << 30)!.walBytes == 8 << 20)
    }

    @Test func evictsOnlyWhenTheIncomingGroupWouldPassTheHighWaterMark() throws {
        let b = try #require(BufferBudget(maxBytes: 8 << 20))
        let roomy = SpaceSnapshot(pageCount: 500, freePages: 0, records: 60_000)
        #expect(b.recordsToEvict(roomy, incomingBytes: 40_000) == 0)
        // Free pages are reused first: a full-sized file with free pages needs no eviction.
        let reusable = SpaceSnapshot(pageCount: b.maxPageCount, freePages: b.maxPageCount / 2, records: 100_000)
        #expect(b.recordsToEvict(reusable, incomingBytes: 40_000) == 0)
        let full = SpaceSnapshot(pageCount: b.highWaterPages, freePages: 0, records: 200_000)
        let n = b.recordsToEvict(full, incomingBytes: 40_000)
        // Enough to get a chunk below the mark: about (chunk + incoming) pages worth of records.
        let perRecord = b.bytesPerRecord(full)
        let expectedPages = Double(b.evictionChunkPages + 10 + 1)
        #expect(Double(n) * perRecord >= expectedPages * 4096 * 0.9)
        #expect(n < full.records)
        // A budget lowered below the file: evict even without incoming.
        let shrunk = SpaceSnapshot(pageCount: b.maxPageCount * 2, freePages: 0, records: 400_000)
        #expect(b.recordsToEvict(shrunk, incomingBytes: 0) > 200_000)
        #expect(b.shouldVacuum(SpaceSnapshot(pageCount: b.maxPageCount + 10, freePages: 5, records: 1), idle: false))
    }

    @Test func vacuumWhenIdleAndAQuarterIsFree() throws {
        let b = try #require(BufferBudget(maxBytes: 64 << 20))
        #expect(!b.shouldVacuum(SpaceSnapshot(pageCount: 1000, freePages: 300, records: 1), idle: false))
        #expect(b.shouldVacuum(SpaceSnapshot(pageCount: 1000, freePages: 300, records: 1), idle: true))
        #expect(!b.shouldVacuum(SpaceSnapshot(pageCount: 1000, freePages: 100, records: 1), idle: true))
        // below 64 pages
        #expect(!b.shouldVacuum(SpaceSnapshot(pageCount: 100, freePages: 40, records: 1), idle: true))
    }

    @Test func groupCommitAtCountOrDelayAlarmsAtOnce() {
        var gate = GroupCommitGate(policy: GroupCommitPolicy(maxRecords: 100, maxDelay: TimeSpan(milliseconds: 50)))
        #expect(gate.decide(nowNanos: 0) == .idle)
        gate.arrived(records: 40, urgent: false, nowNanos: 1_000_000)
        #expect(gate.decide(nowNanos: 2_000_000) == .waitUntil(nanos: 51_000_000))
        gate.arrived(records: 40, urgent: false, nowNanos: 30_000_000)
        // the first arrival sets the deadline
        #expect(gate.decide(nowNanos: 30_000_000) == .waitUntil(nanos: 51_000_000))
        #expect(gate.decide(nowNanos: 51_000_000) == .commitNow)
        gate.arrived(records: 20, urgent: false, nowNanos: 31_000_000)
        #expect(gate.decide(nowNanos: 31_000_000) == .commitNow)  // 100 records
        gate.took(records: 100, remainingUrgent: false, nowNanos: 32_000_000)
        #expect(gate.decide(nowNanos: 32_000_000) == .idle)
        gate.arrived(records: 1, urgent: true, nowNanos: 40_000_000)
        #expect(gate.decide(nowNanos: 40_000_000) == .commitNow)
        gate.took(records: 1, remainingUrgent: false, nowNanos: 40_000_000)
        gate.arrived(records: 3, urgent: false, nowNanos: 41_000_000)
        #expect(gate.decide(nowNanos: 41_000_000, closing: true) == .commitNow)
        // Leftovers after a partial take go out next, without lingering again.
        gate.arrived(records: 300, urgent: false, nowNanos: 42_000_000)
        gate.took(records: 100, remainingUrgent: false, nowNanos: 43_000_000)
        #expect(gate.decide(nowNanos: 43_000_000) == .commitNow)
    }

    @Test func gapsAbsorbAndCover() {
        let a = GapRecord(firstSeq: 10, lastSeq: 20, count: 8, fromMillis: 100, toMillis: 200, reason: .evicted)
        let b = GapRecord(firstSeq: 5, lastSeq: 9, count: 5, fromMillis: 50, toMillis: 90, reason: .retention)
        let m = a.absorbing(b)
        #expect(m == GapRecord(firstSeq: 5, lastSeq: 20, count: 13, fromMillis: 50, toMillis: 200, reason: .evicted))
        #expect(m.covers(5) && m.covers(20) && !m.covers(21) && !m.covers(4))
        #expect(GapReason.evicted.protocolCode == "storage-budget" && GapReason.retention.protocolCode == "retention")
    }

    @Test func lossLedgerKeepsOneLossPerReasonAndNamesSeqsWhenWritten() {
        var ledger = LossLedger()
        #expect(ledger.isEmpty)
        ledger.lost(count: 10, fromMillis: 100, toMillis: 200, reason: .diskFull)
        ledger.lost(count: 5, fromMillis: 50, toMillis: 300, reason: .diskFull)
        ledger.lost(count: 1, fromMillis: 400, toMillis: 400, reason: .ioError)
        #expect(ledger.count == 16)
        #expect(ledger.losses.map(\.reason) == [.diskFull, .ioError])
        #expect(
            ledger.losses[0].gapRecord(firstSeq: 101)
                == GapRecord(firstSeq: 101, lastSeq: 115, count: 15, fromMillis: 50, toMillis: 300, reason: .diskFull))
        ledger.clear()
        #expect(ledger.isEmpty)
    }

    @Test func batchFillerBoundsByCountAndBytesButTakesOneOversizedRecord() {
        let r = BufferedRecord(
            seq: 1, lane: .reading,
            payload: .reading(
                StoredReading(
                    device: "d", tag: "t", units: nil, wallMillis: 0, value: .number(1), quality: .good)))
        var f = BatchFiller(maxRecords: 3, maxBytes: 1_000_000)
        let taken = (0..<4).map { _ in f.offer(r) }
        #expect(taken == [true, true, true, false])
        var tiny = BatchFiller(maxRecords: 10, maxBytes: 1)
        let tinyTaken = (0..<2).map { _ in tiny.offer(r) }
        #expect(tinyTaken == [true, false])
        let batch = BufferBatch(
            epoch: "e",
            records: [
                BufferedRecord(seq: 7, lane: .alarm, payload: .alarm(Fixtures.alarm(1))), r,
                BufferedRecord(
                    seq: 3, lane: .reading,
                    payload: .gap(
                        GapRecord(firstSeq: 1, lastSeq: 2, count: 2, fromMillis: 0, toMillis: 0, reason: .evicted)))
            ])
        #expect(batch.alarmSeqs == 7...7 && batch.readingSeqs == 1...3)
    }

    @Test func qualityCodesRoundTrip() {
        let all: [Quality] = [
            .good, .bad(.timeout), .bad(.framing), .bad(.link), .bad(.decode), .bad(.offline),
            .bad(.exception(0)), .bad(.exception(2)), .bad(.exception(255))
        ]
        for q in all { #expect(QualityCode.decode(QualityCode.encode(q)) == q) }
        #expect(QualityCode.encode(.good) == 0)
        #expect(Set(all.map(QualityCode.encode)).count == all.count)
    }
}
