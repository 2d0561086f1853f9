/// Why an operator command (acknowledge, shelve, unshelve, out of service) was refused.
///
/// `description` is the sentence `edgectl` prints:
/// "rpc-1-tubing.hh is already acknowledged (by jdoe)".
public struct AlarmCommandError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Which refusal it is, for callers that branch on it.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case unknownAlarm, notAcknowledgeable, invalidShelveDuration, notShelved, alreadyInThatService
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No alarm has that id, and no limit rule that name.
        public static let unknownAlarm = Code(.unknownAlarm)
        /// Nothing awaits acknowledgement: the alarm is normal or already acknowledged.
        public static let notAcknowledgeable = Code(.notAcknowledgeable)
        /// The shelve duration is not above zero or longer than `AlarmEngine.maxShelve`.
        public static let invalidShelveDuration = Code(.invalidShelveDuration)
        /// Unshelve of an alarm that is not shelved.
        public static let notShelved = Code(.notShelved)
        /// Out of service of an alarm already out of service, or back in service of one in service.
        public static let alreadyInThatService = Code(.alreadyInThatService)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// The alarm id or rule name the command named.
    public let alarm: String
    /// What went wrong, for the operator.
    public let message: String
    public var description: String { message }

    private init(_ code: Code, _ alarm: String, _ message: String) {
        self.code = code; self.alarm = alarm; self.message = message
    }

    static func unknownAlarm(_ alarm: String, known: [String]) -> AlarmCommandError {
        AlarmCommandError(.unknownAlarm, alarm, "no alarm '\(alarm)'\(Suggestion.hint(for: alarm, in: known))")
    }
    static func notAcknowledgeable(_ alarm: String, acknowledgedBy: String?) -> AlarmCommandError {
        let message =
            acknowledgedBy.map { "\(alarm) is already acknowledged (by \($0))" }
            ?? "\(alarm) is not in alarm; nothing to acknowledge"
        return AlarmCommandError(.notAcknowledgeable, alarm, message)
    }
    static func invalidShelveDuration(_ alarm: String, _ span: TimeSpan, max: TimeSpan) -> AlarmCommandError {
        AlarmCommandError(
            .invalidShelveDuration, alarm,
            "cannot shelve \(alarm) for \(span): a shelve lasts more than 0s and at most \(max)")
    }
    static func notShelved(_ alarm: String) -> AlarmCommandError {
        AlarmCommandError(.notShelved, alarm, "\(alarm) is not shelved")
    }
    static func alreadyInThatService(_ alarm: String, outOfService: Bool) -> AlarmCommandError {
        AlarmCommandError(
            .alreadyInThatService, alarm,
            outOfService ? "\(alarm) is already out of service" : "\(alarm) is already in service")
    }
}
