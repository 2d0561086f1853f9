import EdgeCore
import EdgeTestSupport
import Testing

/// A multi-register value that covers part of another tag's registers is warned about; exact repeats are not.
@Suite struct TemplateOverlapTests {
    /// The warnings for the minimal config with `extra` tags after its two (pressure at 40001, status at 40002).
    func warnings(adding extra: [String]) throws -> [String] {
        let anchor = "      - {name: status, address: 40002, type: uint16, states: {0: stopped, 1: running}}\n"
        let text = SampleConfigs.minimal.replacingOccurrences(
            of: anchor, with: anchor + extra.map { "      - \($0)\n" }.joined())
        #expect(text != SampleConfigs.minimal)
        return try ConfigLoader(files: MemoryConfigFiles([:])).load(text: text, path: "edged.yaml").get().warnings.map(
            \.description)
    }

    @Test func aFloat32OverTwoWordsWarnsAboutEachWhereItIsWritten() throws {
        let lines = try warnings(adding: ["{name: flow, address: 40001, type: float32}"])
        #expect(
            lines == [
                "edged.yaml:14:31: warning: templates[0].tags[2].address: tag 'flow' (float32 at 40001-40002) partly overlaps tag 'pressure' (uint16 at 40001) of template 'gauge'; check both addresses",
                "edged.yaml:14:31: warning: templates[0].tags[2].address: tag 'flow' (float32 at 40001-40002) partly overlaps tag 'status' (uint16 at 40002) of template 'gauge'; check both addresses"
            ], "\(lines)")
    }

    @Test func twoLongValuesSharingARegisterWarn() throws {
        let lines = try warnings(adding: [
            "{name: total, address: 40011, type: float64}", "{name: today, address: 40014, type: uint32}"
        ])
        #expect(
            lines.count == 1
                && lines[0].contains(
                    "tag 'today' (uint32 at 40014-40015) partly overlaps tag 'total' (float64 at 40011-40014)"),
            "\(lines)")
    }

    @Test func exactRepeatsBitsAndOtherTablesPass() throws {
        let lines = try warnings(adding: [
            "{name: pressure_kpa, address: 40001, type: uint16, scale: 0.6895}",  // the same word, scaled twice
            "{name: status_running, address: 40002, type: bit, bit: 0}",  // a bit of a word
            "{name: flow, address: 40011, type: float32}",
            "{name: flow_m3, address: 40011, type: float32, scale: 0.0283}",  // the same float32, scaled twice
            "{name: flow_sign, address: 40012, type: bit, bit: 15}",  // a bit inside a longer value
            "{name: line_pressure, address: 30001, type: float32}",  // input 0-1, not holding 0-1
            "{name: tag_name, address: 40021, type: string, length: 4}",
            "{name: next_word, address: 40025, type: uint16}"  // right after the string
        ])
        #expect(lines.isEmpty, "\(lines)")
    }
}
