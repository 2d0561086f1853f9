import EdgeRuntime

/// The commands of the control socket (docs/control-protocol.md), as edged serves them and edgectl sends
/// them: one definition, so a command cannot be spelled two ways.
public enum ControlCommand: String, Sendable, Codable, CaseIterable {
    case status
    case devices
    case alarms
    case alarmHealth = "alarm-health"
    case ack
    case shelve
    case unshelve
    case reload
    case buffer
    case uplink
    case uplinkAckRejected = "uplink-ack-rejected"
    case tail
    case efm
    case efmHistory = "efm-history"
    case efmResume = "efm-resume"

    /// Whether it changes something (logged with the caller's uid).
    public var changesState: Bool {
        switch self {
        case .ack, .shelve, .unshelve, .reload, .uplinkAckRejected, .efmResume: true
        default: false
        }
    }

    /// The command names, for an error message.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

extension ControlRequest {
    /// A request for `command` with its arguments.
    public init(_ command: ControlCommand, args: [String: String]? = nil) {
        self.init(command: command.rawValue, args: args)
    }
}
