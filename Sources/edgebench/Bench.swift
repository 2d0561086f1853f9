import ArgumentParser
import Foundation

/// `make bench`: every figure is printed beside a reference measured in the same run on the same machine.
@main
struct EdgeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edgebench",
        abstract: "edged benchmarks, each beside its reference.",
        subcommands: [
            All.self, PollingBench.self, PlannerBench.self, BufferBench.self, DaemonBench.self, UplinkBench.self,
            EFMBench.self
        ],
        defaultSubcommand: All.self
    )

    struct All: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "all", abstract: "Run every benchmark.")
        @Option(help: "Directory with edged as packaged (see `daemon --packaged`).") var packaged: String?
        func run() throws {
            try PollingBench.parse([]).run()
            try PlannerBench.parse([]).run()
            try BufferBench.parse([]).run()
            try DaemonBench.parse(packaged.map { ["--packaged", $0] } ?? []).run()
            try UplinkBench.parse([]).run()
            try EFMBench.parse([]).run()
        }
    }
}

/// Output helpers: one line per figure, `name  value unit   reference: value unit   ratio`.
enum Report {
    static func section(_ title: String) { print("\n## \(title)") }
    static func figure(
        _ name: String, _ value: Double, _ unit: String, reference: (String, Double)? = nil, higherIsBetter: Bool = true
    ) {
        var line = name.padding(toLength: 54, withPad: " ", startingAt: 0) + format(value) + " " + unit
        if let (refName, ref) = reference, ref > 0 {
            let ratio = higherIsBetter ? value / ref : ref / value
            line =
                line.padding(toLength: 78, withPad: " ", startingAt: 0)
                + "| \(refName): \(format(ref)) \(unit) | ×\(String(format: "%.2f", ratio))"
        }
        print(line)
    }
    static func format(_ v: Double) -> String {
        v >= 100 ? String(format: "%.0f", v) : v >= 10 ? String(format: "%.1f", v) : String(format: "%.3f", v)
    }
    /// Wall-clock seconds of `body`.
    static func time(_ body: () throws -> Void) rethrows -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }
    /// CPU seconds (user + system) of this process during `body`.
    static func cpu(_ body: () throws -> Void) rethrows -> Double {
        var a = rusage(), b = rusage()
        getrusage(RUSAGE_SELF.rawValue, &a)
        try body()
        getrusage(RUSAGE_SELF.rawValue, &b)
        func s(_ r: rusage) -> Double {
            Double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + Double(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6
        }
        return s(b) - s(a)
    }
}
