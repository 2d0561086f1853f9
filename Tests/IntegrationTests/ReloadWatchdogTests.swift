import EdgeTestSupport
import Foundation
import Testing

extension DaemonTests {
    /// A reload that restarts a bus waits for that bus's exchange in flight — 2 s here. It must not hold up
    /// the watchdog meanwhile: the bus is stopped on the supervisor's own thread, outside the lock the
    /// watchdog's progress check takes, and off the gateway actor. Pings come every second
    /// (WatchdogSec 3 s); none may come more than 1 s late around the reload.
    @Test func aReloadDuringASlowExchangeDelaysNoWatchdogPing() async throws {
        let pad = try PadFixture(pollInterval: "500ms")
        // A device whose answers take 2 s: the bus's response timeout must outlast them.
        let config = try String(contentsOfFile: pad.configPath, encoding: .utf8)
        try config.replacingOccurrences(of: "responseTimeout: 300ms", with: "responseTimeout: 3s")
            .write(toFile: pad.configPath, atomically: true, encoding: .utf8)
        try await pad.startReceiver()
        try await pad.startSimulator()
        let notify = try NotifyListener(path: pad.dir.file("notify.sock"))
        let edged = try pad.startEdged(notifySocket: notify.path, watchdogMicros: 3_000_000)
        defer { edged.terminate() }
        #expect(await eventually(timeout: 30) { notify.count("READY=1") >= 1 }, "\(pad.log("edged.log"))")
        #expect(await eventually(timeout: 15) { notify.count("WATCHDOG=1") >= 2 })

        #expect(try await pad.simCommand("fault rpc-1 slow:2000ms").hasPrefix("ok"))
        // Let the slow exchanges begin (three pings' time: every rpc-1 request now takes 2 s).
        let before = notify.count("WATCHDOG=1")
        #expect(await eventually(timeout: 15) { notify.count("WATCHDOG=1") >= before + 3 })

        // The bus's devices change (a poll interval): the reload stops and restarts the bus.
        let current = try String(contentsOfFile: pad.configPath, encoding: .utf8)
        try current.replacingOccurrences(
            of: "template: rod-pump-controller, poll: 500ms", with: "template: rod-pump-controller, poll: 700ms"
        )
        .write(toFile: pad.configPath, atomically: true, encoding: .utf8)
        let reloadedAt = ContinuousClock.now
        edged.signal(SIGHUP)
        #expect(
            await eventually(timeout: 20) { pad.log("edged.log").contains("configuration reloaded (SIGHUP)") },
            "\(pad.log("edged.log").suffix(2000))")
        #expect(
            await eventually(timeout: 20) {
                pad.log("edged.log").components(separatedBy: "bus pad-lan polling").count >= 3
            },
            "the bus was not restarted: \(pad.log("edged.log").suffix(2000))")
        let after = notify.count("WATCHDOG=1")
        #expect(await eventually(timeout: 15) { notify.count("WATCHDOG=1") >= after + 3 })

        let pings = notify.times("WATCHDOG=1").filter { $0 >= reloadedAt - .seconds(2) }
        let gaps = zip(pings, pings.dropFirst()).map { $1 - $0 }
        let worst = gaps.max() ?? .zero
        #expect(pings.count >= 5 && worst <= .seconds(2), "pings around the reload came up to \(worst) apart: \(gaps)")
        #expect(pad.log("edged.log").contains("bus pad-lan stopped"))
    }
}
