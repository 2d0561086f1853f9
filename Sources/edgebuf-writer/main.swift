// edgebuf-writer: the kill test's subject. Writes readings (and now and then an alarm event) into a
// buffer forever from several producer threads; after each append returns — the group commit holding
// it has committed — it appends the committed seqs to a side file and fsyncs it. Each alarm event is
// committed with a state entry naming it (`writer-<producer>`), as edged commits its alarm engine's state. A test kills it with
// SIGKILL at random moments and checks that every seq in the side file is in the buffer.
//
// usage: edgebuf-writer <buffer.db> <seq-log> [--max-bytes N] [--producers N] [--batch N] [--alarm-every N] [--linger-ms N]
//
// Side file lines: `r <first> <last>` for readings, `a <seq>` for an alarm event.
import EdgeBuffer
import EdgeCore
import Foundation

// Guard: `blocking` writes `value` in its task before `done.signal()` and reads it after `done.wait()`.
final class Box<T>: @unchecked Sendable { var value: T?; init() {} }

/// Runs an async buffer call from a plain thread and waits for it (the producers are dedicated threads).
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws(BufferError) -> T) -> Result<T, BufferError> {
    let done = DispatchSemaphore(value: 0)
    let box = Box<Result<T, BufferError>>()
    Task {
        do throws(BufferError) { box.value = .success(try await body()) } catch { box.value = .failure(error) }
        done.signal()
    }
    done.wait()
    return box.value!
}

/// The side file: one line per committed append, written with one write(2) and then fsynced.
// Guard: `fd` is immutable after init; `lock` serializes each line's write(2) and fsync.
final class SeqLog: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()
    init(path: String) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard fd >= 0 else { perror("open \(path)"); exit(1) }
    }
    func append(_ line: String) {
        lock.withLock {
            let bytes = Array((line + "\n").utf8)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            _ = fsync(fd)
        }
    }
}

struct Writer: Sendable {
    let store: BufferStore
    let log: SeqLog
    let batch: Int
    let alarmEvery: Int

    func produce(_ p: Int) {
        var round = 0
        var value = Double(p)
        while true {
            round += 1
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let readings = (0..<batch).map { i -> Reading in
                value += 0.5
                return Reading(
                    device: "well-\(p)", tag: "tag-\(i % 16)", value: .number(value), quality: .good,
                    wallMillis: now, monotonicNanos: UInt64(round))
            }
            let store = self.store
            let append = { @Sendable () async throws(BufferError) -> ClosedRange<Int64>? in
                try await store.append(readings: readings, units: { _, tag in tag.hasSuffix("1") ? "psi" : nil })
            }
            switch blocking(append) {
            case .success(let range?): log.append("r \(range.lowerBound) \(range.upperBound)")
            case .success(nil): break
            case .failure(let e): FileHandle.standardError.write(Data("append: \(e)\n".utf8))
            }
            if alarmEvery > 0 && round % alarmEvery == 0 {
                let event = AlarmEventRecord(
                    alarm: "hi-\(p)", occurrence: "occ-\(p)-\(round)", kind: "limit", device: "well-\(p)", tag: "tag-0",
                    level: "h", transition: .raised,
                    priority: "high", value: value, limit: 100, reason: "round \(round)", wallMillis: now)
                // With the producer's state in the same transaction: the kill test checks that the state saved
                // always names the producer's last alarm event in the file (both or neither survive a kill).
                let state = StateEntry(key: "writer-\(p)", value: event.occurrence)
                let raise = { @Sendable () async throws(BufferError) -> Int64 in
                    try await store.append(alarms: [event], state: state)[0]
                }
                switch blocking(raise) {
                case .success(let seq): log.append("a \(seq)")
                case .failure(let e): FileHandle.standardError.write(Data("alarm: \(e)\n".utf8))
                }
            }
        }
    }
}

var args = Array(CommandLine.arguments.dropFirst())
guard args.count >= 2 else {
    FileHandle.standardError.write(
        Data(
            "usage: edgebuf-writer <buffer.db> <seq-log> [--max-bytes N] [--producers N] [--batch N] [--alarm-every N] [--linger-ms N]\n"
                .utf8))
    exit(2)
}
let dbPath = args.removeFirst(), logPath = args.removeFirst()
var maxBytes: Int64 = 64 << 20, producers = 4, batch = 50, alarmEvery = 25, lingerMillis: Int64 = 50
while args.count >= 2 {
    let (flag, value) = (args.removeFirst(), args.removeFirst())
    switch flag {
    case "--max-bytes": maxBytes = Int64(value) ?? maxBytes
    case "--producers": producers = Int(value) ?? producers
    case "--batch": batch = Int(value) ?? batch
    case "--alarm-every": alarmEvery = Int(value) ?? alarmEvery
    case "--linger-ms": lingerMillis = Int64(value) ?? lingerMillis
    default: FileHandle.standardError.write(Data("unknown option \(flag)\n".utf8)); exit(2)
    }
}

do {
    let (store, notes) = try BufferStore.open(
        path: dbPath, maxBytes: ByteCount(bytes: maxBytes),
        options: BufferOptions(
            groupCommit: GroupCommitPolicy(maxRecords: 1000, maxDelay: TimeSpan(milliseconds: lingerMillis))))
    for n in notes { FileHandle.standardOutput.write(Data("note: \(n)\n".utf8)) }
    FileHandle.standardOutput.write(Data("epoch \(store.epoch)\n".utf8))
    let writer = Writer(store: store, log: SeqLog(path: logPath), batch: batch, alarmEvery: alarmEvery)
    for p in 0..<producers {
        Thread { writer.produce(p) }.start()
    }
} catch {
    FileHandle.standardError.write(Data("edgebuf-writer: \(error)\n".utf8))
    exit(1)
}
while true { sleep(3600) }
