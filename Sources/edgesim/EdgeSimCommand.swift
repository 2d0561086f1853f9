import ArgumentParser
import EdgeCore
import EdgeRuntime
import EdgeSim
import Foundation
import Yams

/// `edgesim`: serves the devices of an edged configuration from their templates, so a gateway (or the
/// demo, the tests, the benchmarks) has a whole well pad to poll. Field techs use it to bench-test a box.
@main
struct EdgeSimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edgesim",
        abstract: "Simulate the devices of an edged configuration over Modbus TCP and serial lines.",
        discussion: """
            TCP buses are served on their configured host and port. Serial buses need the simulator's end of the
            line: --serial BUS=PATH (for a pty pair: socat PTY,link=/tmp/gw,raw,echo=0 PTY,link=/tmp/sim,raw,echo=0).
            Faults and values can be changed while running through --control (commands: list, fault DEVICE FAULT,
            set DEVICE.TAG VALUE, get DEVICE.TAG, efm NAME advance HOURS and other efm commands).
            Enron flow computers are declared in the profile file under flowComputers (profile scanner2000 or
            floboss-dl8000, bus, unit, historyHours, contractHour, clock).
            """)

    @Option(help: "edged configuration whose devices to simulate.") var config: String
    @Option(help: "Serial line for a bus: BUS=PATH (repeatable).") var serial: [String] = []
    @Option(help: "Value profile (YAML): how each tag moves.") var profile: String?
    @Option(help: "Unix socket for control commands.") var control: String?
    @Option(help: "Serve a TCP bus on another port: BUS=PORT (repeatable).") var port: [String] = []

    func run() throws {
        let loaded: LoadedConfig
        switch ConfigLoader(files: DiskConfigFiles()).load(path: config) {
        case .success(let l): loaded = l
        case .failure(let e):
            e.diagnostics.forEach { FileHandle.standardError.write(Data(($0.description + "\n").utf8)) }
            throw ExitCode(1)
        }
        let c = loaded.config
        var prof = SimProfile()
        if let path = profile {
            prof = try YAMLDecoder().decode(SimProfile.self, from: String(contentsOfFile: path, encoding: .utf8))
        }
        let serialPaths = Dictionary(
            serial.compactMap { pair -> (String, String)? in
                let p = pair.split(separator: "=", maxSplits: 1).map(String.init);
                return p.count == 2 ? (p[0], p[1]) : nil
            }, uniquingKeysWith: { _, b in b })
        let ports = Dictionary(
            port.compactMap { pair -> (String, Int)? in
                let p = pair.split(separator: "=", maxSplits: 1).map(String.init);
                return p.count == 2 ? (p[0], Int(p[1]) ?? 0) : nil
            }, uniquingKeysWith: { _, b in b })

        var computers: [SimFlowComputer] = []
        for (name, spec) in (prof.flowComputers ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard c.buses.contains(where: { $0.name == spec.bus }) else {
                throw SimError("flow computer \(name): no bus \(spec.bus) in \(config)")
            }
            computers.append(try spec.make(name: name))
        }
        let computerBus = Dictionary(
            (prof.flowComputers ?? [:]).map { ($0.key, $0.value.bus) }, uniquingKeysWith: { a, _ in a })

        var servers: [SimServer] = []
        var all: [SimDevice] = []
        for bus in c.buses {
            let busComputers = computers.filter { computerBus[$0.name] == bus.name }
            let devices = c.devices.filter { $0.bus == bus.name }.map { d -> SimDevice in
                var signals: [String: SimSignal] = [:]
                for (tag, spec) in prof.devices[d.name] ?? [:] { signals[tag] = spec.signal }
                let sim = SimDevice(
                    name: d.name, unit: d.unit, tags: c.effectiveTags(of: d),
                    neverRead: c.effectiveLimits(of: d).neverRead, signals: signals)
                if let f = prof.faults?[d.name].flatMap(SimFault.init(parsing:)) { sim.set(fault: f) }
                return sim
            }
            guard !devices.isEmpty || !busComputers.isEmpty else { continue }
            let transport: SimServer.Transport
            switch bus.kind {
            case .tcp:
                transport = .tcp(host: bus.endpoint!.host, port: ports[bus.name] ?? bus.endpoint!.port)
            case .rtu, .rtuOverTCP:
                guard let path = serialPaths[bus.name] else {
                    print("edgesim: bus \(bus.name) is serial; give --serial \(bus.name)=PATH to serve it (skipped)")
                    continue
                }
                transport = .rtu(path: path, baud: bus.serial?.baud ?? 9600)
            }
            all += devices
            let server = SimServer(transport: transport, devices: devices, flowComputers: busComputers)
            try server.start()
            servers.append(server)
            let where_ =
                switch transport {
                case .tcp(let h, _): "tcp \(h):\(server.port)"
                case .rtu(let p, let b): "rtu \(p) at \(b) baud"
                }
            print(
                "edgesim: bus \(bus.name) on \(where_): "
                    + (devices.map { "\($0.name) (unit \($0.unit))" }
                    + busComputers.map { "\($0.name) (unit \($0.unit), \($0.profile.name), clock \($0.clock))" })
                    .joined(separator: ", "))
        }
        var controller: SimControl?
        if let path = control {
            controller = SimControl(path: path, devices: all, flowComputers: computers)
            try controller?.start()
            print("edgesim: control socket \(path)")
        }
        fflush(nil)
        // Serve until SIGTERM or SIGINT.
        let stop = DispatchSemaphore(value: 0)
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { stop.signal() }
            src.resume()
            Self.sources.append(src)
        }
        stop.wait()
        controller?.stop()
        servers.forEach { $0.stop() }
    }

    nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []
}
