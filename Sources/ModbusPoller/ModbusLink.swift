import EdgeCore

/// One bus's connection to its devices. Not thread-safe: each link is used by one bus thread only.
public protocol ModbusLink: AnyObject {
    /// Opens the connection (or serial port) if it is not open.
    func connect() throws(ModbusError)
    /// Closes it; the next read reconnects.
    func close()
    var isConnected: Bool { get }
    /// Reads `count` registers (holding or input) from `unit`.
    func readRegisters(unit: Int, table: RegisterTable, start: Int, count: Int) throws(ModbusError) -> [UInt16]
    /// Reads `count` bits (coils or discrete inputs) from `unit`.
    func readBits(unit: Int, table: RegisterTable, start: Int, count: Int) throws(ModbusError) -> [Bool]
    /// Sends `request` as given (unit id and function code first) and returns the confirmation as received,
    /// header included (Enron Modbus: archive and event reads). `describe` names it in errors.
    func rawExchange(unit: Int, request: [UInt8], describe: String) throws(ModbusError) -> [UInt8]
    /// A reply was well framed but did not answer the request (a late answer to an earlier one): drops
    /// whatever is waiting on the line, so the next request gets its own answer.
    func discardPending()
}

/// Builds the link for a bus: libmodbus for RTU and TCP, our own framing for RTU over TCP.
public enum ModbusLinks {
    public static func make(for bus: BusConfig) throws(ModbusError) -> any ModbusLink {
        switch bus.kind {
        case .rtu, .tcp: try LibmodbusLink(bus: bus)
        case .rtuOverTCP: RTUOverTCPLink(bus: bus)
        }
    }
}
