import CSystemd
import Foundation
import Logging

/// swift-log to journald with structured fields (`DEVICE=`, `BUS=`, `UNIT=`, `ALARM=` from metadata keys,
/// upper-cased), or to stderr when the process is not attached to the journal.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public let label: String
    private let toJournal: Bool

    public init(label: String, journal: Bool = JournalLogHandler.journalAvailable) {
        self.label = label
        self.toJournal = journal
    }

    /// systemd sets `JOURNAL_STREAM` when stderr is connected to the journal.
    public static var journalAvailable: Bool { ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { _, new in new } }
        if toJournal {
            var entries = [
                "MESSAGE=\(event.message)", "PRIORITY=\(Self.syslogPriority(event.level))",
                "SYSLOG_IDENTIFIER=\(label)",
                "CODE_FILE=\(event.file)", "CODE_LINE=\(event.line)", "CODE_FUNC=\(event.function)"
            ]
            for (k, v) in fields { entries.append("\(Self.fieldName(k))=\(v)") }
            Self.send(entries)
        } else {
            let meta =
                fields.isEmpty
                ? "" : " " + fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            FileHandle.standardError.write(Data("\(event.level.rawValue.uppercased()) \(event.message)\(meta)\n".utf8))
        }
    }

    /// Journal field names: upper-case letters, digits and underscores, not starting with an underscore.
    static func fieldName(_ key: String) -> String {
        let up = key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }
        let name = String(up).trimmingCharacters(in: CharacterSet(charactersIn: "_"))
        return name.isEmpty ? "FIELD" : name
    }

    static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// `sd_journal_sendv` with one iovec per field, all pointing into one buffer kept alive for the call.
    static func send(_ entries: [String]) {
        var blob: [UInt8] = []
        var ranges: [(offset: Int, count: Int)] = []
        for e in entries {
            let bytes = Array(e.utf8)
            ranges.append((blob.count, bytes.count))
            blob += bytes
        }
        blob.withUnsafeMutableBytes { base in
            guard let start = base.baseAddress else { return }
            var iov = ranges.map { iovec(iov_base: start + $0.offset, iov_len: $0.count) }
            _ = sd_journal_sendv(&iov, Int32(iov.count))
        }
    }
}
