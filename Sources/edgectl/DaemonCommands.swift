import ArgumentParser
import EdgeCore
import EdgeRuntime
import Foundation

/// Where edged listens; `--socket` or `$EDGED_CONTROL_SOCKET` override it.
struct SocketOption: ParsableArguments {
    @Option(name: .customLong("socket"), help: "edged's control socket.")
    var path: String = ProcessInfo.processInfo.environment["EDGED_CONTROL_SOCKET"] ?? "/run/edged/control.sock"
    @Flag(help: "JSON output.") var json = false

    /// Sends one request; prints errors and exits 1 when edged says no.
    func call(_ command: String, _ args: [String: String]? = nil) throws -> Any {
        let data: Data
        do { data = try ControlClient.call(path, ControlRequest(command: command, args: args)) } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            Console.error("edged sent an unreadable reply: \(String(decoding: data.prefix(200), as: UTF8.self))")
            throw ExitCode(1)
        }
        guard obj["ok"] as? Bool == true else {
            Console.error("edged: \(obj["error"] as? String ?? "refused")")
            throw ExitCode(1)
        }
        if json {
            let out = try JSONSerialization.data(withJSONObject: obj["result"] ?? NSNull(), options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: out, as: UTF8.self))
        }
        return obj["result"] ?? NSNull()
    }
}

enum Fmt {
    static func ago(_ millis: Any?) -> String {
        guard let ms = (millis as? NSNumber)?.int64Value else { return "never" }
        let s = max(0, (Int64(Date().timeIntervalSince1970 * 1000) - ms) / 1000)
        let t = TimeSpan.seconds(s)
        return s == 0 ? "just now" : "\(t) ago"
    }
    static func int(_ v: Any?) -> Int64 { (v as? NSNumber)?.int64Value ?? 0 }
    /// " (as read from the buffer file 2 min ago)" when figures from memory are older than 10 s.
    static func asOf(_ ageMillis: Any?) -> String {
        guard let ms = (ageMillis as? NSNumber)?.int64Value else { return " (not read from the buffer file yet)" }
        return ms < 10_000 ? "" : " (as read from the buffer file \(TimeSpan.seconds(ms / 1000)) ago)"
    }
    static func bytes(_ v: Any?) -> String {
        let b = int(v)
        return b >= 1 << 20 ? String(format: "%.1f MiB", Double(b) / 1048576) : b >= 1024 ? String(format: "%.1f KiB", Double(b) / 1024) : "\(b) B"
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Devices online, backlog, last upload, active alarms.")
    @OptionGroup var socket: SocketOption
    func run() throws {
        let r = try socket.call("status") as? [String: Any] ?? [:]
        if socket.json { return }
        let backlog = r["backlog"] as? [String: Any] ?? [:]
        print("gateway   \(r["gateway"] ?? "?") — \(r["site"] ?? "") (edged \(r["version"] ?? "?"))")
        print("devices   \(Fmt.int(r["devicesOnline"]))/\(Fmt.int(r["devicesTotal"])) online")
        print("backlog   \(Fmt.int(backlog["alarm"])) alarm events, \(Fmt.int(backlog["reading"])) readings, \(Fmt.int(backlog["deadLetter"])) dead letters; oldest reading \(Fmt.ago(r["oldestReadingMillis"]))\(Fmt.asOf(r["bufferFiguresAgeMillis"]))")
        print("uplink    \(r["uplinkState"] ?? "?"), last upload \(Fmt.ago(r["lastUploadMillis"]))")
        print("alarms    \(Fmt.int(r["activeAlarms"])) active, \(Fmt.int(r["unacknowledgedAlarms"])) unacknowledged")
        print("clock     \((r["clockSynchronized"] as? Bool) == true ? "synchronized" : "NOT synchronized (readings are flagged)")")
        // A commit takes milliseconds; a second or more means a slow or hung disk.
        let writer = r["writer"] as? [String: Any] ?? [:]
        let stalled = Fmt.int(writer["stalledMillis"]), limit = Fmt.int(writer["stuckAfterMillis"])
        if stalled >= 1000 {
            let verdict = stalled >= limit ? "STUCK: watchdog pings stopped, systemd restarts edged" : "the watchdog stops at \(limit / 1000) s"
            print("writer    in one commit for \(stalled / 1000) s, \(Fmt.int(writer["readingsWaiting"])) readings waiting (\(verdict)); is the disk hung?")
        }
        let memory = r["memory"] as? [String: Any] ?? [:]
        print("memory    heap \(Fmt.bytes(memory["heapInUseBytes"])) in use (\(Fmt.bytes(memory["heapHeldBytes"])) held in \(memory["heapArenas"] as? Int ?? 0) arenas), SQLite \(Fmt.bytes(memory["sqliteBytes"]))")
    }
}

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "devices", abstract: "Comm state, counters and latency per device.")
    @OptionGroup var socket: SocketOption
    func run() throws {
        let list = try socket.call("devices") as? [[String: Any]] ?? []
        if socket.json { return }
        print("DEVICE".padding(toLength: 18, withPad: " ", startingAt: 0) + "BUS".padding(toLength: 14, withPad: " ", startingAt: 0)
              + "UNIT  STATE     REQUESTS  TIMEOUTS  EXCEPT  FRAMING  LATENCY")
        for d in list {
            let c = d["counters"] as? [String: Any] ?? [:]
            let online = d["online"] as? Bool == true
            let latency = Fmt.int(c["responses"]) > 0 ? String(format: "%.1f ms", Double(Fmt.int(c["latencyTotalMicros"])) / Double(Fmt.int(c["responses"])) / 1000) : "—"
            print("\(d["name"] ?? "")".padding(toLength: 18, withPad: " ", startingAt: 0)
                  + "\(d["bus"] ?? "")".padding(toLength: 14, withPad: " ", startingAt: 0)
                  + "\(Fmt.int(d["unit"]))".padding(toLength: 6, withPad: " ", startingAt: 0)
                  + (online ? "online" : "OFFLINE").padding(toLength: 10, withPad: " ", startingAt: 0)
                  + "\(Fmt.int(c["requests"]))".padding(toLength: 10, withPad: " ", startingAt: 0)
                  + "\(Fmt.int(c["timeouts"]))".padding(toLength: 10, withPad: " ", startingAt: 0)
                  + "\(Fmt.int(c["exceptions"]))".padding(toLength: 8, withPad: " ", startingAt: 0)
                  + "\(Fmt.int(c["framingErrors"]))".padding(toLength: 9, withPad: " ", startingAt: 0) + latency)
            if let e = d["lastError"] as? String { print("    last error: \(e)") }
            for a in d["planAdjustments"] as? [String] ?? [] { print("    plan: \(a)") }
        }
    }
}

struct AlarmsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "alarms", abstract: "Active and shelved alarms; acknowledge, shelve, unshelve.",
                                                    subcommands: [List.self, Ack.self, Shelve.self, Unshelve.self], defaultSubcommand: List.self)
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Active and shelved alarms.")
        @OptionGroup var socket: SocketOption
        func run() throws {
            let list = try socket.call("alarms") as? [[String: Any]] ?? []
            if socket.json { return }
            if list.isEmpty { print("no active alarms"); return }
            for a in list {
                let ack = a["acknowledged"] as? Bool == true ? "acked" : "UNACKED"
                print("\(a["id"] ?? "")  \(a["priority"] ?? "")  \(a["state"] ?? "")  \(ack)  \(a["reason"] ?? "")")
            }
        }
    }
    struct Ack: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ack", abstract: "Acknowledge an alarm.")
        @Argument var id: String
        @OptionGroup var socket: SocketOption
        func run() throws { _ = try socket.call("ack", ["id": id]); if !socket.json { print("acknowledged \(id)") } }
    }
    struct Shelve: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "shelve", abstract: "Shelve an alarm for a while.")
        @Argument var id: String
        @Option(name: .customLong("for"), help: "How long, e.g. 2h.") var duration: String
        @OptionGroup var socket: SocketOption
        func run() throws { _ = try socket.call("shelve", ["id": id, "for": duration]); if !socket.json { print("shelved \(id) for \(duration)") } }
    }
    struct Unshelve: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "unshelve", abstract: "End a shelving.")
        @Argument var id: String
        @OptionGroup var socket: SocketOption
        func run() throws { _ = try socket.call("unshelve", ["id": id]); if !socket.json { print("unshelved \(id)") } }
    }
}

struct BufferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "buffer", abstract: "Records, bytes vs budget, evictions, dead letters.")
    @OptionGroup var socket: SocketOption
    func run() throws {
        let b = try socket.call("buffer") as? [String: Any] ?? [:]
        if socket.json { return }
        if b["fileNotAnswering"] as? Bool == true {
            print("WAITING ON THE DISK: the buffer file did not answer within a few seconds (is the disk hung? see `edgectl status`)")
            print("             counts below are from memory; oldest reading and sizes\(Fmt.asOf(b["diskFiguresAgeMillis"]))")
        }
        print("epoch        \(b["epoch"] ?? "?")")
        print("queued       \(Fmt.int(b["alarmRecords"])) alarm events, \(Fmt.int(b["readingRecords"])) readings (\(Fmt.int(b["gapRecords"])) gap records)")
        print("on disk      \(Fmt.bytes(b["bytesOnDisk"])) of \(Fmt.bytes(b["budgetBytes"])) budget (peak \(Fmt.bytes(b["peakBytesOnDisk"])))")
        print("evicted      \(Fmt.int(b["evictedRecords"])) readings in \(Fmt.int(b["evictions"])) evictions; \(Fmt.int(b["notStoredRecords"])) not stored (disk)")
        print("dead letters \(Fmt.int(b["deadLetterRecords"])) records in \(Fmt.int(b["deadLetterBatches"])) batches")
        print("readings     \(Fmt.int(b["readingsPolled"])) polled, \(Fmt.int(b["readingsSeen"])) seen, \(Fmt.int(b["readingsSuppressed"])) held back by report by exception, \(Fmt.int(b["readingsStored"])) stored, \(Fmt.int(b["readingsNotStored"]) + Fmt.int(b["readingsDropped"])) not stored (in gap records)")
        print("oldest       \(Fmt.ago(b["oldestReadingMillis"]))")
        print("memory       \(Fmt.bytes(b["sqliteMemoryBytes"])) held by SQLite (peak \(Fmt.bytes(b["sqliteMemoryPeakBytes"])))")
    }
}

struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reload", abstract: "Make edged read its configuration again (a broken one is refused).")
    @OptionGroup var socket: SocketOption
    func run() throws { _ = try socket.call("reload"); if !socket.json { print("reloaded") } }
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
            let list = try socket.call("tail", device.map { ["device": $0] }) as? [[String: Any]] ?? []
            if socket.json { return }
            if !once { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            for v in list {
                // `formatted` is the value at the tag's resolution (NumberFormat.display); older daemons send only `value`.
                let value = v["formatted"] as? String
                    ?? (v["value"] as? NSNumber).map { TagValue.number($0.doubleValue).description } ?? (v["value"] as? String) ?? "—"
                print("\(v["device"] ?? "").\(v["tag"] ?? "")".padding(toLength: 40, withPad: " ", startingAt: 0)
                      + value.padding(toLength: max(16, value.count + 1), withPad: " ", startingAt: 0)
                      + "\(v["units"] ?? "")".padding(toLength: 8, withPad: " ", startingAt: 0) + "\(v["quality"] ?? "")  \(Fmt.ago(v["millis"]))")
            }
            fflush(nil)
            if !once { Thread.sleep(forTimeInterval: interval.seconds) }
        } while !once
    }
}
