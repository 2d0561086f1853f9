/// What the upload loop's machine takes (events, with the time they happened) and gives (side effects and
/// the next step).
extension UplinkScheduler {
    /// The loop's clock readings at an event: monotonic for waits, wall for readings' ages and the month.
    public struct Now: Sendable, Equatable {
        public var monotonic: Int64
        public var wall: Int64
        public init(monotonic: Int64, wall: Int64) { self.monotonic = monotonic; self.wall = wall }
    }

    public enum Event: Sendable {
        /// The loop starts: the month's usage as saved, and the uplink alarms standing from before a restart.
        case start(usage: DataUsage, standing: Set<String>)
        /// The buffer's head was read (or read ahead): the next records of both lanes.
        case read(epoch: String, alarms: [BufferedRecord], readings: [BufferedRecord])
        case readFailed(String)
        /// Readings dropped for the data budget (`error` nil: committed).
        case dropped(count: Int, error: String?)
        /// A batch of `offered` records (`batch.count` of them fitted `batch.maxBytes`) was sent with `token`;
        /// `wireBytes` went over the link (requests and responses, as libcurl counts them).
        case sent(Lane, BufferBatch, offered: Int, outcome: UplinkOutcome, token: String, wireBytes: Int64)
        /// The token source could not be read, so nothing was sent.
        case noToken(String)
        /// The sleep ended: its time came, or an alarm event was committed. `token`: what the token source
        /// holds now, when `wantsToken` asked for it.
        case woke(token: String?)
        case configChanged(UplinkConfig, encoder: BatchEncoder)
        /// An operator looked at the dead letters (`edgectl uplink ack-rejected`).
        case rejectedAcknowledged
    }

    public enum LogLevel: String, Sendable, Equatable { case notice, warning, error }

    public enum Effect: Sendable, Equatable {
        /// The server holds the batch: delete its records.
        case acknowledge(Lane, BufferBatch)
        /// The server will never take the batch: move it to the dead-letter lane.
        case deadLetter(BufferBatch, reason: String)
        /// Store a change of an uplink alarm as a `system` alarm event.
        case alarm(UplinkAlarmChange)
        /// Save the month's data usage in the buffer file.
        case saveUsage(DataUsage)
        case log(LogLevel, String)
    }

    public enum Next: Sendable, Equatable {
        /// Read up to `maxRecords` from the head of the buffer. `prefetched`: what was read ahead while the
        /// last batch was in flight may stand in for it (that batch was acknowledged).
        case read(maxRecords: Int, prefetched: Bool)
        /// Send `records` (a prefix of the lane; fewer go if the body passes `batch.maxBytes`).
        /// `readAhead`: a backlog drains, so read and encode the next batch while this one is in flight;
        /// these records, already read, follow the offered ones.
        case send(Lane, records: [BufferedRecord], epoch: String, readAhead: [BufferedRecord]?)
        /// Drop these readings with a `data-budget` gap record.
        case drop([BufferedRecord])
        /// Wait until this monotonic moment; a wake-up (an alarm event, an operator) may end it sooner.
        case sleep(untilMillis: Int64)
    }

    public struct Step: Sendable, Equatable {
        public var effects: [Effect]
        public var next: Next
    }

    public struct Policy: Sendable, Equatable {
        /// How often a changed month's usage is saved.
        public var usageSaveEvery: TimeSpan = .seconds(30)
        /// How long to wait after the buffer could not be read or dropped from.
        public var bufferRetry: TimeSpan = .seconds(5)
        /// While the data budget saves, batches of hourly snapshots wait up to this long.
        public var savingMaxAge: TimeSpan = .hours(1)
        /// While saving, records read at once (most are dropped, not sent).
        public var savingReadDepth = 1000
        public var gate = EndpointGate.Policy()
        public init() {}
    }
}
