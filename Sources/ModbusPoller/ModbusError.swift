import EdgeCore
import Foundation

/// A failed Modbus transaction, with what the operator needs to find it: bus, device, unit, registers.
public struct ModbusError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No (complete) response within the response timeout.
        case timeout
        /// The device answered with an exception code.
        case exception(UInt8)
        /// Bad CRC, wrong unit id or function, garbage.
        case framing(String)
        /// The connection or port failed (refused, reset, device gone).
        case link(String)
    }
    public var kind: Kind
    public var bus: String
    public var device: String?
    public var unit: Int?
    public var request: String?
    /// What was being waited for, e.g. "500 ms".
    public var timeout: String?

    public init(
        _ kind: Kind, bus: String, device: String? = nil, unit: Int? = nil, request: String? = nil,
        timeout: String? = nil
    ) {
        self.kind = kind; self.bus = bus; self.device = device; self.unit = unit; self.request = request;
        self.timeout = timeout
    }

    /// The reading quality this failure gives the tags it was reading.
    public var quality: Quality {
        switch kind {
        case .timeout: .bad(.timeout)
        case .exception(let c): .bad(.exception(c))
        case .framing: .bad(.framing)
        case .link: .bad(.link)
        }
    }

    /// Whether the device answered (exceptions are answers; the device is alive).
    public var deviceAnswered: Bool { if case .exception = kind { true } else { false } }

    public var description: String {
        var who = device ?? "bus"
        if let u = unit { who += " (unit \(u) on \(bus))" } else { who += " on \(bus)" }
        let what = request.map { " \($0)" } ?? ""
        switch kind {
        case .timeout:
            return
                "\(who): no response to\(what.isEmpty ? " request" : " read" + what)\(timeout.map { " within \($0)" } ?? "")"
        case .exception(let c):
            return "\(who): exception \(String(format: "%02X", c)) (\(Self.exceptionName(c))) to read\(what)"
        case .framing(let why):
            return "\(who): bad response to read\(what): \(why)"
        case .link(let why):
            return "\(who): link failed: \(why)"
        }
    }

    public static func exceptionName(_ c: UInt8) -> String {
        switch c {
        case 1: "illegal function"
        case 2: "illegal data address"
        case 3: "illegal data value"
        case 4: "server device failure"
        case 5: "acknowledge"
        case 6: "server device busy"
        case 10: "gateway path unavailable"
        case 11: "gateway target failed to respond"
        default: "code \(c)"
        }
    }
}
