import EdgeTestSupport
import Foundation
import Testing

/// A downgrade of edged meets a buffer file written by the newer one: edged refuses to start with a message
/// that says so (exit 78, which the unit does not restart on), and leaves the file exactly as it was.
@Suite(.serialized) struct DowngradeTests {
    @Test func aBufferFromANewerEdgedIsRefusedNotMovedAside() async throws {
        let pad = try PadFixture()
        // A buffer file as edged makes it, then marked as written by a future schema.
        var edged = try pad.startEdged()
        #expect(await eventually(timeout: 30) { FileManager.default.fileExists(atPath: pad.dir.file("buffer.db")) })
        edged.signal(SIGTERM)
        #expect(await edged.wait(timeout: 30).map { ($0 >> 8) & 0xFF } == 0)
        let mark = try await runTool(
            "/usr/bin/python3",
            [
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE meta SET value='3' WHERE key='schema'\"); c.commit(); c.close()",
                pad.dir.file("buffer.db")
            ])
        #expect(mark.status == 0, "\(mark.output)")
        let before = try Data(contentsOf: URL(fileURLWithPath: pad.dir.file("buffer.db")))
        edged = try pad.startEdged()
        #expect(await edged.wait(timeout: 30).map { ($0 >> 8) & 0xFF } == 78, "\(pad.log("edged.log"))")
        #expect(pad.log("edged.log").contains("schema 3, written by a newer edged"), "\(pad.log("edged.log"))")
        #expect(try Data(contentsOf: URL(fileURLWithPath: pad.dir.file("buffer.db"))) == before)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: pad.dir.path).allSatisfy { !$0.contains("corrupt") })
    }
}
