import EdgeCore
import Testing

@Suite struct UnitsTests {
    @Test(
        arguments: [
            ("500ms", 500), ("15s", 15_000), ("10m", 600_000), ("2h", 7_200_000), ("30d", 2_592_000_000),
            ("1m30s", 90_000), ("1.5s", 1500), ("0s", 0)
        ] as [(String, Int64)])
    func parsesDurations(text: String, ms: Int64) {
        #expect(TimeSpan(parsing: text)?.milliseconds == ms)
    }

    @Test(arguments: ["10", "", "s", "5 parsecs", "1x", "-5s"])
    func refusesNonDurations(text: String) {
        #expect(TimeSpan(parsing: text) == nil)
    }

    @Test func printsDurationsExactly() {
        #expect(TimeSpan(milliseconds: 90_000).description == "1m30s")
        #expect(TimeSpan(milliseconds: 1500).description == "1s500ms")
        #expect(TimeSpan.hours(48).description == "2d")
        #expect(TimeSpan(milliseconds: 0).description == "0s")
        for ms: Int64 in [1, 999, 1000, 61_001, 86_400_000 + 3_600_000 + 1] {
            #expect(TimeSpan(parsing: TimeSpan(milliseconds: ms).description)?.milliseconds == ms)
        }
    }

    @Test(
        arguments: [
            ("4096", 4096), ("512KiB", 524_288), ("64MiB", 67_108_864), ("20MB", 20_000_000),
            ("1GiB", 1_073_741_824), ("2kB", 2000)
        ] as [(String, Int64)])
    func parsesSizes(text: String, bytes: Int64) {
        #expect(ByteCount(parsing: text)?.bytes == bytes)
    }

    @Test func refusesUnknownSizeUnits() {
        #expect(ByteCount(parsing: "64XB") == nil)
        #expect(ByteCount(parsing: "MiB") == nil)
        #expect(ByteCount(bytes: 64 << 20).description == "64MiB")
        #expect(ByteCount(bytes: 20_000_000).description == "20MB")
    }

    @Test func modiconNumbering() {
        #expect(Modicon.parse("40001")! == (.holding, 0))
        #expect(Modicon.parse("49999")! == (.holding, 9998))
        #expect(Modicon.parse("400001")! == (.holding, 0))
        #expect(Modicon.parse("465536")! == (.holding, 65535))
        #expect(Modicon.parse("30001")! == (.input, 0))
        #expect(Modicon.parse("10001")! == (.discrete, 0))
        #expect(Modicon.parse("00001")! == (.coil, 0))
        #expect(Modicon.parse("1")! == (.coil, 0))
        #expect(Modicon.parse("20001") == nil)
        #expect(Modicon.parse("40000") == nil)
        #expect(Modicon.parse("4000a") == nil)
        #expect(Modicon.format(.holding, 0) == "40001")
        #expect(Modicon.format(.input, 12000) == "312001")
    }
}
