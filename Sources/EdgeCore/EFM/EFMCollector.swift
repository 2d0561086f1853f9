/// Collects one flow computer's hourly and daily archives and its event log over Enron Modbus, as a pure
/// state machine: the I/O shell performs the actions it returns and reports what happened; time is monotonic
/// milliseconds passed in. One collector per device (or meter run with its own archives).
///
/// The bus poller asks `next(nowMillis:)` between its live polls and gets at most one bus request per call, so
/// a 10-day backfill never holds the bus for more than one request at a time and live polling keeps its cadence
/// (Kepware interleaves one history request per three live ones, reference §3.1).
///
/// States, in the order a cycle passes them:
/// - **waiting** until the next cycle (`.idle(untilMillis:)`).
/// - **pointers**: read the archive pointer registers (one read when both fit one reply).
/// - **archives**: per archive, from the pointer (profile base and meaning) the last written index, then
///   1. with a cursor that moved (or on the first cycle after start): read the record at the cursor's index. The
///      cursor's timestamp there means the ring still continues the stored records; a later one means the ring
///      wrapped past the cursor (a `.gap` from the cursor to the oldest record still held, and collection goes on
///      from there); an earlier or invalid one means the ring was reset (`.report(.resync)`, archive held);
///   2. read from the cursor + 1 to the last written, oldest first, one record per request; each must be later
///      than the one before (else `.report(.resync)` and the archive is held until `resume(_:)`);
///   3. `.store` every `storeBatch` records with the cursor of the last one, and wait for `stored()` (or
///      `storeFailed`, which drops them: they are read again next cycle).
///   Without a cursor, the newest record is read first (none: the archive is empty, nothing more is read), then
///   the newest `backfillLimit` records (default all the ring holds), oldest first; slots that hold no valid
///   record before the first one are unwritten and skipped.
/// - **events**: read register 32, `.storeEvents`, wait for `stored`, then `.acknowledgeEvents` — never before:
///   an acknowledged event is gone from the device. A full reply (the device may hold more) is read again.
///
/// The ring slot after the last written one is never read: it is the record the device writes next (open), so
/// at most `capacity − 1` records are collectable. A failed or refused read ends the cycle (what was read is
/// stored first) and the cycle starts again after `retryMillis`; the cursor never passes an unread record.
public struct EFMCollector: Sendable {
    public let configuration: Configuration
    /// The persisted cursors: updated when the shell reports a store, never ahead of what is stored.
    public private(set) var cursors: [ArchiveKind: Cursor]
    /// Archives that stopped at a resync, until `resume(_:)`.
    public private(set) var held: [ArchiveKind: Resync] = [:]

    /// The last-written index of each archive as the pointers said at the latest cycle (normalised: base and
    /// pointer meaning applied).
    public private(set) var lastWritten: [ArchiveKind: Int] = [:]

    /// Records of each archive written on the device and not yet stored: what the current walk still has to
    /// read and store (0 once collection caught up).
    public var behind: [ArchiveKind: Int] {
        var out: [ArchiveKind: Int] = [:]
        for kind in lastWritten.keys { out[kind] = 0 }
        for w in walks { out[w.kind] = max(0, w.remaining) + w.pending.count }
        return out
    }

    private var step: Step = .waiting(until: .min)
    private var inFlight: Action?
    private var storing: (kind: ArchiveKind, cursor: Cursor)??
    private var cycleStart: Int64 = 0
    private var pointerReads: [(start: Int, count: Int)]
    private var pointerValues: [Int: Double] = [:]
    private var walks: [Walk] = []
    private var verified: Set<ArchiveKind> = []
    private var acceptBreakAt: [ArchiveKind: Int] = [:]
    private var eventsFull = false

    private enum Step: Equatable {
        case waiting(until: Int64)
        case pointers(Int)
        case archives
        case readEvents
        case acknowledgeEvents
    }

    /// One archive's reads in this cycle.
    private struct Walk {
        var kind: ArchiveKind
        var last: Int
        var verify: Cursor?
        /// A first collection reads the newest record first: if it holds none, nothing was ever written.
        var probe: Int?
        /// Then the slot after it, the oldest of a ring that wrapped: if it holds none, the ring never wrapped
        /// and its records run from the first slot to the newest — the empty slots after it are not read one by
        /// one (2,300 requests on a new Scanner 2000's hourly ring, minutes at 9600 baud).
        var wrapProbe: Int?
        var next: Int
        var remaining: Int
        var previous: DeviceTimestamp?
        var fresh: Bool
        var gapFrom: Cursor?
        var pending: [ArchiveRecord] = []
        var nextIndex: Int? { probe ?? wrapProbe ?? verify?.index ?? (remaining > 0 ? next : nil) }
    }

    /// A collector resuming after the persisted `cursors` (empty the first time).
    public init(configuration: Configuration, cursors: [ArchiveKind: Cursor] = [:]) {
        self.configuration = configuration
        self.cursors = cursors
        self.pointerReads = Self.pointerReads(for: configuration.profile)
    }

    /// The reads that fetch both archive pointers: one read spanning both when they have the same width and
    /// fit one reply, else one read each. The bus-time model (`EFMBusModel`) prices the same reads.
    public static func pointerReads(for profile: EFMProfile) -> [(start: Int, count: Int)] {
        let regs = [profile.hourly.pointerRegister.value, profile.daily.pointerRegister.value].sorted()
        let span = regs[1] - regs[0] + 1
        let width = EnronRegister.width(of: regs[0])
        if let width, width == EnronRegister.width(of: regs[1]),
            EnronRegister.byteCount(width, count: span) <= profile.maxReplyBytes.value
        {
            return [(regs[0], span)]
        }
        return [(regs[0], 1), (regs[1], 1)]
    }

    // MARK: Asked by the shell

    /// What to do now: one bus request, or `.idle`. Call again after each reply, failure or store.
    public mutating func next(nowMillis now: Int64) -> Action {
        guard inFlight == nil, storing == nil else { return .idle(untilMillis: nil) }
        switch step {
        case .waiting(let until):
            guard now >= until else { return .idle(untilMillis: until) }
            cycleStart = now
            pointerValues = [:]
            step = .pointers(0)
            return send(.readPointers(start: pointerReads[0].start, count: pointerReads[0].count))
        case .pointers(let i):
            return send(.readPointers(start: pointerReads[i].start, count: pointerReads[i].count))
        case .archives:
            while let walk = walks.first {
                if let index = walk.nextIndex { return send(.readRecord(walk.kind, index: index)) }
                verified.insert(walk.kind)
                walks.removeFirst()
            }
            step = configuration.collectEvents ? .readEvents : .waiting(until: cycleStart + configuration.cycleMillis)
            return next(nowMillis: now)
        case .readEvents:
            return send(.readEvents)
        case .acknowledgeEvents:
            return send(.acknowledgeEvents)
        }
    }

    /// The bytes to give `modbus_send_raw_request` for a bus request; nil for other actions.
    public func frame(for action: Action) -> [UInt8]? {
        let unit = configuration.unit
        switch action {
        case .readPointers(let start, let count): return EnronFrame.registerRead(unit: unit, start: start, count: count)
        case .readRecord(let kind, let index):
            return EnronFrame.archiveRead(
                unit: unit, archive: configuration.profile.archive(kind).register.value, index: index)
        case .readEvents: return EnronFrame.eventRead(unit: unit)
        case .acknowledgeEvents: return EnronFrame.eventAcknowledge(unit: unit)
        default: return nil
        }
    }

    // MARK: Reported by the shell

    /// The confirmation to the request in flight, as `modbus_receive_confirmation` returned it.
    public mutating func received(_ confirmation: [UInt8], nowMillis now: Int64) -> [Action] {
        guard let request = inFlight else { return [] }
        inFlight = nil
        let c = configuration
        do {
            switch request {
            case .readPointers:
                guard case .pointers(let i) = step else { return [] }
                let read = pointerReads[i]
                let function: UInt8 = EnronRegister.width(of: read.start) == .boolean ? 0x01 : 0x03
                let payload = try EnronFrame.readPayload(
                    confirmation, transport: c.transport, unit: c.unit, function: function)
                let values = try EnronRegister.decode(
                    payload, start: read.start, count: read.count, order: c.profile.wordOrder.value)
                for (k, v) in values.enumerated() { pointerValues[read.start + k] = v.number }
                if i + 1 < pointerReads.count {
                    step = .pointers(i + 1)
                    return []
                }
                return try plan(request: request, now: now)
            case .readRecord(let kind, let index):
                let payload = try EnronFrame.archiveRecord(
                    confirmation, transport: c.transport, unit: c.unit,
                    recordSize: c.profile.archive(kind).layout.recordSize)
                return record(payload, kind: kind, index: index, request: request, now: now)
            case .readEvents:
                let bytes = try EnronFrame.eventRecords(
                    confirmation, transport: c.transport, unit: c.unit,
                    recordSize: c.profile.eventLayout.value.recordSize)
                let events = try EventRecord.decodeAll(bytes, order: c.profile.wordOrder.value)
                guard !events.isEmpty else {
                    step = .waiting(until: cycleStart + c.cycleMillis)
                    return []
                }
                eventsFull = bytes.count + c.profile.eventLayout.value.recordSize > c.profile.maxReplyBytes.value
                storing = .some(nil)
                step = .acknowledgeEvents
                return [.storeEvents(events)]
            case .acknowledgeEvents:
                try EnronFrame.acknowledgement(confirmation, transport: c.transport, unit: c.unit)
                step = eventsFull ? .readEvents : .waiting(until: cycleStart + c.cycleMillis)
                return []
            default:
                return []
            }
        } catch {
            return failed(request: request, reason: "\(error)", now: now)
        }
    }

    /// The request in flight got no reply (timeout, bus error): nothing is assumed about what the device did.
    public mutating func failed(_ reason: String, nowMillis now: Int64) -> [Action] {
        guard let request = inFlight else { return [] }
        inFlight = nil
        return failed(request: request, reason: reason, now: now)
    }

    /// The last `.store` or `.storeEvents` is committed. Only now does the cursor move, or may events be
    /// acknowledged.
    public mutating func stored() {
        guard let s = storing else { return }
        storing = nil
        if let pair = s { cursors[pair.kind] = pair.cursor }
    }

    /// The last `.store` or `.storeEvents` was not committed (the transaction failed): nothing of it counts as
    /// stored, events are not acknowledged, and the cycle starts again after `retryMillis`, reading the same
    /// records again.
    public mutating func storeFailed(_ reason: String, nowMillis now: Int64) -> [Action] {
        guard storing != nil else { return [] }
        storing = nil
        walks = []
        step = .waiting(until: now + configuration.retryMillis)
        return [.report(.storeFailed(reason: reason))]
    }

    /// Lets a held archive go on after the operator has looked at its resync. After a clock set back, the
    /// record that went back is accepted and collection continues in ring order (records whose key is already
    /// stored become conflicts at the store, never overwrites). After a reset ring, the cursor is dropped and the
    /// ring is collected as the first time.
    public mutating func resume(_ kind: ArchiveKind) {
        guard let r = held.removeValue(forKey: kind) else { return }
        switch r.reason {
        case .timestampWentBack: acceptBreakAt[kind] = r.index
        case .cursorRecordChanged: cursors[kind] = nil
        }
    }

    // MARK: Inside

    private mutating func send(_ a: Action) -> Action {
        inFlight = a
        return a
    }

    /// Ends the cycle after a failed read: what was read is stored, the rest is read again after `retryMillis`.
    private mutating func failed(request: Action, reason: String, now: Int64) -> [Action] {
        var out: [Action] = [.report(.readFailed(request: request, reason: reason))]
        if case .archives = step, var w = walks.first, let store = flush(&w) { out.append(store) }
        walks = []
        step = .waiting(until: now + configuration.retryMillis)
        return out
    }

    /// The index `n` records after `i` (before, for negative `n`) in a ring of `a`.
    private func advance(_ i: Int, by n: Int, in a: ArchiveProfile) -> Int {
        let base = a.pointerBase.value
        let capacity = a.capacity.value
        return base + ((i - base + n) % capacity + capacity) % capacity
    }

    /// From the pointers read, the reads of this cycle.
    private mutating func plan(request: Action, now: Int64) throws(PointerError) -> [Action] {
        walks = []
        for kind in ArchiveKind.allCases where held[kind] == nil {
            let a = configuration.profile.archive(kind)
            let base = a.pointerBase.value
            let capacity = a.capacity.value
            guard let raw = pointerValues[a.pointerRegister.value], raw == raw.rounded(),
                raw >= Double(base), raw < Double(base + capacity)
            else { throw PointerError(kind: kind, value: pointerValues[a.pointerRegister.value]) }
            let pointer = Int(raw)
            let last = a.pointerMeaning.value == .lastWritten ? pointer : advance(pointer, by: -1, in: a)
            lastWritten[kind] = last
            let window = capacity - 1
            if let c = cursors[kind] {
                let distance = ((last - c.index) % capacity + capacity) % capacity
                if distance == 0, verified.contains(kind) { continue }
                walks.append(
                    Walk(
                        kind: kind, last: last, verify: distance <= capacity - 2 ? c : nil, probe: nil,
                        next: advance(c.index, by: 1, in: a), remaining: distance, previous: c.timestamp, fresh: false))
            } else {
                let n = min(configuration.backfillLimit ?? window, window)
                guard n > 0 else { continue }
                walks.append(
                    Walk(
                        kind: kind, last: last, verify: nil, probe: last,
                        wrapProbe: n > 1 ? advance(last, by: 1, in: a) : nil, next: advance(last, by: -(n - 1), in: a),
                        remaining: n, previous: nil, fresh: true))
            }
        }
        step = .archives
        return []
    }

    private struct PointerError: Error, CustomStringConvertible {
        var kind: ArchiveKind
        var value: Double?
        var description: String {
            "\(kind.rawValue) pointer \(value.map { "\($0)" } ?? "missing") is no index of the profile's ring"
        }
    }

    /// A record read in the current walk.
    private mutating func record(
        _ payload: [UInt8], kind: ArchiveKind, index: Int, request: Action, now: Int64
    ) -> [Action] {
        let a = configuration.profile.archive(kind)
        let decoded = Result { () throws(EFMDecodeError) in
            try ArchiveRecord(raw: payload, archive: a, index: index, order: configuration.profile.wordOrder.value)
        }
        var w = walks[0]
        defer { if !walks.isEmpty { walks[0] = w } }
        if w.probe == index {
            w.probe = nil
            if (try? decoded.get()) == nil {
                w.remaining = 0
                w.wrapProbe = nil
            }
            return []
        }
        if w.wrapProbe == index {
            w.wrapProbe = nil
            if (try? decoded.get()) == nil {
                let written =
                    ((w.last - a.pointerBase.value) % a.capacity.value + a.capacity.value) % a.capacity.value + 1
                w.remaining = min(w.remaining, written)
                w.next = advance(w.last, by: -(w.remaining - 1), in: a)
            }
            return []
        }
        if let expected = w.verify, expected.index == index {
            w.verify = nil
            let found = try? decoded.get().timestamp
            if found == expected.timestamp { return [] }
            if let f = found, f > expected.timestamp {
                // Lapped: the ring holds only the window ending at the last written record.
                w.gapFrom = expected
                w.remaining = a.capacity.value - 1
                w.next = advance(w.last, by: -(w.remaining - 1), in: a)
                return []
            }
            return hold(
                &w,
                Resync(
                    archive: kind, reason: .cursorRecordChanged, index: index, after: expected.timestamp, found: found))
        }
        let r: ArchiveRecord
        switch decoded {
        case .success(let rec): r = rec
        case .failure(let error):
            if w.fresh, w.previous == nil {
                // Before the first record of a ring collected the first time: a slot never written.
                w.next = advance(index, by: 1, in: a)
                w.remaining -= 1
                return []
            }
            walks[0] = w
            return failed(request: request, reason: "\(kind.rawValue) record \(index): \(error)", now: now)
        }
        if let p = w.previous, r.timestamp <= p, acceptBreakAt[kind] != index {
            return hold(
                &w, Resync(archive: kind, reason: .timestampWentBack, index: index, after: p, found: r.timestamp))
        }
        if acceptBreakAt[kind] == index { acceptBreakAt[kind] = nil }
        var out: [Action] = []
        if let g = w.gapFrom {
            out.append(
                .gap(
                    Gap(archive: kind, lastCollected: g, oldestAvailable: Cursor(index: index, timestamp: r.timestamp)))
            )
            w.gapFrom = nil
        }
        w.pending.append(r)
        w.previous = r.timestamp
        w.next = advance(index, by: 1, in: a)
        w.remaining -= 1
        if w.pending.count >= configuration.storeBatch || w.remaining == 0, let store = flush(&w) { out.append(store) }
        return out
    }

    /// Stops an archive at a resync: what was read before is stored, the archive waits for `resume(_:)`.
    private mutating func hold(_ w: inout Walk, _ r: Resync) -> [Action] {
        held[r.archive] = r
        var out: [Action] = [.report(.resync(r))]
        if let store = flush(&w) { out.append(store) }
        w.remaining = 0
        w.verify = nil
        return out
    }

    /// The `.store` of the records read and not yet stored, if any.
    private mutating func flush(_ w: inout Walk) -> Action? {
        guard let last = w.pending.last else { return nil }
        let cursor = Cursor(index: last.index, timestamp: last.timestamp)
        let records = w.pending
        w.pending = []
        storing = .some((w.kind, cursor))
        return .store(w.kind, records: records, cursor: cursor)
    }
}
