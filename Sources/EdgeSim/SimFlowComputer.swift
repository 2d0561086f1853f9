import EdgeCore
import EdgeSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A simulated Enron Modbus flow computer that `SimServer` serves beside (or instead of) `SimDevice`s: the
/// archives, pointers, event log and live values of a `FlowComputerModel` built from an `EFMProfile`, behind a
/// lock so tests and the control socket can move its clock and inject faults while the server answers.
public final class SimFlowComputer: Sendable {
    public let name: String
    public let unit: Int
    public let profile: EFMProfile
    private let model: Locked<FlowComputerModel>
    private let served = Locked(0)

    /// A flow computer at `unit` (1–247) whose clock reads `start`; the contract hour defaults to the
    /// profile's. Throws when the unit cannot be addressed, the profile is unusable or the hour is not 0–23.
    public init(name: String, unit: Int, profile: EFMProfile, start: DeviceTimestamp, contractHour: Int? = nil) throws {
        guard (1...247).contains(unit) else { throw SimError("\(name): unit \(unit) is not 1–247") }
        guard profile.problems.isEmpty else {
            throw SimError("\(name): profile \(profile.name): " + profile.problems.joined(separator: "; "))
        }
        if let h = contractHour, !(0...23).contains(h) { throw SimError("\(name): contract hour \(h) is not 0–23") }
        self.name = name; self.unit = unit; self.profile = profile
        model = Locked(FlowComputerModel(profile: profile, start: start, contractHour: contractHour))
    }

    /// A built-in profile by the name a config or profile file uses (`EFMProfile.builtIn(named:)`).
    public static func builtInProfile(named name: String) -> EFMProfile? { EFMProfile.builtIn(named: name) }

    /// Runs `body` on the device's state with the lock held: for anything the methods below do not cover.
    public func withModel<T>(_ body: (inout FlowComputerModel) throws -> T) rethrows -> T {
        try model.withLock { try body(&$0) }
    }

    /// Steps simulated time `hours` hours: one hourly record each, a daily record at each contract hour.
    public func advance(hours: Int) { model.withLock { $0.advance(hours: hours) } }
    /// The device clock.
    public var clock: DeviceTimestamp { model.withLock { $0.timestamp } }
    /// Sets the device clock (back, to simulate a clock fault); later records carry the new time.
    public func setClock(_ t: DeviceTimestamp) { model.withLock { $0.setClock(t) } }
    /// Changes a parameter as an operator would, logging an operator event with as-found and as-left values.
    public func setParameter(register: Int, value: Float) throws {
        guard model.withLock({ $0.setParameter(register: register, value: value) }) else {
            throw SimError("\(name): register \(register) is no parameter, or \(value) is out of its range")
        }
    }
    /// A register's current value, nil when the device has no such register.
    public func value(of register: Int) -> EnronRegister.Value? { model.withLock { $0.value(of: register) } }
    /// The archive pointer register's value (profile base and meaning applied).
    public func pointer(_ kind: ArchiveKind) -> Int { model.withLock { $0.pointer(kind) } }
    /// Records ever written to an archive since it was last cleared.
    public func recordsWritten(_ kind: ArchiveKind) -> Int { model.withLock { $0.written[kind]! } }
    /// The record at ring index `index`, as the device sends it; nil for a slot never written.
    public func record(_ kind: ArchiveKind, index: Int) -> [UInt8]? {
        model.withLock { $0.record(kind, index: index) }
    }
    /// Events logged and not yet acknowledged.
    public var pendingEvents: Int { model.withLock { $0.pendingEvents } }
    /// Moves an archive pointer ahead by `count` records that were never written.
    public func skipRecords(_ kind: ArchiveKind, count: Int) { model.withLock { $0.skipRecords(kind, count: count) } }
    /// Empties an archive's ring.
    public func clearArchive(_ kind: ArchiveKind) { model.withLock { $0.clearArchive(kind) } }
    /// Queues a fault for the next reply it applies to.
    public func inject(_ fault: EnronReplyFault) { model.withLock { $0.inject(fault) } }
    /// Requests answered or refused so far (including those a fault left unanswered).
    public var requestsServed: Int { served.withLock { $0 } }

    /// The reply PDU to a request PDU (function code + 4 bytes), or nil for no reply; see
    /// `FlowComputerModel.reply(to:)`.
    /// Whether `pdu` is an Enron request this flow computer answers: its archive and event registers, the
    /// acknowledge, or a register of its Enron map. Anything else at its unit id goes to the standard-map
    /// device sharing the unit, if the profile declares one (a Scanner 2000 answers both maps at one address).
    public func serves(_ pdu: [UInt8]) -> Bool {
        guard pdu.count >= 3 else { return true }
        let start = Int(pdu[1]) << 8 | Int(pdu[2])
        if pdu[0] == 0x05 || start == 32 { return true }
        if start == profile.hourly.register.value || start == profile.daily.register.value { return true }
        return value(of: start) != nil
    }

    public func reply(to pdu: [UInt8]) -> [UInt8]? {
        served.withLock { $0 += 1 }
        let reply = model.withLock { $0.reply(to: pdu) }
        // A slow line: the time the reply's bytes would take, before it goes.
        if let reply, let baud = lineBaud.withLock({ $0 }) {
            let micros = (reply.count + 5) * 10 * 1_000_000 / baud
            usleep(useconds_t(micros))
        }
        return reply
    }

    /// Emulates a serial line at `baud` (nil: as fast as the transport): each reply is held for the time its
    /// bytes take on such a line, so bus-time figures and the live cadence under a backfill can be measured
    /// over loopback TCP.
    public func emulateLine(baud: Int?) { lineBaud.withLock { $0 = baud } }
    private let lineBaud = Locked<Int?>(nil)
}
