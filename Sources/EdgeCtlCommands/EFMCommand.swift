import ArgumentParser
import EdgeControl
import EdgeCore
import Foundation

/// `edgectl efm`: the flow computers' gas measurement records (docs/efm.md).
struct EFMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "efm",
        abstract: "Gas measurement records: collection per meter, stored history, CSV export, resume after a resync.",
        subcommands: [Status.self, History.self, Export.self, Resume.self], defaultSubcommand: Status.self)

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Per meter: last record stored, pointer, records behind, last event acknowledge, upload.")
        @Option(help: "Only this device.") var device: String?
        @OptionGroup var socket: SocketOption
        func run() throws {
            let meters = try socket.call(.efm, device.map { ["device": $0] }, as: EFMReply.self)
            if socket.json { return }
            if meters.isEmpty { print("no device is configured for EFM collection") }
            for m in meters {
                print("\(m.device)  meter \(m.meter)")
                guard let c = m.collection else {
                    print("  not collecting (device disabled, `collect: false`, or its bus is not running)")
                    continue
                }
                print("  profile \(c.profile), contract hour \(c.contractHour)")
                for archive in ["hourly", "daily"] {
                    let held =
                        c.held[archive].map { "  HELD: \($0) — `edgectl efm resume \(m.device) \(archive)`" } ?? ""
                    print(
                        "  \(archive.padding(toLength: 7, withPad: " ", startingAt: 0)) last stored \(c.lastStored[archive] ?? "none"), "
                            + "pointer \(c.lastWritten[archive].map(String.init) ?? "not read yet"), "
                            + "\(c.behind[archive] ?? 0) behind; \(m.records[archive] ?? 0) stored, "
                            + "\(m.gaps[archive] ?? 0) gaps, \(m.conflicts[archive] ?? 0) conflicts\(held)")
                }
                print(
                    "  events  \(m.records["event"] ?? 0) stored; \(c.eventAcknowledges) acknowledges, last \(Fmt.ago(c.lastEventAckWallMillis))"
                )
                print("  upload  \(m.queued) queued, \(m.uploaded) uploaded, \(m.rejected) rejected by the server")
                print("  stores  \(c.stores), last \(Fmt.ago(c.lastStoreWallMillis))")
                if let e = c.lastError { print("  ERROR   \(e) (\(Fmt.ago(c.lastErrorWallMillis)))") }
            }
        }
    }

    struct Range: ParsableArguments {
        @Argument(help: "The flow computer's device name.") var device: String
        @Option(help: "hourly, daily or event.") var archive = "hourly"
        @Option(help: "First device time, YYYY-MM-DDTHH:MM:SS (device-local; a prefix such as 2024-06-03 works).")
        var from: String?
        @Option(help: "Last device time, inclusive (a prefix such as 2024-06 covers that month).") var to: String?
        @Option(help: "Only the newest this many records.") var limit: Int?

        var args: [String: String] {
            var a = ["device": device, "archive": archive]
            if let from { a["from"] = from }
            // A prefix names everything that starts with it: "2024-06-03" runs to the day's last second.
            if let to { a["to"] = to + "~" }
            if let limit { a["limit"] = String(limit) }
            return a
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "history", abstract: "Stored records of one archive, oldest first.")
        @OptionGroup var range: Range
        @OptionGroup var socket: SocketOption
        func run() throws {
            let h = try socket.call(.efmHistory, range.args, as: EFMHistoryReply.self)
            if socket.json { return }
            print(
                "\(h.device)  meter \(h.meter)  \(h.archive)  (\(h.records.count) records, contract hour \(h.contractHour))"
            )
            for r in h.records {
                print("\(r.deviceTime)  \(Self.summary(r, archive: h.archive))  [\(r.upload)]")
            }
        }

        static func summary(_ r: EFMHistoryRecord, archive: String) -> String {
            let data = Data(r.decoded.utf8)
            if archive == "event", let e = try? JSONDecoder().decode(EventRecord.self, from: data) {
                let what = e.isOperatorEvent ? "changed" : (e.alarmSet == true ? "alarm set" : "alarm cleared")
                return "register \(e.register) \(what): \(e.asFound) → \(e.asLeft) (bitmap \(e.bitmap))"
            }
            guard let a = try? JSONDecoder().decode(ArchiveRecord.self, from: data) else { return "hash \(r.hash)" }
            return a.values.prefix(6).map { "\($0.name) \(Float($0.value))" }.joined(separator: ", ")
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Hourly or daily records as CSV (API 21.1 decimals, each line with its raw bytes).")
        @OptionGroup var range: Range
        @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?
        @OptionGroup var socket: SocketOption
        func validate() throws {
            guard range.archive == "hourly" || range.archive == "daily" else {
                throw ValidationError("export takes --archive hourly or daily")
            }
        }
        func run() throws {
            let h = try socket.call(.efmHistory, range.args, as: EFMHistoryReply.self)
            if socket.json { return }
            guard let profile = EFMProfile.builtIn(named: h.profile), let kind = ArchiveKind(rawValue: h.archive) else {
                throw ValidationError("unknown EFM profile '\(h.profile)' or archive '\(h.archive)'")
            }
            let archive = profile.archive(kind)
            var lines = [EFMExport.header(archive)]
            for r in h.records {
                let record = try JSONDecoder().decode(ArchiveRecord.self, from: Data(r.decoded.utf8))
                lines.append(EFMExport.line(record, meterID: h.meter, archive: archive, contractHour: h.contractHour))
            }
            let text = lines.joined(separator: "\n") + "\n"
            if let output {
                try text.write(toFile: output, atomically: true, encoding: .utf8)
                Console.error("\(h.records.count) \(h.archive) records of \(h.device) written to \(output)")
            } else {
                print(text, terminator: "")
            }
        }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "resume",
            abstract: "Resume an archive held at a resync (the device clock was set back or its ring was reset).")
        @Argument(help: "The flow computer's device name.") var device: String
        @Argument(help: "hourly or daily.") var archive: String
        @OptionGroup var socket: SocketOption
        func run() throws {
            _ = try socket.call(.efmResume, ["device": device, "archive": archive], as: DoneReply.self)
            if !socket.json { print("\(device) \(archive) resumed") }
        }
    }
}
