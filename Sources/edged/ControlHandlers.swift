import EdgeBuffer
import EdgeCore
import EdgeRuntime
import Foundation
import Logging
import Synchronization
import ModbusPoller
import Uplink

/// The control socket's commands (docs/control-protocol.md). Runs on the socket's thread and waits for the
/// gateway actor; changes (ack, shelve, reload) are logged with the peer's uid.
enum ControlHandlers {
    struct Status: Codable {
        var gateway: String
        var site: String
        var version: String
        var devicesOnline: Int
        var devicesTotal: Int
        var backlog: [String: Int64]
        var oldestReadingMillis: Int64?
        /// The reply comes from memory: the backlog is current, the oldest reading is as last read from the
        /// buffer file this long ago (nil: not read yet).
        var bufferFiguresAgeMillis: Int64?
        var lastUploadMillis: Int64?
        var uplinkState: String
        var activeAlarms: Int
        var unacknowledgedAlarms: Int
        var clockSynchronized: Bool
        var startedMillis: Int64
        /// The buffer's writer: how long it has been inside one commit (or its oldest append waiting), how
        /// many readings wait behind it, and the stall after which the watchdog pings stop. From memory, so
        /// it answers on a hung disk too.
        var writer: Writer
        /// The process's heap (glibc, all arenas) and SQLite's share of it.
        var memory: Memory
    }

    struct Writer: Codable {
        var stalledMillis: Int64
        var readingsWaiting: Int
        var stuckAfterMillis: Int64
    }

    struct Memory: Codable {
        var heapInUseBytes: Int64, heapHeldBytes: Int64, heapArenas: Int, sqliteBytes: Int64
        static func now() -> Memory {
            let heap = HeapUsage.now()
            return Memory(heapInUseBytes: heap.inUseBytes, heapHeldBytes: heap.heldBytes, heapArenas: heap.arenas,
                          sqliteBytes: BufferStore.sqliteMemory.used)
        }
    }

    struct Buffer: Codable {
        var epoch: String
        var alarmRecords: Int64, readingRecords: Int64, gapRecords: Int64, deadLetterRecords: Int64
        var bytesOnDisk: Int64, budgetBytes: Int64, peakBytesOnDisk: Int64
        var evictions: Int64, evictedRecords: Int64, notStoredRecords: Int64, deadLetterBatches: Int64
        var oldestReadingMillis: Int64?
        var lastSeq: Int64
        var readingsSeen: Int, readingsStored: Int
        /// Every reading polled, accounted for: polled = dropped before ingest + seen; seen = suppressed by
        /// report-by-exception + stored + not stored + still queued for their commit.
        var readingsPolled: Int, readingsDropped: Int, readingsSuppressed: Int, readingsNotStored: Int
        /// Set when the file did not answer within `bufferReadTimeout`: the counts are from memory, the oldest
        /// reading and sizes as last read `diskFiguresAgeMillis` ago.
        var fileNotAnswering: Bool
        var diskFiguresAgeMillis: Int64?
        /// What SQLite holds in the process (page caches, statements) now and at most since start.
        var sqliteMemoryBytes: Int64, sqliteMemoryPeakBytes: Int64
    }

    struct TailValue: Codable {
        var device: String, tag: String, value: TagValue?, units: String?, quality: String, millis: Int64
        /// The value at the tag's resolution, as the uplink sends it (`77.6`, not `77.60000000000001`).
        var formatted: String?
    }

    static func handle(_ req: ControlRequest, peer: ControlPeer, gateway: Gateway, reloader: ReloadService, logger: Logger) -> Data {
        let box = ReplyBox()
        let done = DispatchSemaphore(value: 0)
        Task {
            box.data = await respond(req, peer: peer, gateway: gateway, reloader: reloader, logger: logger)
            done.signal()
        }
        done.wait()
        return box.data ?? ControlServer.errorReply("internal error")
    }

    private final class ReplyBox: @unchecked Sendable { var data: Data? }

    /// How long `buffer` waits for the file before it answers from memory (edgectl waits 10 s).
    static let bufferReadTimeout = Duration.seconds(4)

    static func ok<T: Encodable>(_ value: T) -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        guard let body = try? enc.encode(value) else { return ControlServer.errorReply("cannot encode reply") }
        return Data("{\"ok\":true,\"result\":".utf8) + body + Data("}".utf8)
    }

    static func respond(_ req: ControlRequest, peer: ControlPeer, gateway: Gateway, reloader: ReloadService, logger: Logger) async -> Data {
        let args = req.args ?? [:]
        let who = "edgectl:uid \(peer.uid)"
        switch req.command {
        case "status":
            // From memory only: a field tech asks exactly when the disk may be hung.
            let devices = gateway.polling.status()
            let remembered = gateway.store.rememberedStats()
            let stats: BufferStats? = remembered.stats
            let uplink = gateway.uplinkService.status
            let alarms = await gateway.activeAlarms
            let c = await gateway.config
            return ok(Status(gateway: c.gateway.id, site: c.gateway.site, version: EdgeCoreVersion.string,
                             devicesOnline: devices.filter(\.online).count, devicesTotal: devices.count,
                             backlog: ["alarm": stats?.alarmRecords ?? -1, "reading": stats?.readingRecords ?? -1, "deadLetter": stats?.deadLetterRecords ?? -1],
                             oldestReadingMillis: stats?.oldestReadingMillis, bufferFiguresAgeMillis: remembered.diskFiguresAgeMillis,
                             lastUploadMillis: uplink.lastSuccessMillis,
                             uplinkState: uplink.state, activeAlarms: alarms.count,
                             unacknowledgedAlarms: alarms.filter { !$0.acknowledged }.count,
                             clockSynchronized: ClockStatus.isSynchronized(), startedMillis: gateway.startedWallMillis,
                             writer: Writer(stalledMillis: gateway.store.writerStalledMillis, readingsWaiting: gateway.store.readingsWaitingForCommit,
                                            stuckAfterMillis: gateway.writerStuckAfterMillis.withLock { $0 }),
                             memory: .now()))
        case "devices":
            return ok(gateway.polling.status())
        case "alarms":
            return ok(await gateway.activeAlarms)
        case "alarm-health":
            return ok(await gateway.alarmHealth())
        case "ack", "shelve", "unshelve":
            guard let id = args["id"] else { return ControlServer.errorReply("\(req.command) needs args.id (an alarm id from `edgectl alarms`)") }
            do {
                switch req.command {
                case "ack": try await gateway.acknowledge(id, by: who)
                case "shelve":
                    guard let span = args["for"].flatMap(TimeSpan.init(parsing:)), span.milliseconds > 0 else {
                        return ControlServer.errorReply("shelve needs args.for, a duration such as 2h")
                    }
                    try await gateway.shelve(id, for: span, by: who)
                default: try await gateway.unshelve(id, by: who)
                }
            } catch {
                return ControlServer.errorReply("\(error)")
            }
            logger.notice("alarm \(id) \(req.command) by \(peer)", metadata: ["alarm": "\(id)", "uid": "\(peer.uid)"])
            return ok(["done": "\(req.command) \(id)"])
        case "reload":
            logger.notice("reload requested by \(peer)", metadata: ["uid": "\(peer.uid)"])
            if let errors = await reloader.reload(by: who) {
                return ControlServer.errorReply("configuration refused; the running one stays:\n" + errors.map(\.description).joined(separator: "\n"))
            }
            return ok(["done": "reloaded"])
        case "buffer":
            // Reads the file; on a hung disk it answers from memory after `bufferReadTimeout`, saying so.
            let store = gateway.store
            let read = await valueWithin(bufferReadTimeout) { () async -> Result<BufferStats, BufferError> in
                do throws(BufferError) { return .success(try await store.stats()) } catch { return .failure(error) }
            }
            let s: BufferStats
            var fileNotAnswering = false
            var age: Int64? = 0
            switch read {
            case .success(let stats)?: s = stats
            case .failure(let e)?: return ControlServer.errorReply("cannot read buffer statistics: \(e)")
            case nil:
                let r = store.rememberedStats()
                (s, fileNotAnswering, age) = (r.stats, true, r.diskFiguresAgeMillis)
            }
            let ingest = await gateway.stats
            let intake = gateway.intake.withLock { $0 }
            let sqlite = BufferStore.sqliteMemory
            return ok(Buffer(epoch: s.epoch, alarmRecords: s.alarmRecords, readingRecords: s.readingRecords, gapRecords: s.gapRecords,
                             deadLetterRecords: s.deadLetterRecords, bytesOnDisk: s.bytesOnDisk, budgetBytes: s.budgetBytes,
                             peakBytesOnDisk: s.peakBytesOnDisk, evictions: s.evictions, evictedRecords: s.evictedRecords,
                             notStoredRecords: s.notStoredRecords, deadLetterBatches: s.deadLetterBatches,
                             oldestReadingMillis: s.oldestReadingMillis, lastSeq: s.lastSeq,
                             readingsSeen: ingest.readingsSeen, readingsStored: ingest.readingsStored,
                             readingsPolled: intake.readingsPolled, readingsDropped: intake.readingsDropped,
                             readingsSuppressed: ingest.readingsSuppressed, readingsNotStored: ingest.readingsNotStored,
                             fileNotAnswering: fileNotAnswering, diskFiguresAgeMillis: age,
                             sqliteMemoryBytes: sqlite.used, sqliteMemoryPeakBytes: sqlite.peak))
        case "uplink":
            return ok(gateway.uplinkService.status)
        case "uplink-ack-rejected":
            let standing = gateway.uplinkService.acknowledgeRejected()
            logger.notice("dead letters acknowledged by \(peer)", metadata: ["uid": "\(peer.uid)"])
            return ok(["done": standing ? "uplink-rejected-batch acknowledged" : "no rejected-batch alarm stands"])
        case "tail":
            let c = await gateway.config
            let latest = await gateway.latest
            var out: [TailValue] = []
            for d in c.devices where args["device"] == nil || args["device"] == d.name {
                for t in c.effectiveTags(of: d) {
                    guard let r = latest["\(d.name).\(t.name)"] else { continue }
                    out.append(TailValue(device: d.name, tag: t.name, value: r.value, units: t.units, quality: r.quality.description, millis: r.wallMillis,
                                         formatted: r.value.map { NumberFormat.of(t).display($0) }))
                }
            }
            return ok(out)
        default:
            return ControlServer.errorReply("unknown command '\(req.command)' (status, devices, alarms, alarm-health, ack, shelve, unshelve, reload, buffer, uplink, uplink-ack-rejected, tail)")
        }
    }
}
