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
            // The gateway's own health series (GatewayHealth), under the gateway's id.
            let gw = c.gateway.id
            if args["device"] == nil || args["device"] == gw {
                let health = latest.values.filter { $0.device == gw }.sorted { $0.tag < $1.tag }
                let tags = GatewayHealth.tags(devices: c.devices.map(\.name), buses: c.buses.map(\.name))
                let units = Dictionary(tags.map { ($0.name, $0.units) }, uniquingKeysWith: { a, _ in a })
                for r in health {
                    out.append(
                        TailValue(
                            device: gw, tag: r.tag, value: r.value, units: units[r.tag] ?? nil,
                            quality: r.quality.description, millis: r.wallMillis,
                            formatted: r.value.map { NumberFormat.shortest.display($0) }))
                }
            }
            return ControlEnvelope.ok(out)
        case .efm:
            return await efm(gateway, device: args["device"])
        case .efmHistory:
            return await efmHistory(gateway, args: args)
        case .efmResume:
            guard let device = args["device"], let archive = args["archive"].flatMap(ArchiveKind.init(rawValue:)) else {
                return ControlEnvelope.error(
                    .badArguments, "efm-resume needs args.device and args.archive (hourly, daily)")
            }
            guard let collection = gateway.polling.efmCollections()[device] else {
                return ControlEnvelope.error(.notFound, "no EFM collection runs for device '\(device)'")
            }
            guard collection.resume(archive) else {
                return ControlEnvelope.error(.notFound, "\(device): the \(archive.rawValue) archive is not held")
            }
            logger.notice(
                "EFM \(device) \(archive.rawValue) resumed by \(peer)",
                metadata: ["device": "\(device)", "uid": "\(peer.uid)"])
            return ControlEnvelope.ok(DoneReply(done: "\(device) \(archive.rawValue) resumed"))
        }
    }

    /// The flow computers configured for EFM: their collections' state and the buffer's counts.
    static func efm(_ gateway: Gateway, device: String?) async -> Data {
        let c = await gateway.config
        let collections = gateway.polling.efmCollections()
        let store = gateway.store
        let meters = c.devices.filter { $0.efm != nil && (device == nil || $0.name == device) }
        if let device, meters.isEmpty {
            return ControlEnvelope.error(.notFound, "device '\(device)' is not configured for EFM")
        }
        let read = await valueWithin(bufferReadTimeout) { () async -> Result<[String: EFMCounts], BufferError> in
            await Task.detached {
                do throws(BufferError) {
                    var out: [String: EFMCounts] = [:]
                    for d in meters { out[d.name] = try store.efmCounts(device: d.name) }
                    return .success(out)
                } catch { return .failure(error) }
            }.value
        }
        let counts: [String: EFMCounts]
        switch read {
        case .success(let v)?: counts = v
        case .failure(let e)?: return ControlEnvelope.error(.unavailable, "cannot read EFM records: \(e)")
        case nil: return ControlEnvelope.error(.unavailable, "the buffer file did not answer (is the disk hung?)")
        }
        let out: EFMReply = meters.map { d in
            let n = counts[d.name] ?? EFMCounts()
            return EFMMeterReply(
                collection: collections[d.name]?.status, device: d.name, meter: d.efm?.meter ?? d.name,
                records: n.records, conflicts: n.conflicts, gaps: n.gaps, queued: n.queued, uploaded: n.uploaded,
                rejected: n.rejected)
        }
        return ControlEnvelope.ok(out)
    }

    /// One archive's stored records of one device (`from`, `to`: device-local times; `limit`: the newest n).
    static func efmHistory(_ gateway: Gateway, args: [String: String]) async -> Data {
        let c = await gateway.config
        guard let name = args["device"], let archive = args["archive"], ["hourly", "daily", "event"].contains(archive)
        else {
            return ControlEnvelope.error(
                .badArguments, "efm-history needs args.device and args.archive (hourly, daily, event)")
        }
        guard let d = c.device(named: name), let e = d.efm, let template = c.template(named: d.template),
            let profile = template.efmProfile, let profileName = template.efm
        else {
            return ControlEnvelope.error(.notFound, "device '\(name)' is not configured for EFM")
        }
        let limit = args["limit"].flatMap { Int($0) }
        let (from, to) = (args["from"], args["to"])
        let store = gateway.store
        let read = await valueWithin(bufferReadTimeout) { () async -> Result<[EFMStoredRecord], BufferError> in
            await Task.detached {
                do throws(BufferError) {
                    return .success(
                        try store.efmRecords(device: name, archive: archive, from: from, to: to, limit: limit))
                } catch { return .failure(error) }
            }.value
        }
        let rows: [EFMStoredRecord]
        switch read {
        case .success(let v)?: rows = v
        case .failure(let err)?: return ControlEnvelope.error(.unavailable, "cannot read EFM records: \(err)")
        case nil: return ControlEnvelope.error(.unavailable, "the buffer file did not answer (is the disk hung?)")
        }
        let states = ["queued", "uploaded", "rejected"]
        return ControlEnvelope.ok(
            EFMHistoryReply(
                device: name, meter: e.meter, profile: profileName, archive: archive,
                contractHour: e.contractHour(profile: profile),
                records: rows.map {
                    EFMHistoryRecord(
                        deviceTime: $0.deviceTime, key: $0.key, hash: $0.hash, raw: EFMExport.hex($0.raw),
                        decoded: $0.decoded, collectedMillis: $0.collectedWallMillis, seq: $0.seq,
                        upload: states.indices.contains($0.upload) ? states[$0.upload] : "\($0.upload)")
                }))
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
