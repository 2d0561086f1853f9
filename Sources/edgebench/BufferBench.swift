import ArgumentParser
import EdgeBuffer

/// Buffer benchmarks (issue: store-and-forward buffer).
struct BufferBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "buffer", abstract: "SQLite buffer: ingest, bytes per reading, memory.")
    func run() throws {
        Report.section("buffer")
        print("(not built yet)")
    }
}
