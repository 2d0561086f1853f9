import EdgeBuffer
import EdgeControl
import EdgeCore
import EdgeRuntime
import EdgeSystem
import Foundation
import Logging
import ModbusPoller
import Uplink

/// The control socket's commands (docs/control-protocol.md), answered with the types of `EdgeControl`.
/// Runs on the connection's thread and waits for the gateway; changes (ack, shelve, reload, …) are logged
/// with the peer's uid.
enum ControlHandlers {
    static func handle(
        _ req: ControlRequest, peer: ControlPeer, gateway: Gateway, uplink: UplinkService, reloader: ReloadService,
        logger: Logger
    ) -> Data {
        guard let command = ControlCommand(rawValue: req.command) else {
            return ControlEnvelope.error(.unknownCommand, "unknown command '\(req.command)' (\(ControlCommand.names))")
        }
        let box = ReplyBox()
        let done = DispatchSemaphore(value: 0)
        Task {
            box.data = await respond(
                command, args: req.args ?? [:], peer: peer, gateway: gateway, uplink: uplink, reloader: reloader,
                logger: logger)
            done.signal()
        }
        done.wait()
        return box.data ?? ControlEnvelope.error(.internalError, "internal error")
    }

    // Guard: written by the task before `done.signal()`, read after `done.wait()`.
    private final class ReplyBox: @unchecked Sendable { var data: Data? }

    /// How long `buffer` waits for the file before it answers from memory (edgectl waits 10 s).
    static let bufferReadTimeout = Duration.seconds(4)

    static func respond(
        _ command: ControlCommand, args: [String: String], peer: ControlPeer, gateway: Gateway, uplink: UplinkService,
        reloader: ReloadService, logger: Logger
    ) async -> Data {
        let who = "edgectl:uid \(peer.uid)"
        switch command {
        case .status:
            return ControlEnvelope.ok(await status(gateway, uplink: uplink))
        case .devices:
            return ControlEnvelope.ok(gateway.polling.status() as DevicesReply)
        case .alarms:
            return ControlEnvelope.ok(await gateway.activeAlarms as AlarmsReply)
        case .alarmHealth:
            return ControlEnvelope.ok(await gateway.alarmHealth() as AlarmHealthReply)
        case .ack, .shelve, .unshelve:
            guard let id = args["id"] else {
                return ControlEnvelope.error(
                    .badArguments, "\(command.rawValue) needs args.id (an alarm id from `edgectl alarms`)")
            }
            do {
                switch command {
                case .ack: try await gateway.acknowledge(id, by: who)
                case .shelve:
                    guard let span = args["for"].flatMap(TimeSpan.init(parsing:)), span.milliseconds > 0 else {
                        return ControlEnvelope.error(.badArguments, "shelve needs args.for, a duration such as 2h")
                    }
                    try await gateway.shelve(id, for: span, by: who)
                default: try await gateway.unshelve(id, by: who)
                }
            } catch {
                return ControlEnvelope.error(.notFound, "\(error)")
            }
            logger.notice(
                "alarm \(id) \(command.rawValue) by \(peer)", metadata: ["alarm": "\(id)", "uid": "\(peer.uid)"])
            return ControlEnvelope.ok(DoneReply(done: "\(command.rawValue) \(id)"))
        case .reload:
            logger.notice("reload requested by \(peer)", metadata: ["uid": "\(peer.uid)"])
            if let errors = await reloader.reload(by: who) {
                return ControlEnvelope.error(
                    .refused,
                    "configuration refused; the running one stays:\n"
                        + errors.map(\.description).joined(separator: "\n"))
            }
            return ControlEnvelope.ok(DoneReply(done: "reloaded"))
        case .buffer:
            return await buffer(gateway)
        case .uplink:
            return ControlEnvelope.ok(uplink.status as UplinkReply)
        case .uplinkAckRejected:
            let standing = uplink.acknowledgeRejected()
            logger.notice("dead letters acknowledged by \(peer)", metadata: ["uid": "\(peer.uid)"])
            return ControlEnvelope.ok(
                DoneReply(done: standing ? "uplink-rejected-batch acknowledged" : "no rejected-batch alarm stands"))
        case .tail:
            let c = await gateway.config
            let latest = await gateway.latest
            var out: TailReply = []
            for d in c.devices where args["device"] == nil || args["device"] == d.name {
                for t in c.effectiveTags(of: d) {
                    guard let r = latest["\(d.name).\(t.name)"] else { continue }
                    out.append(
                        TailValue(
                            device: d.name, tag: t.name, value: r.value, units: t.units, quality: r.quality.description,
                            millis: r.wallMillis, formatted: r.value.map { NumberFormat.of(t).display($0) }))
                }
            }
            return ControlEnvelope.ok(out)
        }
    }

    /// From memory only: a field tech asks exactly when the disk may be hung.
    static func status(_ gateway: Gateway, uplink uplinkService: UplinkService) async -> StatusReply {
        let devices = gateway.polling.status()
        let remembered = gateway.store.rememberedStats()
        let stats = remembered.stats
        let uplink = uplinkService.status
        let alarms = await gateway.activeAlarms
        let c = await gateway.config
        let heap = HeapUsage.now()
        return StatusReply(
            gateway: c.gateway.id, site: c.gateway.site, version: EdgeCoreVersion.string,
            devicesOnline: devices.filter(\.online).count, devicesTotal: devices.count,
            backlog: [
                "alarm": stats.alarmRecords, "reading": stats.readingRecords, "deadLetter": stats.deadLetterRecords
            ],
            oldestReadingMillis: stats.oldestReadingMillis, bufferFiguresAgeMillis: remembered.diskFiguresAgeMillis,
            lastUploadMillis: uplink.lastSuccessMillis, uplinkState: uplink.state, activeAlarms: alarms.count,
            unacknowledgedAlarms: alarms.filter { !$0.acknowledged }.count,
            clockSynchronized: ClockStatus.isSynchronized(),
            startedMillis: gateway.startedWallMillis,
            writer: WriterFigures(
                stalledMillis: gateway.store.writerStalledMillis,
                readingsWaiting: gateway.store.readingsWaitingForCommit,
                stuckAfterMillis: gateway.writerStuckAfterMillis.withLock { $0 }),
            memory: MemoryFigures(
                heapInUseBytes: heap.inUseBytes, heapHeldBytes: heap.heldBytes, heapArenas: heap.arenas,
                sqliteBytes: BufferStore.sqliteMemory.used))
    }

    /// Reads the file; on a hung disk it answers from memory after `bufferReadTimeout`, saying so.
    static func buffer(_ gateway: Gateway) async -> Data {
        let store = gateway.store
        let read = await valueWithin(bufferReadTimeout) { () async -> Result<BufferStats, BufferError> in
            do throws(BufferError) { return .success(try await store.stats()) } catch { return .failure(error) }
        }
        let s: BufferStats
        var fileNotAnswering = false
        var age: Int64? = 0
        switch read {
        case .success(let stats)?: s = stats
        case .failure(let e)?: return ControlEnvelope.error(.unavailable, "cannot read buffer statistics: \(e)")
        case nil:
            let r = store.rememberedStats()
            (s, fileNotAnswering, age) = (r.stats, true, r.diskFiguresAgeMillis)
        }
        let ingest = await gateway.stats
        let intake = gateway.intake.withLock { $0 }
        let sqlite = BufferStore.sqliteMemory
        return ControlEnvelope.ok(
            BufferReply(
                epoch: s.epoch, alarmRecords: s.alarmRecords, readingRecords: s.readingRecords,
                gapRecords: s.gapRecords,
                deadLetterRecords: s.deadLetterRecords, bytesOnDisk: s.bytesOnDisk, budgetBytes: s.budgetBytes,
                peakBytesOnDisk: s.peakBytesOnDisk, evictions: s.evictions, evictedRecords: s.evictedRecords,
                notStoredRecords: s.notStoredRecords, deadLetterBatches: s.deadLetterBatches,
                oldestReadingMillis: s.oldestReadingMillis, lastSeq: s.lastSeq,
                readingsPolled: intake.readingsPolled, readingsDropped: intake.readingsDropped,
                readingsSeen: ingest.readingsSeen,
                readingsSuppressed: ingest.readingsSuppressed, readingsStored: ingest.readingsStored,
                readingsNotStored: ingest.readingsNotStored, fileNotAnswering: fileNotAnswering,
                diskFiguresAgeMillis: age,
                sqliteMemoryBytes: sqlite.used, sqliteMemoryPeakBytes: sqlite.peak))
    }
}
