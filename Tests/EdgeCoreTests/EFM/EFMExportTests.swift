import EdgeCore
import Testing

/// CSV export lines: API 21.1 columns, BLM decimals, every digit the device sent, no locale.
@Suite struct EFMExportTests {
    @Test func exportLineKeepsEveryDigitAndPadsPerKind() throws {
        let a = EFMProfile.flobossDL8000.hourly
        let values: [Float] = [60, 25.5, 300.5, 60.1, 1234.5677, 326_787.0, 0.000012345]
        let r = try ArchiveRecord(
            raw: EFMRecordTests.raw([30_125, 80_000] + values), archive: a, index: 41, order: .abcd)
        #expect(
            EFMExport.header(a)
                == "meter_id,archive,device_index,device_time,contract_hour,flow_time [min],dp_average [inH2O],"
                + "sp_average [psig],temperature_average [degF],integral_value,volume [MCF],energy [MMBTU],hash,raw_hex"
        )
        let line = EFMExport.line(r, meterID: "Well 7, run A", archive: a, contractHour: 9)
        let columns = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        #expect(columns[0] == "\"Well 7")
        #expect(Array(columns[2...6]) == ["hourly", "41", "2025-03-01T08:00:00", "9", "60.00000"])
        #expect(Array(columns[7...12]) == ["25.500", "300.500", "60.100", "1234.56770", "326787.00000", "0.000012345"])
        #expect(columns[13] == r.identity.hash)
        #expect(columns[14] == EFMExport.hex(r.raw) && columns[14].hasPrefix("46eb5a00"))
        #expect(EFMExport.decimal(-0.0, minimumDecimals: 3) == "0.000")
        #expect(EFMExport.decimal(3e10, minimumDecimals: 0) == "30000000000")
        #expect(EFMExport.decimal(-1.5, minimumDecimals: 5) == "-1.50000")
        #expect(EFMExport.decimal(.nan, minimumDecimals: 5) == "NaN")
        #expect(EFMExport.decimal(0.1, minimumDecimals: 5) == "0.10000")
    }
}
