import EdgeCore
import Foundation
import Testing

/// One identity for an alarm everywhere: written as one string, so the snapshot, the control protocol and
/// the sync protocol keep their formats.
@Suite struct AlarmIDTests {
    @Test func readsAndWritesTheOneStringForm() {
        #expect(AlarmID(parsing: "rpc-1-tubing.hh") == AlarmID(rule: "rpc-1-tubing", level: .hh))
        #expect(AlarmID(parsing: "rpc-1-comm") == AlarmID(rule: "rpc-1-comm"))
        #expect(AlarmID(parsing: "rpc-1-tubing.hh")?.description == "rpc-1-tubing.hh")
        #expect(AlarmID(parsing: "rpc-1-tubing.x") == nil, "a dot is followed by a level")
        #expect(AlarmID(rule: "uplink-tls").description == "uplink-tls")
    }

    @Test func encodesAsAStringAndAsADictionaryKey() throws {
        let ids: [AlarmID: String] = ["tp.h": "occ-1", "w2-comm": "occ-2"]
        let json = String(decoding: try JSONEncoder.sorted.encode(ids), as: UTF8.self)
        #expect(json == #"{"tp.h":"occ-1","w2-comm":"occ-2"}"#)
        #expect(try JSONDecoder().decode([AlarmID: String].self, from: Data(json.utf8)) == ids)
        #expect(String(decoding: try JSONEncoder().encode(AlarmID(parsing: "tp.ll")), as: UTF8.self) == #""tp.ll""#)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(AlarmID.self, from: Data(#""tp.zz""#.utf8)) }
    }

    /// The record the buffer stores names the same alarm the engine raised.
    @Test func aBufferedAlarmRecordNamesTheEnginesAlarm() {
        let r = AlarmEventRecord(
            alarm: "tp", occurrence: "o", kind: "limit", device: "d", tag: "p", level: "hh", transition: .raised,
            priority: "high", value: 1, limit: 0, reason: "r", wallMillis: 0)
        #expect(r.id == "tp.hh")
    }
}

extension JSONEncoder {
    fileprivate static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return e
    }
}
