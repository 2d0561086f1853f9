import ArgumentParser
import EdgeControl
import EdgeCore
import EdgeRuntime
import Foundation

/// Where edged listens; `--socket` or `$EDGED_CONTROL_SOCKET` override it.
struct SocketOption: ParsableArguments {
    @Option(name: .customLong("socket"), help: "edged's control socket.")
    var path: String = ProcessInfo.processInfo.environment["EDGED_CONTROL_SOCKET"] ?? "/run/edged/control.sock"
    @Flag(help: "JSON output.") var json = false
    @Option(help: "Seconds to wait for edged's answer (default 10, or $EDGECTL_TIMEOUT).")
    var timeout: Int = ProcessInfo.processInfo.environment["EDGECTL_TIMEOUT"].flatMap(Int.init) ?? 10

    /// Sends one request and decodes its result as `T`; with `--json`, prints the result as edged sent it.
    /// Prints edged's error (or a reply this edgectl does not understand) and exits 1.
    func call<T: Decodable>(_ command: ControlCommand, _ args: [String: String]? = nil, as type: T.Type) throws -> T {
        do {
            let data = try ControlClient.call(
                path, ControlRequest(command, args: args), timeoutSeconds: max(1, timeout))
            let (value, json) = try ControlEnvelope.decode(data, as: T.self)
            if self.json { print(String(decoding: json, as: UTF8.self)) }
            return value
        } catch let e as ControlCallError {
            Console.error(e.description)
        } catch {
            Console.error("\(error)")
        }
        throw ExitCode(1)
    }
}

enum Fmt {
    static func ago(_ millis: Int64?) -> String {
        guard let ms = millis else { return "never" }
        let s = max(0, (Int64(Date().timeIntervalSince1970 * 1000) - ms) / 1000)
        let t = TimeSpan.seconds(s)
        return s == 0 ? "just now" : "\(t) ago"
    }
    /// "in 25s" for a wall-clock time ahead, "now" when it has passed.
    static func ahead(_ millis: Int64) -> String {
        let s = (millis - Int64(Date().timeIntervalSince1970 * 1000)) / 1000
        return s <= 0 ? "now" : "in \(TimeSpan.seconds(s))"
    }
    /// " (as read from the buffer file 2 min ago)" when figures from memory are older than 10 s.
    static func asOf(_ ageMillis: Int64?) -> String {
        guard let ms = ageMillis else { return " (not read from the buffer file yet)" }
        return ms < 10_000 ? "" : " (as read from the buffer file \(TimeSpan.seconds(ms / 1000)) ago)"
    }
    static func bytes(_ b: Int64) -> String {
        return b >= 1 << 20
            ? String(format: "%.1f MiB", Double(b) / 1048576)
            : b >= 1024 ? String(format: "%.1f KiB", Double(b) / 1024) : "\(b) B"
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Devices online, backlog, last upload, active alarms.")
    @OptionGroup var socket: SocketOption
    func run() throws {
        let r = try socket.call(.status, as: StatusReply.self)
        if socket.json { return }
        print("gateway   \(r.gateway) — \(r.site) (edged \(r.version))")
        print("devices   \(r.devicesOnline)/\(r.devicesTotal) online")
        print(
            "backlog   \(r.backlog["alarm"] ?? 0) alarm events, \(r.backlog["reading"] ?? 0) readings, \(r.backlog["deadLetter"] ?? 0) dead letters; oldest reading \(Fmt.ago(r.oldestReadingMillis))\(Fmt.asOf(r.bufferFiguresAgeMillis))"
        )
        print("uplink    \(r.uplinkState), last upload \(Fmt.ago(r.lastUploadMillis))")
        print("alarms    \(r.activeAlarms) active, \(r.unacknowledgedAlarms) unacknowledged")
        print("clock     \(r.clockSynchronized ? "synchronized" : "NOT synchronized (readings are flagged)")")
        // A commit takes milliseconds; a second or more means a slow or hung disk.
        let stalled = r.writer.stalledMillis, limit = r.writer.stuckAfterMillis
        if stalled >= 1000 {
            let verdict =
                stalled >= limit
                ? "STUCK: watchdog pings stopped, systemd restarts edged" : "the watchdog stops at \(limit / 1000) s"
            print(
                "writer    in one commit for \(stalled / 1000) s, \(r.writer.readingsWaiting) readings waiting (\(verdict)); is the disk hung?"
            )
        }
        let m = r.memory
        print(
            "memory    heap \(Fmt.bytes(m.heapInUseBytes)) in use (\(Fmt.bytes(m.heapHeldBytes)) held in \(m.heapArenas) arenas), SQLite \(Fmt.bytes(m.sqliteBytes))"
        )
    }
}

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices", abstract: "Comm state, counters and latency per device.")
    @OptionGroup var socket: SocketOption
    func run() throws {
        let list = try socket.call(.devices, as: DevicesReply.self)
        if socket.json { return }
        print(
            "DEVICE".padding(toLength: 18, withPad: " ", startingAt: 0)
                + "BUS".padding(toLength: 14, withPad: " ", startingAt: 0)
                + "UNIT  STATE     REQUESTS  TIMEOUTS  EXCEPT  FRAMING  LATENCY")
        for d in list {
            let c = d.counters
            let latency = c.responses > 0 ? String(format: "%.1f ms", Double(c.meanLatencyMicros) / 1000) : "—"
            print(
                d.name.padding(toLength: 18, withPad: " ", startingAt: 0)
                    + d.bus.padding(toLength: 14, withPad: " ", startingAt: 0)
                    + "\(d.unit)".padding(toLength: 6, withPad: " ", startingAt: 0)
                    + (d.online ? "online" : "OFFLINE").padding(toLength: 10, withPad: " ", startingAt: 0)
                    + "\(c.requests)".padding(toLength: 10, withPad: " ", startingAt: 0)
                    + "\(c.timeouts)".padding(toLength: 10, withPad: " ", startingAt: 0)
                    + "\(c.exceptions)".padding(toLength: 8, withPad: " ", startingAt: 0)
                    + "\(c.framingErrors)".padding(toLength: 9, withPad: " ", startingAt: 0) + latency)
            if let e = d.lastError { print("    last error: \(e)") }
            for a in d.planAdjustments { print("    plan: \(a)") }
        }
    }
}

struct AlarmsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alarms", abstract: "Active and shelved alarms; acknowledge, shelve, unshelve.",
        subcommands: [List.self, Ack.self, Shelve.self, Unshelve.self], defaultSubcommand: List.self)
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Active and shelved alarms.")
        @OptionGroup var socket: SocketOption
        func run() throws {
            let list = try socket.call(.alarms, as: AlarmsReply.self)
            if socket.json { return }
            if list.isEmpty { print("no active alarms"); return }
            for a in list {
                print(
                    "\(a.id)  \(a.priority.rawValue)  \(a.state.rawValue)  \(a.acknowledged ? "acked" : "UNACKED")  \(a.reason)"
                )
            }
        }
    }
    struct Ack: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ack", abstract: "Acknowledge an alarm.")
        @Argument var id: String
        @OptionGroup var socket: SocketOption
        func run() throws {
            _ = try socket.call(.ack, ["id": id], as: DoneReply.self); if !socket.json { print("acknowledged \(id)") }
        }
    }
    struct Shelve: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "shelve", abstract: "Shelve an alarm for a while.")
        @Argument var id: String
        @Option(name: .customLong("for"), help: "How long, e.g. 2h.") var duration: String
        @OptionGroup var socket: SocketOption
        func run() throws {
            _ = try socket.call(.shelve, ["id": id, "for": duration], as: DoneReply.self)
            if !socket.json { print("shelved \(id) for \(duration)") }
        }
    }
    struct Unshelve: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "unshelve", abstract: "End a shelving.")
        @Argument var id: String
        @OptionGroup var socket: SocketOption
        func run() throws {
            _ = try socket.call(.unshelve, ["id": id], as: DoneReply.self); if !socket.json { print("unshelved \(id)") }
        }
    }
}

struct BufferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "buffer", abstract: "Records, bytes vs budget, evictions, dead letters.")
    @OptionGroup var socket: SocketOption
    func run() throws {
        let b = try socket.call(.buffer, as: BufferReply.self)
        if socket.json { return }
        if b.fileNotAnswering {
            print(
                "WAITING ON THE DISK: the buffer file did not answer within a few seconds (is the disk hung? see `edgectl status`)"
            )
            print(
                "             counts below are from memory; oldest reading and sizes\(Fmt.asOf(b.diskFiguresAgeMillis))"
            )
        }
        print("epoch        \(b.epoch)")
        print("queued       \(b.alarmRecords) alarm events, \(b.readingRecords) readings (\(b.gapRecords) gap records)")
        print(
            "on disk      \(Fmt.bytes(b.bytesOnDisk)) of \(Fmt.bytes(b.budgetBytes)) budget (peak \(Fmt.bytes(b.peakBytesOnDisk)))"
        )
        print(
            "evicted      \(b.evictedRecords) readings in \(b.evictions) evictions; \(b.notStoredRecords) not stored (disk)"
        )
        print("dead letters \(b.deadLetterRecords) records in \(b.deadLetterBatches) batches")
        print(
            "readings     \(b.readingsPolled) polled, \(b.readingsSeen) seen, \(b.readingsSuppressed) held back by report by exception, "
                + "\(b.readingsStored) stored, \(b.readingsNotStored + b.readingsDropped) not stored (in gap records)")
        print("oldest       \(Fmt.ago(b.oldestReadingMillis))")
        print(
            "memory       \(Fmt.bytes(b.sqliteMemoryBytes)) held by SQLite (peak \(Fmt.bytes(b.sqliteMemoryPeakBytes)))"
        )
    }
}

struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload", abstract: "Make edged read its configuration again (a broken one is refused).")
    @OptionGroup var socket: SocketOption
    func run() throws { _ = try socket.call(.reload, as: DoneReply.self); if !socket.json { print("reloaded") } }
}

struct TailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tail", abstract: "Live values, updating in place.")
    @OptionGroup var socket: SocketOption
    @Option(help: "Only this device.") var device: String?
    @Option(help: "Refresh interval.") var every: String = "1s"
    @Flag(help: "Print once and exit.") var once = false
    func run() throws {
        let interval = TimeSpan(parsing: every) ?? .seconds(1)
        repeat {
            let list = try socket.call(.tail, device.map { ["device": $0] }, as: TailReply.self)
            if socket.json { return }
            if !once { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            for v in list {
                // `formatted` is the value at the tag's resolution (NumberFormat.display); older daemons send only `value`.
                let value = v.formatted ?? v.value?.description ?? "—"
                print(
                    "\(v.device).\(v.tag)".padding(toLength: 40, withPad: " ", startingAt: 0)
                        + value.padding(toLength: max(16, value.count + 1), withPad: " ", startingAt: 0)
                        + (v.units ?? "").padding(toLength: 8, withPad: " ", startingAt: 0)
                        + "\(v.quality)  \(Fmt.ago(v.millis))")
            }
            fflush(nil)
            if !once { Thread.sleep(forTimeInterval: interval.seconds) }
        } while !once
    }
}
