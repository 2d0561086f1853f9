import EdgeCore
import EdgeTestSupport
import Foundation
import Testing

/// Alarms from the simulator to the receiver: raised and cleared as a pressure crosses its limits, fast
/// while online, after reconnection while offline, exactly once across a restart.
@Suite(.serialized) struct AlarmEndToEndTests {
    let edgectl = TestPaths.product("edgectl")

    /// Alarm events stored at the receiver, in seq order.
    func alarmEvents(_ pad: PadFixture) async throws -> [[String: Any]] {
        try await pad.storedRecords().filter { ($0["kind"] as? String) == "alarm" }
    }

    func transitions(_ events: [[String: Any]], _ alarm: String, level: String? = nil) -> [String] {
        events.filter { e in
            let body = e["record"] as? [String: Any] ?? e
            return (body["alarm"] as? String) == alarm && (level == nil || (body["level"] as? String) == level)
        }.map { e in ((e["record"] as? [String: Any] ?? e)["transition"] as? String) ?? "?" }
    }

    func sim(_ pad: PadFixture, _ command: String) async throws {
        let answer = try await pad.simCommand(command)
        #expect(answer.hasPrefix("ok"), "\(command): \(answer)")
    }

    @Test func throughHAndHHAndBackReachesTheReceiverWithinSeconds() async throws {
        let pad = try PadFixture(pollInterval: "500ms", batchMaxAge: "30s")  // readings wait; alarms must not
        try await pad.startReceiver()
        try await pad.startSimulator()
        let edged = try pad.startEdged()
        defer { edged.terminate() }
        #expect(await eventually(timeout: 30) { FileManager.default.fileExists(atPath: pad.controlSocket) })
        // Up through H (450) and HH (600).
        try await sim(pad, "set rpc-1.tubing_pressure 640")
        let raisedAt = Date()
        #expect(
            await eventually(timeout: 10) {
                transitions((try? await alarmEvents(pad)) ?? [], "rpc-1-tubing", level: "hh").contains("raised")
            })
        // One poll interval (0.5 s) plus 2 s, with some slack for a loaded test machine.
        #expect(Date().timeIntervalSince(raisedAt) < 0.5 + 2 + 1)
        let ctl = try await runTool(edgectl, ["alarms", "list", "--socket", pad.controlSocket])
        #expect(ctl.output.contains("rpc-1-tubing.hh") && ctl.output.contains("critical"), "\(ctl.output)")
        // Back down: both clear.
        try await sim(pad, "set rpc-1.tubing_pressure 300")
        #expect(
            await eventually(timeout: 10) {
                transitions((try? await alarmEvents(pad)) ?? [], "rpc-1-tubing", level: "h").contains("cleared")
            })
        let events = try await alarmEvents(pad)
        #expect(transitions(events, "rpc-1-tubing", level: "h") == ["raised", "cleared"])
        #expect(transitions(events, "rpc-1-tubing", level: "hh") == ["raised", "cleared"])
        // The H event carries the occurrence id, priority and a reason a person can read.
        let h = events.map { $0["record"] as? [String: Any] ?? $0 }.first { ($0["level"] as? String) == "h" }
        #expect((h?["reason"] as? String)?.contains("tubing_pressure") == true)
        #expect((h?["id"] as? String)?.isEmpty == false)
    }

    @Test func offlineAlarmsArriveAfterReconnectionAndARestartRaisesOnce() async throws {
        let pad = try PadFixture(pollInterval: "500ms", batchMaxAge: "1s")
        try await pad.startSimulator()
        var edged = try pad.startEdged()
        #expect(await eventually(timeout: 30) { FileManager.default.fileExists(atPath: pad.controlSocket) })
        // No receiver: the raise waits in the buffer.
        try await sim(pad, "set rpc-1.tubing_pressure 520")
        #expect(
            await eventually(timeout: 10) {
                ((try? await runTool(edgectl, ["alarms", "list", "--socket", pad.controlSocket]))?.output ?? "")
                    .contains("rpc-1-tubing.h ")
            })
        // Restart between raise and clear.
        edged.signal(SIGTERM)
        #expect(await edged.wait(timeout: 25).map { ($0 >> 8) & 0xFF } == 0)
        edged = try pad.startEdged()
        defer { edged.terminate() }
        #expect(await eventually(timeout: 30) { FileManager.default.fileExists(atPath: pad.controlSocket) })
        try await sim(pad, "set rpc-1.tubing_pressure 300")
        // The condition clears (the alarm stays listed, returned but unacknowledged, as ISA-18.2 wants).
        #expect(
            await eventually(timeout: 10) {
                let out =
                    (try? await runTool(edgectl, ["alarms", "list", "--json", "--socket", pad.controlSocket]))?.output
                    ?? ""
                let list = (try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [[String: Any]] ?? []
                return list.contains {
                    ($0["id"] as? String) == "rpc-1-tubing.h" && ($0["conditionActive"] as? Bool) == false
                }
            })
        // Connectivity returns: the raise and the clear arrive, once each, in order.
        try await pad.startReceiver()
        #expect(
            await eventually(timeout: 20) {
                transitions((try? await alarmEvents(pad)) ?? [], "rpc-1-tubing", level: "h").contains("cleared")
            })
        #expect(transitions(try await alarmEvents(pad), "rpc-1-tubing", level: "h") == ["raised", "cleared"])
        #expect(transitions(try await alarmEvents(pad), "rpc-1-tubing", level: "hh").isEmpty)
    }

    /// Replaces a file's contents in place (its 0600 mode stays).
    func overwrite(_ path: String, _ text: String) throws {
        let h = try #require(FileHandle(forWritingAtPath: path))
        try h.truncate(atOffset: 0)
        try h.write(contentsOf: Data(text.utf8))
        try h.close()
    }

    func uplinkAlarms(_ pad: PadFixture) async -> [String] {
        let out = (try? await runTool(edgectl, ["uplink", "--json", "--socket", pad.controlSocket]))?.output ?? ""
        return ((try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any])?["alarms"] as? [String]
            ?? []
    }

    @Test func aRefusedTokenIsASystemAlarmThatReachesTheServerWithItsClearOnceTheTokenIsFixed() async throws {
        let pad = try PadFixture(pollInterval: "500ms", batchMaxAge: "1s")
        let tokenPath = pad.dir.file("token")
        let good = try String(contentsOfFile: tokenPath, encoding: .utf8)
        try overwrite(tokenPath, "tok-not-the-right-one")
        try await pad.startReceiver()
        try await pad.startSimulator()
        let edged = try pad.startEdged()
        defer { edged.terminate() }
        #expect(
            await eventually(timeout: 30) { await uplinkAlarms(pad).contains("uplink-unauthorized") },
            "\(pad.log("edged.log").suffix(2000))")
        #expect(pad.log("edged.log").contains("system alarm uplink-unauthorized raised"))
        #expect(try await pad.receiverCounts().stored == 0)

        // The field tech fixes the token and reloads: the uplink retries at once (not after its slow 401
        // retry), and the server gets the system alarm's raise and clear, once each, with the backlog.
        try overwrite(tokenPath, good)
        let reload = try await runTool(edgectl, ["reload", "--socket", pad.controlSocket])
        #expect(reload.status == 0, "\(reload.output)")
        #expect(
            await eventually(timeout: 20) {
                transitions((try? await alarmEvents(pad)) ?? [], "uplink-unauthorized").contains("cleared")
            }, "\(pad.log("edged.log").suffix(2000))")
        let events = try await alarmEvents(pad).filter {
            (($0["record"] as? [String: Any])?["alarm"] as? String) == "uplink-unauthorized"
        }
        #expect(transitions(events, "uplink-unauthorized") == ["raised", "cleared"])
        #expect(events.allSatisfy { (($0["record"] as? [String: Any])?["kind"] as? String) == "system" })
        #expect(await uplinkAlarms(pad).isEmpty)
        #expect(try await pad.receiverCounts().stored > 0)
    }
}
