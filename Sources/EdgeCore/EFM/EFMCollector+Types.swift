extension EFMCollector {
    /// How one device's EFM data is collected.
    public struct Configuration: Sendable, Equatable {
        public var profile: EFMProfile
        public var unit: UInt8
        public var transport: EnronFrame.Transport
        /// How often the archive pointers are looked at when nothing is left to collect.
        public var cycleMillis: Int64
        /// How long after a failed read (no reply, a refused reply) the cycle starts again.
        public var retryMillis: Int64
        /// Records per archive collected the first time (no cursor); nil: all the ring holds.
        public var backfillLimit: Int?
        /// Records per `.store`: a restart re-reads at most this many.
        public var storeBatch: Int
        public var collectEvents: Bool

        public init(
            profile: EFMProfile, unit: UInt8, transport: EnronFrame.Transport, cycleMillis: Int64 = 60_000,
            retryMillis: Int64 = 30_000, backfillLimit: Int? = nil, storeBatch: Int = 24, collectEvents: Bool = true
        ) {
            self.profile = profile; self.unit = unit; self.transport = transport; self.cycleMillis = cycleMillis
            self.retryMillis = retryMillis; self.backfillLimit = backfillLimit; self.storeBatch = max(1, storeBatch)
            self.collectEvents = collectEvents
        }
    }

    /// The last record of an archive that is stored: persisted in the same transaction as the records, so
    /// after a restart collection resumes after exactly what is stored. The timestamp tells whether the ring
    /// still holds that record at that index (it was not overwritten, the device was not reset).
    public struct Cursor: Sendable, Equatable, Hashable, Codable {
        public var index: Int
        public var timestamp: DeviceTimestamp
        public init(index: Int, timestamp: DeviceTimestamp) { self.index = index; self.timestamp = timestamp }
    }

    /// Records the device wrote and overwrote before edged read them: the ring wrapped past the cursor.
    public struct Gap: Sendable, Equatable, Codable {
        public var archive: ArchiveKind
        /// The last record collected before the loss.
        public var lastCollected: Cursor
        /// The oldest record the ring still holds, where collection continues.
        public var oldestAvailable: Cursor

        public init(archive: ArchiveKind, lastCollected: Cursor, oldestAvailable: Cursor) {
            self.archive = archive; self.lastCollected = lastCollected; self.oldestAvailable = oldestAvailable
        }

        /// Records between the two at the archive's period (a device that was off wrote fewer).
        public var periodsLost: Int64 {
            let period: Int64 = archive == .hourly ? 3600 : 86_400
            return max(
                0, (oldestAvailable.timestamp.secondsSince2000 - lastCollected.timestamp.secondsSince2000) / period - 1)
        }
    }

    /// Why an archive stopped advancing until `resume(_:)`: the ring no longer continues the stored records.
    public struct Resync: Sendable, Equatable, Codable {
        public enum Reason: String, Sendable, Equatable, Codable {
            /// A record is not later than the one before it: the device clock was set back, or the ring was
            /// reset and holds older records at these indices.
            case timestampWentBack
            /// The record at the cursor's index has an earlier or no valid timestamp: the ring was reset or
            /// cleared.
            case cursorRecordChanged
        }
        public var archive: ArchiveKind
        public var reason: Reason
        /// The index read.
        public var index: Int
        /// The timestamp expected to be exceeded (or, for `cursorRecordChanged`, matched).
        public var after: DeviceTimestamp
        /// What the record at `index` held; nil when it held no valid timestamp.
        public var found: DeviceTimestamp?
    }

    /// What the collector tells the operator: nothing here changes stored data.
    public enum Report: Sendable, Equatable {
        case resync(Resync)
        /// A read got no reply, or a reply that was refused; the same record is read again later.
        indirect case readFailed(request: Action, reason: String)
        /// The shell could not commit a store (`storeFailed(_:nowMillis:)`); the records are read again.
        case storeFailed(reason: String)
        /// Produced by the store, not the collector: a record with a stored key and other bytes
        /// (`RecordIdentity.Disposition.conflict`). It is kept aside, never written over the stored one.
        case conflict(RecordIdentity, storedHash: String)
    }

    /// What the I/O shell does next. Bus requests come only from `next(nowMillis:)`, one per call; the rest come
    /// from the events the shell reports.
    public enum Action: Sendable, Equatable {
        /// Read `count` registers from `start` (the archive pointers); `frame(for:)` gives the bytes.
        case readPointers(start: Int, count: Int)
        /// Read one archive record.
        case readRecord(ArchiveKind, index: Int)
        case readEvents
        /// Clear the events just stored on the device. Only ever after `stored()` for them.
        case acknowledgeEvents
        /// Store these records and this cursor in one transaction, then call `stored()`. Records
        /// whose identity is already stored are skipped (`RecordIdentity.disposition`).
        case store(ArchiveKind, records: [ArchiveRecord], cursor: Cursor)
        /// Store these events (skipping those already stored), then call `stored()`.
        case storeEvents([EventRecord])
        /// Record the loss; collection continues with `oldestAvailable`. Detected again (identical) if edged
        /// restarts before the next store, so the shell keys it by archive and both timestamps.
        case gap(Gap)
        case report(Report)
        /// Nothing to send before this moment (monotonic ms); nil: nothing until the shell reports a reply, a
        /// failure or a store.
        case idle(untilMillis: Int64?)
    }
}
