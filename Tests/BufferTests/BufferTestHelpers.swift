@_spi(Testing) import EdgeBuffer
import EdgeCore
import EdgeTestSupport
import Foundation
import Logging

enum Fixtures {
    static let tags = (0..<12).map { "tag-\($0)" }

    /// `count` readings of a few devices and tags, with varied values and qualities.
    static func readings(_ count: Int, start: Int = 0, wall: Int64 = 1_750_000_000_000) -> [Reading] {
        (0..<count).map { k in
            let i = start + k
            let quality: Quality = i % 97 == 0 ? .bad(.timeout) : i % 131 == 0 ? .bad(.exception(2)) : .good
            let value: TagValue? =
                quality.isGood ? (i % 50 == 0 ? .text("state-\(i % 3)") : .number(Double(i % 1000) * 0.25)) : nil
            return Reading(
                device: "well-\(i % 5)", tag: tags[i % tags.count], value: value, quality: quality,
                wallMillis: wall + Int64(i), monotonicNanos: UInt64(i) * 1_000_000)
        }
    }

    static func units(_ device: String, _ tag: String) -> String? {
        tag.hasSuffix("1") ? "psi" : tag.hasSuffix("2") ? "degF" : nil
    }

    static func alarm(_ n: Int, transition: AlarmTransition = .raised) -> AlarmEventRecord {
        AlarmEventRecord(
            alarm: "hi-\(n)", occurrence: "occ-\(n)", kind: n % 2 == 0 ? "limit" : "comm-loss", device: "well-\(n % 5)",
            tag: n % 2 == 0 ? "tag-0" : nil, level: n % 2 == 0 ? "h" : nil, transition: transition,
            priority: "high", value: Double(n), limit: 100, reason: "test alarm \(n)",
            wallMillis: 1_750_000_000_000 + Int64(n),
            by: "edged")
    }

    /// What a stored reading must read back as.
    static func stored(_ r: Reading) -> StoredReading { StoredReading(r, units: units(r.device, r.tag)) }
}

/// Everything queued, in dequeue order (alarm lane, then reading lane), without acknowledging it.
func queued(_ store: BufferStore) throws -> [BufferedRecord] {
    try store.nextBatch(maxRecords: Int(Int32.max), maxBytes: Int.max)?.records ?? []
}

/// db + WAL + shm as on disk now.
func bytesOnDisk(_ path: String) -> Int64 {
    [path, path + "-wal", path + "-shm"].reduce(0) { total, p in
        total + ((try? FileManager.default.attributesOfItem(atPath: p)[.size] as? NSNumber)?.int64Value ?? 0)
    }
}

/// A built executable of this package (`edgebuf-writer`), next to the test bundle.
func productPath(_ name: String) throws -> String {
    var dir = URL(
        fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0])
    for _ in 0..<4 {
        dir = dir.deletingLastPathComponent()
        let candidate = dir.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw TestSetupError(
        "\(name) not found near \(CommandLine.arguments[0]); build it with `swift build --build-tests`")
}

let testBudget = ByteCount(bytes: 64 << 20)

/// For tests that evict or fail on purpose: only errors reach the output.
let quietLogger: Logger = {
    var l = Logger(label: "edged.buffer.test")
    l.logLevel = .critical
    return l
}()
let fastCommit = BufferOptions(groupCommit: GroupCommitPolicy(maxRecords: 1000, maxDelay: TimeSpan(milliseconds: 2)))
