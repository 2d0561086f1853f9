import EdgeCore
import Testing

/// The collector against an in-memory flow computer: outages, restarts, wraps, clock changes and bad replies,
/// in milliseconds of test time and without I/O.
@Suite struct EFMCollectorTests {
    static let start = DeviceTimestamp(year: 2025, month: 3, day: 1, hour: 0, minute: 0, second: 0)!
    static let hour: Int64 = 3_600_000

    /// The Scanner 2000 profile with small rings, so wraps happen in a few hundred records.
    static func small(hourly: Int, daily: Int, base: Int = 1, meaning: PointerMeaning = .lastWritten) -> EFMProfile {
        var p = EFMProfile.scanner2000
        p.hourly.capacity.value = hourly
        p.daily.capacity.value = daily
        for kind in ArchiveKind.allCases {
            let note = Provenance.assumed("test")
            if kind == .hourly {
                p.hourly.pointerBase = Sourced(base, note); p.hourly.pointerMeaning = Sourced(meaning, note)
            } else {
                p.daily.pointerBase = Sourced(base, note); p.daily.pointerMeaning = Sourced(meaning, note)
            }
        }
        return p
    }

    static func collector(_ p: EFMProfile, _ cursors: [ArchiveKind: EFMCollector.Cursor] = [:], backfill: Int? = nil)
        -> EFMCollector
    {
        EFMCollector(
            configuration: .init(profile: p, unit: 7, transport: .rtu, backfillLimit: backfill, storeBatch: 24),
            cursors: cursors)
    }

    /// A device with `hours` of history, collected completely by a first collection.
    static func collected(_ p: EFMProfile, hours: Int) -> (FakeFlowComputer, FakeStore) {
        var device = FakeFlowComputer(profile: p, start: start)
        device.runHours(hours)
        var store = FakeStore()
        var m = collector(p)
        drive(&m, &device, &store, now: 0)
        return (device, store)
    }

    @Test func tenDayOutageIsBackfilledOnceOldestFirst() {
        let p = EFMProfile.scanner2000
        var (device, store) = Self.collected(p, hours: 48)
        #expect(store.serials(.hourly) == Array(0..<48))
        #expect(store.serials(.daily) == [0, 1])
        device.runHours(240)
        // edged comes back: a new collector from the persisted cursors.
        var m = Self.collector(p, store.cursors)
        #expect(drive(&m, &device, &store, now: 10 * 24 * Self.hour))
        #expect(store.serials(.hourly) == Array(0..<288))
        #expect(store.serials(.daily) == Array(0..<12))
        #expect(store.duplicates == 0)
        #expect(store.gaps.isEmpty && store.reports.isEmpty && store.conflicts.isEmpty)
        let stamps = store.order.filter { $0.archive == .hourly }.map(\.timestamp)
        #expect(stamps == stamps.sorted())
        #expect(store.cursors[.hourly]?.timestamp == DeviceTimestamp(secondsSince2000: device.clock))
    }

    /// Every history request is one `next` call: between two of them the poller polls live tags.
    @Test func eachTurnSendsAtMostOneRequest() {
        let p = EFMProfile.scanner2000
        var (device, store) = Self.collected(p, hours: 30)
        device.runHours(30)
        var m = Self.collector(p, store.cursors)
        store.log = []
        let before = device.requests.count
        #expect(drive(&m, &device, &store, now: 0))
        let turns = store.log.filter { if case .idle = $0 { false } else { m.frame(for: $0) != nil } }.count
        #expect(device.requests.count - before == turns)
        // Pointers, the cursor check of each archive, 30 hourly and 1 daily record, events.
        #expect(turns == 1 + 2 + 30 + 1 + 1)
    }

    @Test func restartInTheMiddleOfABackfillLosesAndRepeatsNothing() {
        let p = EFMProfile.scanner2000
        var (device, store) = Self.collected(p, hours: 24)
        device.runHours(240)
        var now: Int64 = 0
        // Crash after 37 and after 90 more requests: records read but not stored die with the process.
        for turns in [37, 90] {
            var m = Self.collector(p, store.cursors)
            #expect(!drive(&m, &device, &store, now: now, turns: turns))
            now += 1000
        }
        #expect(store.serials(.hourly).count < 264)
        var m = Self.collector(p, store.cursors)
        #expect(drive(&m, &device, &store, now: now))
        #expect(store.serials(.hourly) == Array(0..<264))
        #expect(store.serials(.daily) == Array(0..<11))
        #expect(store.duplicates == 0)
    }

    @Test func aRingThatWrappedDuringTheOutageYieldsOneGap() throws {
        let p = Self.small(hourly: 48, daily: 10)
        var (device, store) = Self.collected(p, hours: 20)
        let cursor = try #require(store.cursors[.hourly])
        device.runHours(100)
        var m = Self.collector(p, store.cursors)
        #expect(drive(&m, &device, &store, now: 0))
        try #require(store.gaps.count == 1, "\(store.gaps) \(store.reports)")
        let gap = store.gaps[0]
        #expect(gap.archive == .hourly)
        #expect(gap.lastCollected == cursor)
        // The ring holds 48 slots; the one after the last written is never read, so 47 records remain.
        #expect(store.order.first { $0.timestamp == gap.oldestAvailable.timestamp }?.numbers[0] == Double(120 - 47))
        #expect(gap.periodsLost == 120 - 47 - 20)
        #expect(store.serials(.hourly) == Array(0..<20) + Array((120 - 47)..<120))
        #expect(store.serials(.daily) == Array(0..<5))
        #expect(store.duplicates == 0 && store.reports.isEmpty)
    }

    @Test func aClockSetBackIsAResyncNotAMisread() {
        let p = EFMProfile.scanner2000
        var (device, store) = Self.collected(p, hours: 10)
        device.runHours(5)
        device.clock -= 3 * 3600
        device.runHours(5)
        var m = Self.collector(p, store.cursors)
        #expect(drive(&m, &device, &store, now: 0))
        #expect(store.serials(.hourly) == Array(0..<15))
        guard case .resync(let r) = store.reports.first else {
            Issue.record("no resync: \(store.reports)")
            return
        }
        #expect(r.reason == .timestampWentBack && r.archive == .hourly && r.index == 1 + 15)
        #expect(m.held[.hourly] == r)
        // Held: the next cycles read nothing more of that archive and report nothing new.
        #expect(drive(&m, &device, &store, now: 120_000))
        #expect(store.serials(.hourly) == Array(0..<15) && store.reports.count == 1)
        // The operator resumes: the records after the set-back are stored, those whose timestamps were already
        // taken are conflicts — kept aside, the stored ones untouched.
        let before = store.records
        m.resume(.hourly)
        #expect(drive(&m, &device, &store, now: 240_000))
        #expect(store.serials(.hourly) == Array(0..<15) + [18, 19])
        #expect(store.conflicts.count == 3)
        for (key, r) in before { #expect(store.records[key] == r) }
    }

    @Test func eventsAreAcknowledgedOnlyAfterTheyAreStored() {
        let p = EFMProfile.flobossDL8000
        var (device, store) = Self.collected(p, hours: 5)
        for k in 0..<14 { device.logEvent(bitmap: 0x0200, register: UInt16(7100 + k), asFound: 1, asLeft: 2) }
        var m = Self.collector(p, store.cursors)
        // A crash right after the first 12 events were stored, before `stored` and the acknowledge.
        #expect(!drive(&m, &device, &store, now: 0, crashAfterEventStore: true))
        #expect(store.eventOrder.count == 12)
        #expect(device.events.count == 14)
        #expect(!store.log.contains(.acknowledgeEvents))
        var again = Self.collector(p, store.cursors)
        store.log = []
        #expect(drive(&again, &device, &store, now: 1000))
        #expect(store.duplicates == 12)
        #expect(store.eventOrder.map(\.register) == (0..<14).map { UInt16(7100 + $0) })
        #expect(device.events.isEmpty)
        // Each acknowledge follows the store of the events it clears.
        let steps = store.log.filter {
            switch $0 {
            case .storeEvents, .acknowledgeEvents: true
            default: false
            }
        }
        #expect(steps.count == 4)
        for (k, s) in steps.enumerated() {
            if case .storeEvents = s { #expect(k % 2 == 0) } else { #expect(k % 2 == 1) }
        }
    }

    @Test func aFailedEventStoreIsNeverAcknowledged() throws {
        let p = EFMProfile.flobossDL8000
        var (device, store) = Self.collected(p, hours: 5)
        device.logEvent(bitmap: 0x9000, register: 7010, asFound: 95, asLeft: 0)
        var m = Self.collector(p, store.cursors)
        var sent: [EFMCollector.Action] = []
        var failedStore = false
        while !failedStore {
            let a = m.next(nowMillis: 0)
            sent.append(a)
            let frame = try #require(m.frame(for: a), "\(a)")
            let answer = device.reply(to: frame)
            let reply = try #require(answer)
            for action in m.received(reply, nowMillis: 0) {
                if case .storeEvents = action {
                    #expect(m.storeFailed("disk full", nowMillis: 0) == [.report(.storeFailed(reason: "disk full"))])
                    failedStore = true
                }
            }
        }
        #expect(m.next(nowMillis: 0) == .idle(untilMillis: 30_000))
        #expect(!sent.contains(.acknowledgeEvents) && device.events.count == 1)
        #expect(drive(&m, &device, &store, now: 30_000))
        #expect(store.eventOrder.count == 1 && device.events.isEmpty)
    }

    @Test func aWrongSizeReplyNeverAdvancesTheCursor() {
        let p = EFMProfile.scanner2000
        var (device, store) = Self.collected(p, hours: 10)
        device.runHours(30)
        device.shortReplyAt = (.hourly, 1 + 20)
        var m = Self.collector(p, store.cursors)
        #expect(drive(&m, &device, &store, now: 0))
        guard case .readFailed(let request, let reason) = store.reports.first else {
            Issue.record("no failed read: \(store.reports)")
            return
        }
        #expect(request == .readRecord(.hourly, index: 21))
        #expect(reason.contains("68 bytes"))
        #expect(store.serials(.hourly) == Array(0..<20))
        #expect(store.cursors[.hourly]?.index == 20)
        #expect(m.next(nowMillis: 29_999) == .idle(untilMillis: 30_000))
        #expect(drive(&m, &device, &store, now: 30_000))
        #expect(store.serials(.hourly) == Array(0..<40))
        #expect(store.duplicates == 0)
    }

    @Test func bothPointerConventionsGiveTheSameRecords() {
        var collected: [[[UInt8]]] = []
        for (base, meaning) in [(1, PointerMeaning.lastWritten), (0, .nextToWrite)] {
            let p = Self.small(hourly: 30, daily: 5, base: base, meaning: meaning)
            var (device, store) = Self.collected(p, hours: 20)
            device.runHours(25)
            var m = Self.collector(p, store.cursors)
            #expect(drive(&m, &device, &store, now: 0))
            #expect(store.gaps.isEmpty && store.duplicates == 0)
            collected.append(store.order.map(\.raw))
        }
        #expect(collected[0] == collected[1])
        #expect(collected[0].count == 45 + 1)
    }

    @Test func aFirstCollectionTakesTheBackfillLimitNewestRecords() {
        let p = EFMProfile.scanner2000
        var device = FakeFlowComputer(profile: p, start: Self.start)
        device.runHours(100)
        var store = FakeStore()
        var m = Self.collector(p, backfill: 24)
        #expect(drive(&m, &device, &store, now: 0))
        #expect(store.serials(.hourly) == Array(76..<100))
        #expect(store.serials(.daily) == Array(0..<4))
    }

    /// A new device's ring holds its records in the first slots and nothing after them: the first collection
    /// reads the newest slot and the one after it (empty: the ring never wrapped), then only the written
    /// records — not the 2,300 empty slots of a Scanner 2000's hourly ring one by one.
    @Test func aFirstCollectionOfARingThatNeverWrappedReadsOnlyWhatWasWritten() {
        let p = EFMProfile.scanner2000
        var device = FakeFlowComputer(profile: p, start: Self.start)
        device.runHours(50)
        var store = FakeStore()
        var m = Self.collector(p)
        #expect(drive(&m, &device, &store, now: 0))
        #expect(store.serials(.hourly) == Array(0..<50))
        #expect(store.serials(.daily) == [0, 1])
        let recordReads = device.requests.filter {
            $0.count >= 4 && (Int($0[2]) << 8 | Int($0[3])) >= 700 && (Int($0[2]) << 8 | Int($0[3])) <= 701
        }
        // Per archive: the newest slot, the slot after it, then each record once.
        #expect(recordReads.count == (2 + 50) + (2 + 2), "\(recordReads.count) record reads")
        // A ring that did wrap is still read from its oldest slot.
        var small = FakeFlowComputer(profile: Self.small(hourly: 40, daily: 10), start: Self.start)
        small.runHours(100)
        var smallStore = FakeStore()
        var n = Self.collector(Self.small(hourly: 40, daily: 10))
        #expect(drive(&n, &small, &smallStore, now: 0))
        #expect(smallStore.serials(.hourly) == Array(61..<100))
    }
}
