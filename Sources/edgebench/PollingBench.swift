import ArgumentParser
import CBenchRaw
import EdgeCore
import EdgeSim
import Foundation
import ModbusPoller

/// Polling throughput over loopback TCP against the simulator, beside a raw C libmodbus loop reading the
/// same registers from the same server in the same run; and CPU per 10,000 tag reads.
struct PollingBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "polling", abstract: "Polling throughput and CPU per tag read.")
    @Option(help: "Transactions per measurement.") var iterations: Int = 20_000

    func run() throws {
        Report.section("polling (Modbus TCP over loopback, edgesim serving, libmodbus on both ends)")
        let pad = try BenchPad.load()
        let template = pad.template(named: "pneumercator-tms-4")!
        let sim = SimDevice(name: "tanks", unit: 30, tags: template.tags)
        let server = SimServer(transport: .tcp(host: "127.0.0.1", port: 0), devices: [sim])
        try server.start()
        defer { server.stop() }
        let bus = BusConfig(
            name: "lan", kind: .tcp, device: nil, serial: nil, rs485: nil,
            endpoint: TCPEndpoint(host: "127.0.0.1", port: server.port, connectTimeout: .seconds(2)),
            interFrameDelay: TimeSpan(milliseconds: 0), responseTimeout: .seconds(1), byteTimeout: nil, retries: 0)
        var device = DevicePoller(
            config: DeviceConfig(
                name: "tanks", bus: "lan", unit: 30, template: template.name, poll: .seconds(1),
                enabled: true, offlineAfter: 3, maxBackoff: .minutes(1), limitOverrides: nil, tagOverrides: [:]),
            tags: template.tags, limits: template.limits,
            timing: BusTiming.of(bus, turnaround: TimeSpan(milliseconds: 0)))
        let request = device.plan.requests[0]
        precondition(device.plan.requests.count == 1, "the tank map is one request")
        let link = try ModbusLinks.make(for: bus)

        // Warm up both paths.
        _ = raw_modbus_tcp_loop("127.0.0.1", Int32(server.port), 30, Int32(request.start), Int32(request.count), 500)
        for _ in 0..<500 { _ = device.poll(over: link, bus: bus) }

        // Alternate the two loops over several rounds and keep each one's best round, so a burst of load
        // elsewhere on the machine does not favour either side.
        var rawBest = 0.0, oursBest = 0.0
        var rawCPU = Double.infinity, oursCPU = Double.infinity
        var tagsRead = 0
        let perRound = iterations / 4
        for _ in 0..<6 {
            var ok: Int64 = 0
            var cpu = 0.0
            let rawSeconds = Report.time {
                cpu = Report.cpu {
                    ok = raw_modbus_tcp_loop(
                        "127.0.0.1", Int32(server.port), 30, Int32(request.start), Int32(request.count), Int64(perRound)
                    )
                }
            }
            precondition(ok == Int64(perRound), "raw loop failed: \(ok) of \(perRound)")
            rawBest = max(rawBest, Double(ok) / rawSeconds)
            rawCPU = min(rawCPU, cpu / Double(ok))
            var tags = 0
            let oursSeconds = Report.time {
                cpu = Report.cpu { for _ in 0..<perRound { tags += device.poll(over: link, bus: bus).readings.count } }
            }
            precondition(tags == perRound * template.tags.count, "polls failed")
            tagsRead += tags
            oursBest = max(oursBest, Double(perRound) / oursSeconds)
            oursCPU = min(oursCPU, cpu / Double(perRound))
        }
        let tagsPerPoll = Double(template.tags.count)
        Report.figure(
            "edged polls/s (\(request.count) registers, \(Int(tagsPerPoll)) tags decoded)", oursBest, "polls/s",
            reference: ("raw C libmodbus loop", rawBest))
        // The poller alone: the same device read from registers in memory (no I/O, no simulator).
        let memory = MemoryModbusLink()
        var memDevice = device
        let memPolls = iterations * 5
        var memTags = 0
        let memCPU = Report.cpu {
            for _ in 0..<memPolls { memTags += memDevice.poll(over: memory, bus: bus).readings.count }
        }
        Report.figure("poller alone: CPU per 10,000 tag reads", memCPU / Double(memTags) * 10_000 * 1000, "ms")
        // The simulator shares the process; CPU figures are for the whole process in both cases.
        Report.figure(
            "CPU per 10,000 tag reads (with simulator)", oursCPU / tagsPerPoll * 10_000 * 1000, "ms",
            reference: ("raw loop, same registers", rawCPU / tagsPerPoll * 10_000 * 1000), higherIsBetter: false)
    }
}

/// The example pad shipped in config/, found from the working directory (make bench runs at the root).
enum BenchPad {
    static func load() throws -> EdgeConfig {
        struct Files: ConfigFileAccess {
            func readText(_ path: String) throws(ConfigFileError) -> String {
                guard let d = FileManager.default.contents(atPath: path) else {
                    throw ConfigFileError(path: path, reason: "not found (run from the repository root)")
                }
                return String(decoding: d, as: UTF8.self)
            }
            func permissions(_ path: String) -> UInt32? { FileManager.default.fileExists(atPath: path) ? 0o600 : nil }
        }
        return try ConfigLoader(files: Files()).load(path: "config/edged.example.yaml").get().config
    }
}
