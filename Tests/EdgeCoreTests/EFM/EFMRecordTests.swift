import EdgeCore
import Foundation
import Testing

/// Decoding archive and event records, their identities and the built-in profiles.
@Suite struct EFMRecordTests {
    static func raw(_ floats: [Float], order: WordOrder = .abcd) -> [UInt8] {
        floats.flatMap { EnronRegister.bytes(of: $0, order: order) }
    }

    @Test func historyRecordFromSimplymodbus() throws {
        var a = EFMProfile.scanner2000.hourly
        a.layout.fields = Array(a.layout.fields.prefix(3))
        let bytes: [UInt8] =
            [0x47, 0xEA, 0xF8, 0x00, 0x47, 0x9C, 0x40, 0x00] + Self.raw([326_787.0, 1.5, 2.25])
        let r = try ArchiveRecord(raw: bytes, archive: a, index: 10, order: .abcd)
        #expect(r.timestamp == DeviceTimestamp(year: 2004, month: 12, day: 3, hour: 8, minute: 0, second: 0))
        #expect(r.value("fr1_volume") == 326_787.0)
        #expect(r.values.map(\.name) == ["fr1_volume", "fr1_mass", "fr1_energy"])
        #expect(r.raw == bytes)
        // The same record from a low-word-first device decodes to the same values.
        let swapped = try ArchiveRecord(
            raw: Self.raw([120_304, 80_000, 326_787.0, 1.5, 2.25], order: .cdab), archive: a, index: 10, order: .cdab)
        #expect(swapped.numbers == r.numbers && swapped.timestamp == r.timestamp)
    }

    @Test func anImpossibleDateIsAnErrorNotARecord() {
        let a = EFMProfile.flobossDL8000.daily
        let fields = [Float](repeating: 0, count: a.layout.fields.count)
        #expect(throws: EFMDecodeError.timestamp(date: 134_525, time: 0)) {
            try ArchiveRecord(raw: Self.raw([134_525, 0] + fields), archive: a, index: 0, order: .abcd)
        }
        #expect(throws: EFMDecodeError.timestamp(date: 22_925, time: 0)) {  // 29 Feb 2025
            try ArchiveRecord(raw: Self.raw([22_925, 0] + fields), archive: a, index: 0, order: .abcd)
        }
        #expect(throws: EFMDecodeError.timestamp(date: 10_125, time: 250_000)) {
            try ArchiveRecord(raw: Self.raw([10_125, 250_000] + fields), archive: a, index: 0, order: .abcd)
        }
        #expect(DeviceTimestamp(date: 22_924, time: 235_959, format: .hhmmss) != nil)
        #expect(DeviceTimestamp(date: 10_125, time: 1_230, format: .hhmm)?.minute == 30)
        #expect(throws: EFMDecodeError.size(expected: a.layout.recordSize, got: 8)) {
            try ArchiveRecord(raw: Self.raw([10_125, 0]), archive: a, index: 0, order: .abcd)
        }
    }

    @Test func sameKeySameBytesIsADuplicateOtherBytesAConflict() throws {
        let a = EFMProfile.flobossDL8000.hourly
        let fields = (0..<a.layout.fields.count).map { Float($0) }
        let one = try ArchiveRecord(raw: Self.raw([30_125, 80_000] + fields), archive: a, index: 3, order: .abcd)
        let again = try ArchiveRecord(raw: Self.raw([30_125, 80_000] + fields), archive: a, index: 3, order: .abcd)
        var changed = fields
        changed[5] += 1
        let other = try ArchiveRecord(raw: Self.raw([30_125, 80_000] + changed), archive: a, index: 3, order: .abcd)
        #expect(one.identity.key == "hourly@2025-03-01T08:00:00")
        #expect(one.identity.hash.count == 16)
        #expect(again.identity.disposition(storedHash: one.identity.hash) == .duplicate)
        #expect(other.identity.key == one.identity.key)
        #expect(other.identity.disposition(storedHash: one.identity.hash) == .conflict(storedHash: one.identity.hash))
        #expect(one.identity.disposition(storedHash: nil) == .new)
        // FNV-1a 64 test vectors (Fowler, Noll, Vo).
        #expect(RecordIdentity.fnv1a64Hex([]) == "cbf29ce484222325")
        #expect(RecordIdentity.fnv1a64Hex(Array("a".utf8)) == "af63dc4c8601ec8c")
    }

    @Test func eventAndAlarmRecords() throws {
        func event(_ bitmap: UInt16, register: UInt16) -> [UInt8] {
            [UInt8(bitmap >> 8), UInt8(bitmap & 0xFF), UInt8(register >> 8), UInt8(register & 0xFF)]
                + Self.raw([143_000, 30_125, 1.5, 2.5])
        }
        let operatorEvent = try EventRecord(raw: event(0x0200, register: 7024), order: .abcd)
        #expect(operatorEvent.isOperatorEvent && operatorEvent.alarmSet == nil)
        #expect(operatorEvent.register == 7024 && operatorEvent.asFound == 1.5 && operatorEvent.asLeft == 2.5)
        #expect(
            operatorEvent.timestamp == DeviceTimestamp(year: 2025, month: 3, day: 1, hour: 14, minute: 30, second: 0))
        let hiSet = try EventRecord(raw: event(0x9000, register: 7010), order: .abcd)
        #expect(!hiSet.isOperatorEvent && hiSet.alarmSet == true && hiSet.limits == [.hi])
        let loLoClear = try EventRecord(raw: event(0x0400, register: 7010), order: .abcd)
        #expect(loLoClear.alarmSet == false && loLoClear.limits == [.loLo])
        let rate = try EventRecord(raw: event(0xC000, register: 7010), order: .abcd)
        #expect(rate.limits == [.rateOfChange])
        #expect(hiSet.identity.key == "event@2025-03-01T14:30:00/r7010/b36864")
        #expect(hiSet.identity != loLoClear.identity)
        let both = try EventRecord.decodeAll(event(0x0200, register: 1) + event(0x9000, register: 2), order: .abcd)
        #expect(both.map(\.register) == [1, 2])
    }

    @Test func builtInProfilesAreUsableAndSayWhereTheyComeFrom() throws {
        for p in [EFMProfile.scanner2000, .flobossDL8000] {
            #expect(p.problems == [])
            let decoded = try JSONDecoder().decode(EFMProfile.self, from: JSONEncoder().encode(p))
            #expect(decoded == p)
        }
        let s = EFMProfile.scanner2000
        #expect(s.hourly.layout.fields.count == 16 && s.hourly.layout.recordSize == 72)
        #expect(s.hourly.capacity.value == 2304 && s.daily.capacity.value == 768)
        #expect(s.hourly.register.source.isConfirmed && !s.hourly.pointerMeaning.source.isConfirmed)
        let f = EFMProfile.flobossDL8000
        #expect(f.hourly.register.value == 704 && f.daily.register.value == 703)
        #expect(f.hourly.capacity.value == 840 && f.daily.capacity.value == 35)
        #expect(f.hourly.pointerRegister.value == 7161 && f.daily.pointerRegister.value == 7160)
        #expect(f.hourly.pointerMeaning.value == .nextToWrite && f.hourly.pointerBase.value == 0)
        #expect(f.maxReplyBytes.value == 240 && f.maxReplyBytes.source.isConfirmed)
        #expect("\(f.hourly.pointerMeaning.source)".hasPrefix("confirmed: DL8000 manual"))
        var broken = f
        broken.hourly.pointerBase.value = 2
        broken.daily.layout.fields += Array(repeating: broken.daily.layout.fields[0], count: 60)
        #expect(broken.problems.count == 2)
    }
}
