import EdgeCore
import EdgeTestSupport
import Foundation
import Testing

/// The batch body against the contract: the worked example of docs/sync-protocol.md §4/§8.3 encodes to the
/// JSON the document shows, and the byte-level number writer says exactly what `NumberFormat.format` says.
/// (Pure tests; they sit here because the uplink's tests are being written here.)
@Suite struct UplinkEncodingTests {
    @Test func theWorkedExampleEncodesToTheDocumentsJSON() throws {
        func reading(_ seq: Int64, _ device: String, _ tag: String, _ units: String?, _ t: Int64, _ v: Double?)
            -> BufferedRecord
        {
            BufferedRecord(
                seq: seq, lane: .reading,
                payload: .reading(
                    StoredReading(
                        device: device, tag: tag, units: units, wallMillis: t, value: v.map { .number($0) },
                        quality: v == nil ? .bad(.timeout) : .good)))
        }
        let records = [
            reading(1001, "rpc-1", "tubing_pressure", "psi", 1_717_423_200_120, 312),
            reading(1002, "rpc-1", "casing_pressure", "psi", 1_717_423_200_120, 81),
            reading(1003, "rpc-1", "well_state", nil, 1_717_423_200_120, 1),
            reading(1004, "rpc-2", "tubing_pressure", "psi", 1_717_423_200_950, nil),
            reading(1005, "rpc-1", "tubing_pressure", "psi", 1_717_423_210_118, 318),
            reading(1006, "rpc-1", "casing_pressure", "psi", 1_717_423_210_118, 80),
            reading(1007, "rpc-2", "tubing_pressure", "psi", 1_717_423_210_951, nil),
            BufferedRecord(
                seq: 1009, lane: .reading,
                payload: .gap(
                    GapRecord(
                        firstSeq: 412, lastSeq: 977, count: 560, fromMillis: 1_717_074_012_000,
                        toMillis: 1_717_095_587_000, reason: .evicted))),
            reading(1010, "rpc-1", "tubing_pressure", "psi", 1_717_423_220_121, 321),
            reading(1011, "rpc-1", "casing_pressure", "psi", 1_717_423_220_121, 80),
            reading(1012, "rpc-2", "tubing_pressure", "psi", 1_717_423_220_949, 305)
        ]
        let encoder = BatchEncoder(
            sender: BatchSender(
                gateway: "pecos-17-gw1", tenant: "acmeoil", site: "Pecos 17 State Pad A", software: "0.4.2"),
            formats: [:])
        let batch = BufferBatch(epoch: "5f0c3a9e2b7d4e81a6c2f9d07b3e5a14", records: records)
        let body = encoder.encode(batch, sentAt: 1_717_423_221_305, clockSynchronized: true)

        let doc = try String(
            contentsOf: TestPaths.root.appendingPathComponent("docs/sync-protocol.md"), encoding: .utf8)
        let marker = try #require(doc.range(of: "<!-- example: readings-batch -->"))
        let block = doc[marker.upperBound...]
        let open = try #require(block.range(of: "```json\n")),
            close = try #require(block.range(of: "\n```", range: open.upperBound..<block.endIndex))
        let expected =
            try JSONSerialization.jsonObject(with: Data(block[open.upperBound..<close.lowerBound].utf8))
            as? NSDictionary
        let actual = try JSONSerialization.jsonObject(with: Data(body)) as? NSDictionary
        #expect(actual == expected, "\(String(decoding: body, as: UTF8.self))")
        #expect(encoder.idempotencyKey(batch) == "pecos-17-gw1:5f0c3a9e2b7d4e81a6c2f9d07b3e5a14:1001-1012")
        // Compact: the document says 879 bytes of JSON for this batch.
        #expect(body.count == 879)
    }

    @Test func readingsAndAlarmsTimedWithAnUnsynchronizedClockAreNamedBySeqRanges() throws {
        func reading(_ seq: Int64, synchronized: Bool) -> BufferedRecord {
            BufferedRecord(
                seq: seq, lane: .reading,
                payload: .reading(
                    StoredReading(
                        device: "rpc-1", tag: "tubing_pressure", units: "psi", wallMillis: 1_717_423_200_000 + seq,
                        value: .number(300),
                        quality: .good, clockSynchronized: synchronized)))
        }
        func alarm(_ seq: Int64, synchronized: Bool) -> BufferedRecord {
            BufferedRecord(
                seq: seq, lane: .alarm,
                payload: .alarm(
                    AlarmEventRecord(
                        alarm: "a", occurrence: "o", kind: "limit", device: "rpc-1", tag: "tubing_pressure", level: "h",
                        transition: .raised,
                        priority: "high", value: 1, limit: 0, reason: "r", wallMillis: 1_717_423_200_000,
                        clockSynchronized: synchronized)))
        }
        let gap = BufferedRecord(
            seq: 9, lane: .reading,
            payload: .gap(GapRecord(firstSeq: 1, lastSeq: 1, count: 1, fromMillis: 0, toMillis: 0, reason: .evicted)))
        let encoder = BatchEncoder(
            sender: BatchSender(gateway: "g", tenant: "t", site: "s", software: "v"), formats: [:])
        func ranges(_ records: [BufferedRecord]) throws -> [[Int]]? {
            let body = encoder.encode(BufferBatch(epoch: "e", records: records), sentAt: 0, clockSynchronized: true)
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
            return doc["clockUnsynchronized"] as? [[Int]]
        }
        // Seqs 5 and 7 are not in the batch (another lane): they do not break a range; a synchronized record
        // and a gap record do.
        #expect(
            try ranges([
                reading(2, synchronized: false), reading(3, synchronized: false), reading(4, synchronized: true),
                reading(6, synchronized: false), reading(8, synchronized: false), gap, reading(10, synchronized: false),
                alarm(11, synchronized: false), alarm(12, synchronized: true)
            ]) == [[2, 3], [6, 8], [10, 11]])
        #expect(
            try ranges([reading(2, synchronized: true), alarm(3, synchronized: true), gap]) == nil,
            "absent when all are synchronized")
        #expect(try ranges([alarm(3, synchronized: false)]) == [[3, 3]])
    }

    @Test func theByteWriterWritesWhatFormatSays() {
        var rng = SystemRandomNumberGenerator()
        let formats: [NumberFormat] = (0...6).map { .decimals($0) } + [.float32, .shortest]
        var values: [Double] = [
            0, -0.0, 0.05, -0.05, 0.25, -0.25, 1.005, 2.5, -2.5, 312, 31.2, 1e-7, -1e-7, 123_456.789, 9.2e15, -4.4e18,
            1e300
        ]
        for _ in 0..<20_000 {
            let magnitude = pow(10, Double(Int.random(in: -4...9, using: &rng)))
            values.append(Double.random(in: -1...1, using: &rng) * magnitude)
        }
        var mismatches: [String] = []
        for f in formats {
            for v in values {
                var out: [UInt8] = []
                f.write(v, into: &out)
                let written = String(decoding: out, as: UTF8.self)
                if written != f.format(v) {
                    mismatches.append("\(f) \(v): wrote \(written), format says \(f.format(v))")
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(10))")
    }
}
