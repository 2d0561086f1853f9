import EdgeCore

/// A link to registers held in memory: for pure poller tests and for measuring the poller without I/O.
/// Shipped beside the real links so every user fakes the same protocol.
public final class MemoryModbusLink: ModbusLink {
    public var registers: [RegisterTable: [Int: UInt16]] = [:]
    public var bits: [RegisterTable: [Int: Bool]] = [:]
    /// Answer every read with this error instead (nil: answer from memory).
    public var failure: ModbusError.Kind?
    public private(set) var reads = 0
    public var isConnected: Bool { true }

    public init() {}
    public func connect() throws(ModbusError) {}
    public func close() {}

    public func readRegisters(unit: Int, table: RegisterTable, start: Int, count: Int) throws(ModbusError) -> [UInt16] {
        reads += 1
        if let f = failure {
            throw ModbusError(f, bus: "memory", unit: unit, request: "\(table.rawValue) \(start)..\(start + count - 1)")
        }
        let map = registers[table] ?? [:]
        return (start..<(start + count)).map { map[$0] ?? 0 }
    }

    public func readBits(unit: Int, table: RegisterTable, start: Int, count: Int) throws(ModbusError) -> [Bool] {
        reads += 1
        if let f = failure {
            throw ModbusError(f, bus: "memory", unit: unit, request: "\(table.rawValue) \(start)..\(start + count - 1)")
        }
        let map = bits[table] ?? [:]
        return (start..<(start + count)).map { map[$0] ?? false }
    }

    /// Enron Modbus needs a bus that libmodbus drives (RTU or TCP): this link has no raw request path.
    public func rawExchange(unit: Int, request: [UInt8], describe: String) throws(ModbusError) -> [UInt8] {
        throw ModbusError(
            .link("Enron Modbus needs an RTU or TCP bus; this one has no raw request path"), bus: "memory", unit: unit,
            request: describe)
    }

    public func discardPending() { close() }
}
