import EdgeCore
import EdgeTestSupport
import Foundation
import Testing

/// A value is shown (`edgectl tail`) at its tag's resolution: the digits the uplink sends for it.
@Suite struct NumberFormatTests {
    static let encoderSender = BatchSender(gateway: "g", tenant: "t", site: "s", software: "v")

    /// The `v` array of the one series in an encoded batch, as written.
    static func uplinkText(_ value: Double, formats: [String: NumberFormat], device: String, tag: String) -> String {
        let reading = StoredReading(
            device: device, tag: tag, units: nil, wallMillis: 0, value: .number(value), quality: .good)
        let batch = BufferBatch(
            epoch: "e", records: [BufferedRecord(seq: 1, lane: .reading, payload: .reading(reading))])
        let body = String(
            decoding: BatchEncoder(sender: encoderSender, formats: formats).encode(
                batch, sentAt: 0, clockSynchronized: true),
            as: UTF8.self)
        guard let start = body.range(of: "\"v\":["), let end = body[start.upperBound...].firstIndex(of: "]") else {
            return body
        }
        return String(body[start.upperBound..<end])
    }

    @Test func aScaledRegisterShowsTheTagsDecimals() throws {
        let config = try ExamplePad.load()
        // pump_fillage is a uint16 × 0.1: raw 776 decodes to 77.60000000000001.
        let device = try #require(config.device(named: "rpc-1"))
        let tag = try #require(config.effectiveTags(of: device).first { $0.name == "pump_fillage" })
        let decoded = 776 * tag.scale
        #expect(decoded != 77.6)
        #expect(NumberFormat.of(tag).display(.number(decoded)) == "77.6")
        #expect(
            Self.uplinkText(decoded, formats: BatchEncoder.formats(for: config), device: "rpc-1", tag: "pump_fillage")
                == "77.6")
    }

    @Test func aFloat32ShowsTheShortestTextOfTheFloat() {
        let tag = TagDefinition(
            name: "flow_rate", table: .holding, address: 8000, type: .float32, bit: nil, length: nil, order: nil,
            scale: 1, offset: 0, span: nil, units: nil, deadband: nil, integrity: nil, states: nil)
        #expect(Double(Float(412.3)).description != "412.3")
        #expect(NumberFormat.of(tag).display(.number(Double(Float(412.3)))) == "412.3")
    }

    @Test func textIsShownAsItIs() {
        #expect(NumberFormat.shortest.display(.text("SAM 1.2")) == "SAM 1.2")
    }

    @Test(arguments: [NumberFormat.decimals(0), .decimals(1), .decimals(2), .decimals(3), .float32, .shortest])
    func theDisplayIsWhatTheUplinkSends(format: NumberFormat) {
        for v in [776 * 0.1, 0.1 + 0.2, Double(Float(412.3)), -0.049, -17.25, 123_456.789, 65535, 1e20, 0] {
            #expect(
                format.display(.number(v)) == Self.uplinkText(v, formats: ["d.t": format], device: "d", tag: "t"),
                "\(format) \(v)")
        }
    }
}
