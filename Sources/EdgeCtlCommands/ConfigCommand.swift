import ArgumentParser
import EdgeCore
import Foundation
import EdgeRuntime
import Yams

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Validate and show the configuration.",
        subcommands: [Validate.self, Show.self, Set.self, Edit.self]
    )

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a configuration: exit 0 and a summary, or exit 1 and every error (file:line:column).")
        @Argument(help: "Configuration file.") var path: String = ConfigLoader.defaultPath

        func run() throws {
            let loaded = try loadConfigOrExit(path)
            let w = loaded.warnings.count
            print(
                "\(path): OK — \(ConfigSummary.line(loaded.config))\(w > 0 ? ", \(w) warning\(w == 1 ? "" : "s")" : "")"
            )
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the effective configuration: defaults filled in, templates resolved, secrets redacted.")
        @Argument(help: "Configuration file.") var path: String = ConfigLoader.defaultPath
        @Flag(help: "JSON instead of YAML.") var json = false

        func run() throws {
            let config = try loadConfigOrExit(path, quietWarnings: true).config.redacted()
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try enc.encode(config), as: UTF8.self))
            } else {
                print(try YAMLEncoder().encode(config), terminator: "")
            }
        }
    }
}

extension ConfigCommand {
    /// Validates `text` as the file at `path` would be; prints every diagnostic; true when edged would accept it.
    static func accepts(_ text: String, path: String) -> Bool {
        switch ConfigLoader(files: DiskConfigFiles()).load(text: text, path: path) {
        case .success(let l):
            l.warnings.forEach { Console.error($0.description) }
            return true
        case .failure(let e):
            e.diagnostics.forEach { Console.error($0.description) }
            return false
        }
    }

    /// Writes atomically with a backup, then asks a running edged to reload.
    static func save(_ text: String, path: String, socket: String, reload: Bool) throws {
        do { try AtomicFile.replace(path, with: text) } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
        print("saved \(path) (previous version in \(path).bak)")
        guard reload else { return }
        do {
            let reply = try ControlClient.call(socket, ControlRequest(command: "reload"))
            let obj = (try? JSONSerialization.jsonObject(with: reply)) as? [String: Any]
            if obj?["ok"] as? Bool == true {
                print("edged reloaded it")
            } else {
                Console.error("edged: \(obj?["error"] ?? "reload refused")")
            }
        } catch {
            print("edged is not reachable (\(error)); it will read the file when it starts or reloads")
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Change one value, e.g. `config set devices.rpc-1.poll 15s`: validated before it is written, then edged reloads."
        )
        @Argument(help: "Key path: uplink.batch.maxAge, devices.rpc-1.poll, buses[0].baud.") var key: String
        @Argument(help: "New value.") var value: String
        @Option(help: "Configuration file.") var config: String = ConfigLoader.defaultPath
        @Option(help: "edged's control socket.") var socket: String =
            ProcessInfo.processInfo.environment["EDGED_CONTROL_SOCKET"] ?? "/run/edged/control.sock"
        @Flag(help: "Do not ask edged to reload.") var noReload = false

        func run() throws {
            let text: String
            do { text = try DiskConfigFiles().readText(config) } catch { Console.error("\(error)"); throw ExitCode(1) }
            let changed: String
            do { changed = try ConfigEditor.set(key, to: value, in: text) } catch {
                Console.error("\(config): \(error)"); throw ExitCode(1)
            }
            guard ConfigCommand.accepts(changed, path: config) else {
                Console.error("not saved: edged would refuse \(key) = \(value); \(config) is unchanged")
                throw ExitCode(1)
            }
            try ConfigCommand.save(changed, path: config, socket: socket, reload: !noReload)
        }
    }

    struct Edit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Edit the configuration in $EDITOR; it is saved only once edged would accept it.")
        @Option(help: "Configuration file.") var config: String = ConfigLoader.defaultPath
        @Option(help: "edged's control socket.") var socket: String =
            ProcessInfo.processInfo.environment["EDGED_CONTROL_SOCKET"] ?? "/run/edged/control.sock"
        @Flag(help: "Do not ask edged to reload.") var noReload = false

        func run() throws {
            let original: String
            do { original = try DiskConfigFiles().readText(config) } catch {
                Console.error("\(error)"); throw ExitCode(1)
            }
            let env = ProcessInfo.processInfo.environment
            let editor = env["VISUAL"] ?? env["EDITOR"] ?? "vi"
            // The draft sits beside the file so relative template paths resolve the same way.
            let draft = config + ".edit-\(getpid()).yaml"
            try original.write(toFile: draft, atomically: true, encoding: .utf8)
            defer { unlink(draft) }
            while true {
                let rc = system("\(editor) '\(draft)'")
                guard rc == 0 else { Console.error("\(editor) exited with \(rc); nothing saved"); throw ExitCode(1) }
                let edited = (try? String(contentsOfFile: draft, encoding: .utf8)) ?? original
                if edited == original { print("no change"); return }
                if ConfigCommand.accepts(edited, path: config) {
                    try ConfigCommand.save(edited, path: config, socket: socket, reload: !noReload)
                    return
                }
                guard isatty(0) != 0 else {
                    Console.error("not saved: edged would refuse this configuration"); throw ExitCode(1)
                }
                print("edged would refuse this configuration. Edit again? [Y/n] ", terminator: "")
                fflush(nil)
                if let answer = readLine(), answer.lowercased().hasPrefix("n") {
                    Console.error("not saved"); throw ExitCode(1)
                }
            }
        }
    }
}
