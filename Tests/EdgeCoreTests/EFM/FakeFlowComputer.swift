import EdgeCore

/// An in-memory Enron flow computer: two rings of records with the profile's capacity, pointer base and
/// meaning, an event log, and a device clock stepped by the test. It answers request frames as
/// `modbus_receive_confirmation` would hand the reply over (RTU, CRC included).
struct FakeFlowComputer {
    var profile: EFMProfile
    var unit: UInt8 = 7
    /// Device-local seconds since 2000-01-01.
    var clock: Int64
    /// Records ever written per archive; record n (from 0) lives in slot base + n % capacity.
    var written: [ArchiveKind: Int] = [.hourly: 0, .daily: 0]
    var slots: [ArchiveKind: [Int: [UInt8]]] = [.hourly: [:], .daily: [:]]
    /// Event records not yet acknowledged, oldest first.
    var events: [[UInt8]] = []
    /// Events handed out by the last read, cleared by the acknowledge.
    var eventsInLastReply = 0
    /// One archive reply this many bytes short, at this index (then answered normally).
    var shortReplyAt: (ArchiveKind, Int)?
    var requests: [[UInt8]] = []

    init(profile: EFMProfile, start: DeviceTimestamp) {
        self.profile = profile
        clock = start.secondsSince2000
    }

    /// Steps the clock an hour and writes the hourly record; at midnight (contract hour 0) the daily one too.
    mutating func runHours(_ n: Int) {
        for _ in 0..<n {
            clock += 3600
            write(.hourly)
            if clock % 86_400 == 0 { write(.daily) }
        }
    }

    mutating func write(_ kind: ArchiveKind) {
        let a = profile.archive(kind)
        let n = written[kind]!
        let values = a.layout.fields.indices.map { k in k == 0 ? Float(n) : Float(k) + 0.125 }
        slots[kind]![a.index(ofRecord: n)] = EnronRecordEncoder.archiveRecord(
            a.layout, at: DeviceTimestamp(secondsSince2000: clock), values: values, order: profile.wordOrder.value)
        written[kind] = n + 1
    }

    mutating func logEvent(bitmap: UInt16, register: UInt16, asFound: Float, asLeft: Float) {
        events.append(
            EnronRecordEncoder.eventRecord(
                bitmap: bitmap, register: register, at: DeviceTimestamp(secondsSince2000: clock), asFound: asFound,
                asLeft: asLeft, order: profile.wordOrder.value))
    }

    func pointer(_ kind: ArchiveKind) -> Float {
        Float(profile.archive(kind).pointer(afterWriting: written[kind]!))
    }

    /// The confirmation to a raw request, or nil for no reply.
    mutating func reply(to request: [UInt8]) -> [UInt8]? {
        requests.append(request)
        guard request.count == 6, request[0] == unit else { return nil }
        let address = Int(request[2]) << 8 | Int(request[3])
        let quantity = Int(request[4]) << 8 | Int(request[5])
        let order = profile.wordOrder.value
        if request[1] == 0x05, address == EnronFrame.eventRegister {
            events.removeFirst(eventsInLastReply)
            eventsInLastReply = 0
            return RTUFraming.sealed(request)
        }
        guard request[1] == 0x03 else { return RTUFraming.sealed([unit, request[1] | 0x80, 0x01]) }
        var data: [UInt8]
        if address == EnronFrame.eventRegister {
            let n = min(events.count, profile.maxReplyBytes.value / 20)
            eventsInLastReply = n
            data = events.prefix(n).flatMap { $0 }
        } else if let kind = ArchiveKind.allCases.first(where: { profile.archive($0).register.value == address }) {
            data = slots[kind]![quantity] ?? Array(repeating: 0, count: profile.archive(kind).layout.recordSize)
            if let short = shortReplyAt, short.0 == kind, short.1 == quantity {
                data.removeLast(4)
                shortReplyAt = nil
            }
        } else {
            data = []
            for r in address..<(address + quantity) {
                if let kind = ArchiveKind.allCases.first(where: { profile.archive($0).pointerRegister.value == r }) {
                    data += EnronRegister.bytes(of: pointer(kind), order: order)
                } else {
                    data += [0, 0, 0, 0]
                }
            }
        }
        return RTUFraming.sealed([unit, 0x03, UInt8(data.count)] + data)
    }
}

/// What the I/O shell would keep in its database: records by identity, cursors, gaps and reports — with the
/// dedupe rule the real store uses (`RecordIdentity.disposition`).
struct FakeStore {
    var records: [String: ArchiveRecord] = [:]
    /// Archive records in the order they were first stored.
    var order: [ArchiveRecord] = []
    var events: [String: EventRecord] = [:]
    var eventOrder: [EventRecord] = []
    var cursors: [ArchiveKind: EFMCollector.Cursor] = [:]
    var duplicates = 0
    var conflicts: [RecordIdentity] = []
    var gaps: [EFMCollector.Gap] = []
    var reports: [EFMCollector.Report] = []
    var log: [EFMCollector.Action] = []

    mutating func put(_ r: ArchiveRecord) {
        let id = r.identity
        switch id.disposition(storedHash: records[id.key]?.identity.hash) {
        case .new: records[id.key] = r; order.append(r)
        case .duplicate: duplicates += 1
        case .conflict: conflicts.append(id)
        }
    }

    mutating func put(_ e: EventRecord) {
        let id = e.identity
        switch id.disposition(storedHash: events[id.key]?.identity.hash) {
        case .new: events[id.key] = e; eventOrder.append(e)
        case .duplicate: duplicates += 1
        case .conflict: conflicts.append(id)
        }
    }

    func serials(_ kind: ArchiveKind) -> [Int] {
        order.filter { $0.archive == kind }.map { Int($0.numbers[0]) }
    }
}

/// Plays the I/O shell: asks the collector for its next request, answers it from the fake device, carries out
/// the actions. Returns when the collector idles (or after `turns` requests, or right after an event store when
/// `crashAfterEventStore`: a crash before `stored` and the acknowledge).
@discardableResult
func drive(
    _ m: inout EFMCollector, _ device: inout FakeFlowComputer, _ store: inout FakeStore, now: Int64,
    turns: Int = 100_000, crashAfterEventStore: Bool = false
) -> Bool {
    for _ in 0..<turns {
        let a = m.next(nowMillis: now)
        store.log.append(a)
        if case .idle = a { return true }
        guard let frame = m.frame(for: a) else { fatalError("next() returned \(a), not a request") }
        let actions =
            device.reply(to: frame).map { m.received($0, nowMillis: now) } ?? m.failed("timeout", nowMillis: now)
        for action in actions {
            store.log.append(action)
            switch action {
            case .store(let kind, let records, let cursor):
                for r in records { store.put(r) }
                store.cursors[kind] = cursor
                m.stored()
            case .storeEvents(let events):
                for e in events { store.put(e) }
                if crashAfterEventStore { return false }
                m.stored()
            case .gap(let g): store.gaps.append(g)
            case .report(let r): store.reports.append(r)
            default: fatalError("a bus request came from an event: \(action)")
            }
        }
    }
    return false
}
