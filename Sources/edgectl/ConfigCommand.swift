import ArgumentParser
import EdgeCore
import Foundation
import Yams

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Validate and show the configuration.",
        subcommands: [Validate.self, Show.self]
    )

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a configuration: exit 0 and a summary, or exit 1 and every error (file:line:column).")
        @Argument(help: "Configuration file.") var path: String = ConfigLoader.defaultPath

        func run() throws {
            let loaded = try loadConfigOrExit(path)
            let w = loaded.warnings.count
            print("\(path): OK — \(ConfigSummary.line(loaded.config))\(w > 0 ? ", \(w) warning\(w == 1 ? "" : "s")" : "")")
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
