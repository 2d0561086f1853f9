import EdgeTestSupport
import Foundation
import Testing

/// What a Debian admin expects: man pages edged(8) and edgectl(1) that still name every subcommand and option
/// the binaries have (regenerate with scripts/man.sh), and bash completion that offers edgectl's commands.
@Suite struct ManPageTests {
    /// Every subcommand name and long option of a command tree, from ArgumentParser's own dump.
    func names(_ product: String) async throws -> (commands: Set<String>, options: Set<String>) {
        let r = try await runTool(TestPaths.product(product), ["--experimental-dump-help"], timeout: 30)
        let root = try #require(
            try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any])["command"]
        var commands = Set<String>(), options = Set<String>()
        func walk(_ node: Any?) {
            guard let c = node as? [String: Any] else { return }
            if let name = c["commandName"] as? String { commands.insert(name) }
            for a in c["arguments"] as? [[String: Any]] ?? [] {
                for n in a["names"] as? [[String: Any]] ?? [] where n["kind"] as? String == "long" {
                    if let name = n["name"] as? String { options.insert(name) }
                }
            }
            for s in c["subcommands"] as? [Any] ?? [] { walk(s) }
        }
        walk(root)
        return (commands, options)
    }

    @Test(arguments: [("edged", "edged.8"), ("edgectl", "edgectl.1")])
    func theManPageNamesEverySubcommandAndOption(product: String, page: String) async throws {
        let text = try String(
            contentsOf: TestPaths.root.appendingPathComponent("packaging/man/\(page)"), encoding: .utf8)
        let (commands, options) = try await names(product)
        #expect(commands.count > (product == "edgectl" ? 20 : 0))
        for c in commands where c != product {
            #expect(
                text.contains("Em \(c)") || text.contains(" \(c)\n"),
                "\(page) lacks the command \(c): run scripts/man.sh")
        }
        for o in options {
            // `Fl -name`, or `Fl x , -name` for an option with a short name too.
            #expect(
                text.contains("Fl -\(o)") || text.contains(", -\(o) "),
                "\(page) lacks the option --\(o): run scripts/man.sh")
        }
    }

    @Test func bashCompletionOffersTheCommands() async throws {
        let script = try await runTool(
            TestPaths.product("edgectl"), ["--generate-completion-script", "bash"], timeout: 30)
        let dir = TempDir("edged-completion")
        try script.output.write(toFile: dir.file("edgectl.bash"), atomically: true, encoding: .utf8)
        let probe = """
            source \(dir.file("edgectl.bash"))
            COMP_WORDS=(edgectl ef); COMP_CWORD=1; _edgectl edgectl ef edgectl; echo "1:${COMPREPLY[*]}"
            COMP_WORDS=(edgectl efm ""); COMP_CWORD=2; _edgectl edgectl "" efm; echo "2:${COMPREPLY[*]}"
            complete -p edgectl
            """
        let r = try await runTool("/bin/bash", ["-c", probe], timeout: 30)
        #expect(r.output.contains("1:efm\n"), "\(r.output)")
        #expect(["status", "history", "export", "resume"].allSatisfy { r.output.contains($0) }, "\(r.output)")
        #expect(r.output.contains("-F _edgectl edgectl"), "\(r.output)")
    }
}
