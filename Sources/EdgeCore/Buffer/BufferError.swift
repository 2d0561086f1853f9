/// Why a buffer operation failed, with what the operator needs to act on it: the file, the operation,
/// and SQLite's or the OS's words.
public struct BufferError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure, comparable (`error.code == .diskFull`).
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case cannotOpen = "cannot open"
            case corrupt
            case diskFull = "disk full"
            case ioError = "I/O error"
            case budgetTooSmall = "budget too small"
            case closed
            case staleBatch = "stale batch"
            case database
            case newerSchema = "newer schema"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// The file cannot be opened or created (permissions, missing directory).
        public static let cannotOpen = Code(.cannotOpen)
        /// The file failed `quick_check` or is not a buffer file.
        public static let corrupt = Code(.corrupt)
        /// No space left: the record(s) were not stored and are counted in a gap record.
        public static let diskFull = Code(.diskFull)
        /// The OS reported an I/O error: the record(s) were not stored and are counted in a gap record.
        public static let ioError = Code(.ioError)
        /// `storage.maxBytes` is below the smallest workable budget.
        public static let budgetTooSmall = Code(.budgetTooSmall)
        /// The store was closed.
        public static let closed = Code(.closed)
        /// The batch came from another buffer file (another epoch).
        public static let staleBatch = Code(.staleBatch)
        /// Any other SQLite failure.
        public static let database = Code(.database)
        /// The file was written by a newer edged (a downgrade): it is left as it is, and this edged refuses it.
        public static let newerSchema = Code(.newerSchema)
        public var description: String { base.rawValue }
    }

    public var code: Code
    /// The buffer file.
    public var path: String
    /// What the store was doing ("append 500 readings", "open", "acknowledge seq 10...20").
    public var operation: String
    /// SQLite's or the OS's message.
    public var detail: String
    public var file: String
    public var line: Int

    public init(
        _ code: Code, path: String, operation: String, detail: String, file: String = #fileID, line: Int = #line
    ) {
        self.code = code; self.path = path; self.operation = operation; self.detail = detail
        self.file = file; self.line = line
    }

    /// Whether the record(s) were counted as not stored (disk full or I/O error).
    public var countsAsNotStored: Bool { code == .diskFull || code == .ioError }

    public var description: String { "buffer \(path): \(operation): \(code): \(detail) [\(file):\(line)]" }

    public static func == (a: BufferError, b: BufferError) -> Bool {
        a.code == b.code && a.path == b.path && a.operation == b.operation && a.detail == b.detail
    }
}
