/// How a buffered record is laid out in a row: a kind, a quality code, and the lane each kind travels in.
public enum RecordKind: Int64, Sendable, CaseIterable {
    case reading = 0
    case alarm = 1
    /// A gap left by eviction (budget or retention); absorbed by later evictions that reach it.
    case evictionGap = 2
    /// A gap counting records that were never stored (disk full, I/O error); kept like an alarm.
    case lossGap = 3

    public var lane: BufferLane { self == .alarm ? .alarm : .reading }

    public static func gap(_ reason: GapReason) -> RecordKind {
        reason == .evicted || reason == .retention ? .evictionGap : .lossGap
    }
}

/// Quality as a small integer (0 = good, so good readings cost no bytes in SQLite's record format).
public enum QualityCode {
    public static func encode(_ q: Quality) -> Int64 {
        switch q {
        case .good: 0
        case .bad(.timeout): 1
        case .bad(.framing): 2
        case .bad(.link): 3
        case .bad(.decode): 4
        case .bad(.offline): 5
        case .bad(.exception(let c)): 256 + Int64(c)
        }
    }

    /// Set in a stored quality code when the reading's time was taken with the clock unsynchronized.
    public static let clockUnsynchronizedBit: Int64 = 1 << 16

    /// A quality and the clock flag in one stored code (a synchronized good reading is still 0).
    public static func encode(_ q: Quality, clockSynchronized: Bool) -> Int64 {
        encode(q) | (clockSynchronized ? 0 : clockUnsynchronizedBit)
    }

    /// Whether a stored code says the clock was synchronized.
    public static func clockSynchronized(_ code: Int64) -> Bool { code & clockUnsynchronizedBit == 0 }

    /// Unknown codes read back as `bad(decode)`; the clock flag is ignored.
    public static func decode(_ code: Int64) -> Quality {
        let quality = code & ~clockUnsynchronizedBit
        return switch quality {
        case 0: .good
        case 1: .bad(.timeout)
        case 2: .bad(.framing)
        case 3: .bad(.link)
        case 4: .bad(.decode)
        case 5: .bad(.offline)
        case 256...511: .bad(.exception(UInt8(quality - 256)))
        default: .bad(.decode)
        }
    }
}
