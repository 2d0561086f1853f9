import EdgeControl
import EdgeRuntime
import EdgeTestSupport
import Foundation
import Testing

/// One definition per wire type: every golden reply (Tests/Fixtures/control, captured from a running
/// edged) decodes as the type edgectl reads it with and encodes back to the same JSON — a field renamed
/// or dropped on either side fails here, instead of edgectl showing 0 — and docs/control-protocol.md quotes
/// each of them.
@Suite struct ControlProtocolTests {
    static let dir = TestPaths.fixtures.appendingPathComponent("control")

    func fixture(_ name: String) throws -> Data {
        try Data(contentsOf: Self.dir.appendingPathComponent("\(name).json"))
    }

    /// Decodes the fixture as `T`, encodes it again, and compares the two as JSON values.
    func roundTrips<T: Codable>(_ name: String, as type: T.Type) throws {
        let data = try fixture(name)
        let value = try JSONDecoder().decode(T.self, from: data)
        let again = try JSONEncoder().encode(value)
        // Both through one normal form: sorted keys, no spaces.
        func normal(_ d: Data) throws -> String {
            String(
                decoding: try JSONSerialization.data(
                    withJSONObject: try JSONSerialization.jsonObject(with: d), options: [.sortedKeys]), as: UTF8.self)
        }
        #expect(try normal(data) == normal(again), "\(name): \(String(decoding: again, as: UTF8.self))")
    }

    @Test func everyGoldenReplyIsItsCommandsType() throws {
        try roundTrips("status", as: StatusReply.self)
        try roundTrips("devices", as: DevicesReply.self)
        try roundTrips("alarms", as: AlarmsReply.self)
        try roundTrips("alarm-health", as: AlarmHealthReply.self)
        try roundTrips("ack", as: DoneReply.self)
        try roundTrips("buffer", as: BufferReply.self)
        try roundTrips("uplink", as: UplinkReply.self)
        try roundTrips("tail", as: TailReply.self)
        try roundTrips("efm", as: EFMReply.self)
        try roundTrips("efm-history", as: EFMHistoryReply.self)
    }

    /// What edgectl does with a reply whose field was renamed: an error naming it, not a silent 0.
    @Test func aRenamedFieldIsAnErrorNotAZero() throws {
        let status = String(decoding: try fixture("status"), as: UTF8.self).replacingOccurrences(
            of: "\"devicesOnline\"", with: "\"devicesUp\"")
        let reply = Data("{\"ok\":true,\"result\":\(status)}".utf8)
        #expect(throws: ControlCallError.self) { try ControlEnvelope.decode(reply, as: StatusReply.self) }
        let good = Data("{\"ok\":true,\"result\":\(String(decoding: try fixture("status"), as: UTF8.self))}".utf8)
        #expect(try ControlEnvelope.decode(good, as: StatusReply.self).value.devicesOnline == 2)
    }

    @Test func errorsCarryACodeEdgectlCanDecideOn() throws {
        let data = try fixture("error-unknown-command")
        #expect(throws: ControlCallError.self) { try ControlEnvelope.decode(data, as: StatusReply.self) }
        do {
            _ = try ControlEnvelope.decode(data, as: StatusReply.self)
        } catch {
            #expect(error.code == .unknownCommand, "\(error)")
            #expect(error.message.contains("stauts"))
        }
        // The server's own framing errors use the same codes.
        let framing = ControlServer.errorReply(.malformed, "malformed request")
        let obj = try JSONSerialization.jsonObject(with: framing) as? [String: Any]
        #expect(obj?["code"] as? String == "malformed" && obj?["ok"] as? Bool == false)
    }

    @Test func theDocumentQuotesEveryGoldenReply() throws {
        let doc = try String(
            contentsOf: TestPaths.root.appendingPathComponent("docs/control-protocol.md"), encoding: .utf8)
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.dir.path).filter { $0.hasSuffix(".json") }
            .sorted()
        #expect(names.count == 11)
        for name in names {
            let text = try String(contentsOf: Self.dir.appendingPathComponent(name), encoding: .utf8)
            #expect(doc.contains("```json\n" + text + "```"), "docs/control-protocol.md does not quote \(name)")
        }
        for command in ControlCommand.allCases {
            #expect(doc.contains("| `\(command.rawValue)` |"), "the commands table lacks \(command.rawValue)")
        }
        for code in ControlErrorCode.allCases {
            #expect(doc.contains("`\(code.rawValue)`"), "the error codes lack \(code.rawValue)")
        }
    }
}
