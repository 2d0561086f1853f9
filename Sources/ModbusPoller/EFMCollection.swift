import EdgeCore
import EdgeSystem
import Foundation

/// What the collection asks its store to commit in one transaction: records of one archive (or the event
/// log), the gaps found before them, and the collector's cursor after them.
public struct EFMStoreRequest: Sendable, Equatable {
    /// `hourly`, `daily` or `event`.
    public var archive: String
    public var records: [ArchiveRecord]
    public var events: [EventRecord]
    public var gaps: [EFMCollector.Gap]
    public var cursor: EFMCollector.Cursor?
}

/// One flow computer's EFM collection on a bus: drives its `EFMCollector` over the bus's link, one request at a
/// time, and hands what it collects to `store`. Runs on the bus thread (the link is that thread's); the
/// store's answer may come from any thread and is taken up at the next `step`.
///
/// Nothing is acknowledged and no cursor moves until the store says the records are committed: a crash at any
/// point reads the same records (or events) again, and the store keeps each once.
public final class EFMCollection {
    public typealias Store = @Sendable (EFMStoreRequest, _ done: @escaping @Sendable (String?) -> Void) -> Void
    public typealias Report = @Sendable (EFMCollector.Report) -> Void

    public let device: String
    public let unit: Int
    private var collector: EFMCollector
    private let store: Store
    private let report: Report
    /// Gaps found and not yet stored: they go with the next store of their archive.
    private var pendingGaps: [ArchiveKind: [EFMCollector.Gap]] = [:]
    /// The store's answer to the store in flight (nil inside: committed; else why not).
    private let answer = Locked<String??>(nil)
    /// Wakes the bus thread when the store answers (set by the bus poller that runs this collection).
    private let wake: Locked<@Sendable () -> Void>
    /// Where the collection stands, published after every step for `edgectl efm`.
    private let published: Locked<EFMMeterStatus>
    /// Archives an operator asked to resume after a resync, taken up at the next step.
    private let resumeRequests = Locked<[ArchiveKind]>([])

    /// - Parameters:
    ///   - cursors: as saved with the records last stored (empty the first time).
    ///   - wake: called (from any thread) when the store answered, so the bus thread comes back to `step`.
    public init(
        device: String, unit: Int, configuration: EFMCollector.Configuration,
        cursors: [ArchiveKind: EFMCollector.Cursor], meter: String? = nil, contractHour: Int? = nil,
        store: @escaping Store, report: @escaping Report = { _ in }, wake: @escaping @Sendable () -> Void = {}
    ) {
        self.device = device
        self.unit = unit
        var status = EFMMeterStatus(
            device: device, meter: meter ?? device, profile: configuration.profile.name,
            contractHour: contractHour
                ?? {
                    if case .fixed(let h) = configuration.profile.contractHour.value { h } else { 0 }
                }())
        for (kind, c) in cursors { status.lastStored[kind.rawValue] = c.timestamp.description }
        self.published = Locked(status)
        self.collector = EFMCollector(configuration: configuration, cursors: cursors)
        self.store = store
        self.report = report
        self.wake = Locked(wake)
    }

    /// Who to wake when the store answers (the bus poller running this collection).
    public func setWake(_ f: @escaping @Sendable () -> Void) { wake.withLock { $0 = f } }

    /// The cursors the collector stands on (as stored).
    public var cursors: [ArchiveKind: EFMCollector.Cursor] { collector.cursors }
    /// Archives held at a resync until an operator resumes them.
    public var held: [ArchiveKind: EFMCollector.Resync] { collector.held }

    /// Where the collection stands (any thread).
    public var status: EFMMeterStatus { published.withLock { $0 } }

    /// Resumes an archive held at a resync (any thread; taken up at the next step). False when it is not held.
    @discardableResult
    public func resume(_ kind: ArchiveKind) -> Bool {
        guard published.withLock({ $0.held[kind.rawValue] != nil }) else { return false }
        resumeRequests.withLock { $0.append(kind) }
        wake.withLock { $0 }()
        return true
    }

    /// Does at most one bus request. Returns when the next one may go (monotonic ms): now or later, or nil
    /// while a store is being committed (the store's answer calls `wake`).
    @discardableResult
    public func step(link: any ModbusLink, nowMillis now: Int64) -> Int64? {
        defer { publish() }
        for kind in resumeRequests.withLock({ r -> [ArchiveKind] in
            defer { r = [] }
            return r
        }) { collector.resume(kind) }
        if let outcome = answer.withLock({ a -> String?? in
            defer { a = nil }
            return a
        }) {
            if let failure = outcome {
                perform(collector.storeFailed(failure, nowMillis: now))
                noteError("store failed: \(failure)")
            } else {
                collector.stored()
                published.withLock {
                    $0.stores += 1
                    $0.lastStoreWallMillis = SystemClock.wallMillis()
                    $0.lastError = nil
                    $0.lastErrorWallMillis = nil
                }
            }
        }
        let action = collector.next(nowMillis: now)
        guard let frame = collector.frame(for: action) else {
            if case .idle(let until) = action { return until }
            perform([action])
            return now
        }
        let actions: [EFMCollector.Action]
        do {
            let reply = try link.rawExchange(unit: unit, request: frame, describe: Self.describe(action))
            actions = collector.received(reply, nowMillis: SystemClock.monotonicMillis())
            if action == .acknowledgeEvents, !actions.contains(where: Self.isReadFailure) {
                published.withLock {
                    $0.eventAcknowledges += 1
                    $0.lastEventAckWallMillis = SystemClock.wallMillis()
                }
            }
            // A reply libmodbus took (CRC and framing right) that is not the answer to this request: an answer
            // to an earlier one, late (a device that came back answers what queued up while it was away).
            // Without a flush every later request would get the answer to the one before.
            if actions.contains(where: Self.isReadFailure) {
                link.discardPending()
            }
        } catch {
            actions = collector.failed(error.description, nowMillis: SystemClock.monotonicMillis())
        }
        perform(actions)
        return SystemClock.monotonicMillis()
    }

    private func perform(_ actions: [EFMCollector.Action]) {
        for action in actions {
            switch action {
            case .store(let kind, let records, let cursor):
                let gaps = pendingGaps.removeValue(forKey: kind) ?? []
                submit(
                    EFMStoreRequest(archive: kind.rawValue, records: records, events: [], gaps: gaps, cursor: cursor))
            case .storeEvents(let events):
                submit(EFMStoreRequest(archive: "event", records: [], events: events, gaps: [], cursor: nil))
            case .gap(let gap):
                pendingGaps[gap.archive, default: []].append(gap)
            case .report(let r):
                switch r {
                case .readFailed(_, let reason): noteError(reason)
                case .storeFailed(let reason): noteError("store failed: \(reason)")
                case .resync, .conflict: break
                }
                report(r)
            default:
                break
            }
        }
    }

    private func submit(_ request: EFMStoreRequest) {
        store(request) { [answer, wake] failure in
            answer.withLock { $0 = .some(failure) }
            wake.withLock { $0 }()
        }
    }

    private static func isReadFailure(_ a: EFMCollector.Action) -> Bool {
        if case .report(.readFailed) = a { true } else { false }
    }

    private func noteError(_ reason: String) {
        published.withLock {
            $0.lastError = reason
            $0.lastErrorWallMillis = SystemClock.wallMillis()
        }
    }

    private func publish() {
        let (lastWritten, behind, cursors, held) = (
            collector.lastWritten, collector.behind, collector.cursors, collector.held
        )
        published.withLock { s in
            s.lastWritten = Dictionary(uniqueKeysWithValues: lastWritten.map { ($0.key.rawValue, $0.value) })
            s.behind = Dictionary(uniqueKeysWithValues: behind.map { ($0.key.rawValue, $0.value) })
            s.lastStored = Dictionary(
                uniqueKeysWithValues: cursors.map { ($0.key.rawValue, $0.value.timestamp.description) })
            s.held = Dictionary(
                uniqueKeysWithValues: held.map {
                    let found = $0.value.found.map { "\($0)" } ?? "no valid timestamp"
                    return (
                        $0.key.rawValue,
                        "\($0.value.reason.rawValue) at index \($0.value.index): after \($0.value.after), found \(found)"
                    )
                })
        }
    }

    static func describe(_ action: EFMCollector.Action) -> String {
        switch action {
        case .readPointers(let start, let count): "Enron pointers \(start)..\(start + count - 1)"
        case .readRecord(let kind, let index): "Enron \(kind.rawValue) record \(index)"
        case .readEvents: "Enron event log (register 32)"
        case .acknowledgeEvents: "Enron event acknowledge (register 32)"
        default: "Enron request"
        }
    }
}
