import EdgeCore
import Testing

/// Enron register widths, value decoding and frames, with the vectors of the reference (§1.2–1.7).
@Suite struct EFMWireTests {
    @Test func registerNumberDecidesTheWidth() {
        #expect(EnronRegister.width(of: 1001) == .boolean)
        #expect(EnronRegister.width(of: 3999) == .int16)
        #expect(EnronRegister.width(of: 5001) == .int32)
        #expect(EnronRegister.width(of: 7000) == .float32)  // Scanner 2000 interval pointer
        #expect(EnronRegister.width(of: 7001) == .float32)
        #expect(EnronRegister.width(of: 9976) == .float32)
        #expect(EnronRegister.width(of: 2000) == nil && EnronRegister.width(of: 6999) == nil)
        #expect(EnronRegister.width(of: 32) == nil)
    }

    @Test func vendorVectorsDecodeHighWordFirst() throws {
        #expect(try EnronRegister.decode([0x48, 0x9F, 0x90, 0x60], start: 7001, count: 1) == [.float32(326_787.0)])
        #expect(try EnronRegister.decode([0x47, 0xEA, 0xF8, 0x00], start: 7001, count: 1) == [.float32(120_304.0)])
        let long = try EnronRegister.decode([0xAE, 0x41, 0x56, 0x52], start: 5001, count: 1)
        #expect(long == [.int32(Int32(bitPattern: 2_923_517_522))])
        #expect(UInt32(bitPattern: Int32(long[0].number)) == 2_923_517_522)
        // The same float from a device that sends the low word first.
        #expect(
            try EnronRegister.decode([0x90, 0x60, 0x48, 0x9F], start: 7001, count: 1, order: .cdab) == [
                .float32(326_787.0)
            ])
        #expect(EnronRegister.bytes(of: Float(326_787.0), order: .cdab) == [0x90, 0x60, 0x48, 0x9F])
        #expect(
            try EnronRegister.decode([0x00, 0x05, 0xFF, 0xFE], start: 3001, count: 2) == [.int16(5), .int16(-2)])
        #expect(
            try EnronRegister.decode([0b0000_0101], start: 1001, count: 3) == [
                .boolean(true), .boolean(false), .boolean(true)
            ])
    }

    @Test func aReplyMustHoldExactlyTheRegistersAskedFor() {
        #expect(throws: EnronRegister.DecodeError.wrongByteCount(start: 7001, count: 2, expected: 8, got: 4)) {
            try EnronRegister.decode([0x48, 0x9F, 0x90, 0x60], start: 7001, count: 2)
        }
        #expect(throws: EnronRegister.DecodeError.mixedWidths(start: 5999, count: 2)) {
            try EnronRegister.decode([], start: 5999, count: 2)
        }
    }

    @Test func requestFrames() {
        #expect(EnronFrame.archiveRead(unit: 1, archive: 701, index: 10) == [0x01, 0x03, 0x02, 0xBD, 0x00, 0x0A])
        #expect(EnronFrame.eventRead(unit: 1) == [0x01, 0x03, 0x00, 0x20, 0x00, 0x01])
        #expect(EnronFrame.eventAcknowledge(unit: 1) == [0x01, 0x05, 0x00, 0x20, 0xFF, 0x00])
        // simplymodbus's wire examples, CRC included, once libmodbus adds it.
        #expect(RTUFraming.sealed(EnronFrame.eventRead(unit: 1)).suffix(2) == [0x85, 0xC0])
        #expect(RTUFraming.sealed(EnronFrame.eventAcknowledge(unit: 1)).suffix(2) == [0x8D, 0xF0])
        #expect(EnronFrame.registerRead(unit: 3, start: 7000, count: 2) == [0x03, 0x03, 0x1B, 0x58, 0x00, 0x02])
    }

    @Test func archiveRecordConfirmationsOverRTUAndTCP() throws {
        let record = [0x47, 0xEA, 0xF8, 0x00, 0x47, 0x9C, 0x40, 0x00] + Array(repeating: UInt8(0x41), count: 12)
        let rtu = RTUFraming.sealed([0x01, 0x03, 20] + record)
        #expect(try EnronFrame.archiveRecord(rtu, transport: .rtu, unit: 1, recordSize: 20) == record)
        let tcp: [UInt8] = [0x00, 0x00, 0x00, 0x00, 0x00, 23, 0x01, 0x03, 20] + record
        #expect(try EnronFrame.archiveRecord(tcp, transport: .tcp, unit: 1, recordSize: 20) == record)
        #expect(throws: EnronFrameError.recordSizeMismatch(expected: 24, got: 20)) {
            try EnronFrame.archiveRecord(rtu, transport: .rtu, unit: 1, recordSize: 24)
        }
        #expect(throws: EnronFrameError.wrongUnit(expected: 2, got: 1)) {
            try EnronFrame.archiveRecord(rtu, transport: .rtu, unit: 2, recordSize: 20)
        }
        #expect(throws: EnronFrameError.byteCountMismatch(byteCount: 20, carried: 19)) {
            try EnronFrame.archiveRecord(Array(rtu.prefix(22)) + [0, 0], transport: .rtu, unit: 1, recordSize: 20)
        }
        #expect(throws: EnronFrameError.empty) {
            try EnronFrame.archiveRecord(RTUFraming.sealed([1, 3, 0]), transport: .rtu, unit: 1, recordSize: 20)
        }
        #expect(throws: EnronFrameError.unexpectedFunction(expected: 3, got: 4)) {
            try EnronFrame.archiveRecord(RTUFraming.sealed([1, 4, 0]), transport: .rtu, unit: 1, recordSize: 20)
        }
        #expect(throws: EnronFrameError.truncated(length: 2)) {
            try EnronFrame.archiveRecord([1, 3], transport: .rtu, unit: 1, recordSize: 20)
        }
    }

    @Test func anExceptionReplyNamesItsCode() {
        let reply = RTUFraming.sealed([0x01, 0x83, 0x02])
        #expect(throws: EnronFrameError.exception(function: 3, code: 2)) {
            try EnronFrame.archiveRecord(reply, transport: .rtu, unit: 1, recordSize: 20)
        }
        #expect(
            "\(EnronFrameError.exception(function: 3, code: 2))"
                == "exception 0x02 (illegal data address) to function 0x03")
    }

    @Test func eventRepliesAreWholeRecordsAndTheAcknowledgeIsAnEcho() throws {
        let two = Array(repeating: UInt8(0), count: 40)
        #expect(
            try EnronFrame.eventRecords(RTUFraming.sealed([1, 3, 40] + two), transport: .rtu, unit: 1, recordSize: 20)
                == two)
        #expect(
            try EnronFrame.eventRecords(RTUFraming.sealed([1, 3, 0]), transport: .rtu, unit: 1, recordSize: 20) == [])
        #expect(throws: EnronFrameError.notWholeEventRecords(recordSize: 20, got: 30)) {
            try EnronFrame.eventRecords(
                RTUFraming.sealed([1, 3, 30] + Array(two.prefix(30))), transport: .rtu, unit: 1, recordSize: 20)
        }
        try EnronFrame.acknowledgement(
            RTUFraming.sealed(EnronFrame.eventAcknowledge(unit: 1)), transport: .rtu, unit: 1)
        #expect(throws: EnronFrameError.exception(function: 5, code: 4)) {
            try EnronFrame.acknowledgement(RTUFraming.sealed([1, 0x85, 4]), transport: .rtu, unit: 1)
        }
        #expect(throws: EnronFrameError.notAnEcho([0x00, 0x20, 0x00, 0x00])) {
            try EnronFrame.acknowledgement(RTUFraming.sealed([1, 5, 0, 0x20, 0, 0]), transport: .rtu, unit: 1)
        }
    }
}
