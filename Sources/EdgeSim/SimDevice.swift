import CModbus
import EdgeCore
import EdgeSystem
import Foundation

/// One simulated device: a unit id answering from a template's register map, with values that move.
/// Addresses outside the template (and inside its `neverRead` ranges) answer exception 02, as real devices do.
// Guard: `lock` protects `signals`, `fault`, `served` and the register image `mapping`; the rest is immutable.
public final class SimDevice: @unchecked Sendable {
    public let name: String
    public let unit: Int
    public let tags: [TagDefinition]
    public let neverRead: [AddressRange]
    private let lock = NSLock()
    private var signals: [String: SimSignal]
    private var fault: SimFault = .none
    /// libmodbus's register image; only touched with `lock` held.
    let mapping: UnsafeMutablePointer<modbus_mapping_t>
    private let started: UInt64
    private var served = 0
    /// Requests answered so far.
    public var requestsServed: Int { lock.withLock { served } }

    public init(
        name: String, unit: Int, tags: [TagDefinition], neverRead: [AddressRange] = [],
        signals: [String: SimSignal] = [:]
    ) {
        self.name = name; self.unit = unit; self.tags = tags; self.neverRead = neverRead
        var s = signals
        for t in tags where s[t.name] == nil { s[t.name] = Self.defaultSignal(t) }
        self.signals = s
        func range(_ table: RegisterTable) -> (Int32, Int32) {
            let ts = tags.filter { $0.table == table }
            guard let lo = ts.map(\.address).min(), let hi = ts.map(\.lastAddress).max() else { return (0, 0) }
            return (Int32(lo), Int32(hi - lo + 1))
        }
        let c = range(.coil), d = range(.discrete), h = range(.holding), i = range(.input)
        mapping = modbus_mapping_new_start_address(
            UInt32(c.0), UInt32(c.1), UInt32(d.0), UInt32(d.1),
            UInt32(h.0), UInt32(h.1), UInt32(i.0), UInt32(i.1))!
        started = SystemClock.monotonicNanos()
        refresh()
    }

    deinit { modbus_mapping_free(mapping) }

    /// A plausible default: enumerations sit in state 1 (running), flags clear, numbers wander gently.
    static func defaultSignal(_ t: TagDefinition) -> SimSignal {
        switch t.type {
        case .bool, .bit: return .constant(0)
        case .string: return .constant(0)
        default:
            if t.states != nil { return .constant(1) }
            if let s = t.span {
                return .sine(
                    mid: (s.engLow + s.engHigh) / 2, amplitude: (s.engHigh - s.engLow) / 20, period: .minutes(2))
            }
            return .sine(mid: 100, amplitude: 5, period: .minutes(2))
        }
    }

    public func set(_ tag: String, _ signal: SimSignal) { lock.withLock { signals[tag] = signal } }
    public func set(fault: SimFault) { lock.withLock { self.fault = fault } }
    public var currentFault: SimFault { lock.withLock { fault } }

    /// Seconds since the device started.
    public var elapsed: Double {
        Double(SystemClock.monotonicNanos() - started) / 1e9
    }

    /// The engineering value a tag has now.
    public func value(of tag: String) -> Double? { lock.withLock { signals[tag]?.value(at: elapsed) } }

    /// Writes every tag's current value into the register image.
    func refresh() {
        let t = elapsed
        lock.withLock {
            // Bits of one status word are ORed together: clear shared words first.
            for tag in tags where tag.type == .bit { write(tag.table, tag.address, [0]) }
            for tag in tags {
                let v = signals[tag.name]?.value(at: t) ?? 0
                switch tag.table {
                case .coil, .discrete:
                    let base = tag.table == .coil ? mapping.pointee.start_bits : mapping.pointee.start_input_bits
                    let bits = tag.table == .coil ? mapping.pointee.tab_bits : mapping.pointee.tab_input_bits
                    bits?[tag.address - Int(base)] = v != 0 ? 1 : 0
                case .holding, .input:
                    var words = RegisterDecoder.encode(v, tag)
                    if tag.type == .bit, let existing = read(tag.table, tag.address) { words[0] |= existing }
                    write(tag.table, tag.address, words)
                }
            }
        }
    }

    private func regs(_ table: RegisterTable) -> (UnsafeMutablePointer<UInt16>?, Int) {
        table == .holding
            ? (mapping.pointee.tab_registers, Int(mapping.pointee.start_registers))
            : (mapping.pointee.tab_input_registers, Int(mapping.pointee.start_input_registers))
    }
    private func write(_ table: RegisterTable, _ address: Int, _ words: [UInt16]) {
        let (p, start) = regs(table)
        for (i, w) in words.enumerated() { p?[address - start + i] = w }
    }
    private func read(_ table: RegisterTable, _ address: Int) -> UInt16? {
        let (p, start) = regs(table)
        return p?[address - start]
    }

    /// How to answer a read: nil when the read is fine, else the exception code a real device would send.
    func exceptionFor(function: UInt8, start: Int, count: Int) -> UInt8? {
        guard let table = RegisterTable.allCases.first(where: { $0.readFunction == function }) else { return 1 }
        if neverRead.contains(where: { $0.overlaps(table: table, start, start + count - 1) }) { return 2 }
        return nil
    }

    /// Starts answering a request: refreshes the image, counts the request, returns the fault in force.
    func begin() -> SimFault {
        refresh()
        return lock.withLock {
            served += 1
            return fault
        }
    }

    /// Runs `body` on the register image with the device locked.
    func withImage<T>(_ body: (UnsafeMutablePointer<modbus_mapping_t>) -> T) -> T {
        lock.withLock { body(mapping) }
    }
}
