/// What makes two collected records the same record, so a record collected twice (a retried read, a crash
/// between store and acknowledge) is stored once and a record that changed under the same key is reported.
///
/// `key` names the record in the device's terms (archive and device timestamp; for events also register and
/// bitmap). `hash` is the 64-bit FNV-1a of the raw bytes as 16 hex digits: an identity check, not a security
/// one — it tells an honest re-read from a changed record, not a forged record from a real one.
public struct RecordIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    public var key: String
    public var hash: String

    public init(key: String, raw: [UInt8]) {
        self.key = key
        self.hash = Self.fnv1a64Hex(raw)
    }

    /// What to do with a record whose key is already stored (or not).
    public enum Disposition: Sendable, Equatable {
        /// No record with this key: store it.
        case new
        /// The same key and the same bytes: collected twice, already stored.
        case duplicate
        /// The same key, other bytes (the device's clock was set back, or the record was changed): keep the
        /// stored one, report this one — never overwrite.
        case conflict(storedHash: String)
    }

    /// The disposition given the hash stored under this key, if any.
    public func disposition(storedHash: String?) -> Disposition {
        guard let stored = storedHash else { return .new }
        return stored == hash ? .duplicate : .conflict(storedHash: stored)
    }

    /// 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3), as 16 lowercase hex digits.
    public static func fnv1a64Hex(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        let digits = Array("0123456789abcdef")
        return String((0..<16).map { digits[Int((h >> UInt64(60 - 4 * $0)) & 0xF)] })
    }

    public var description: String { "\(key)#\(hash)" }
}
