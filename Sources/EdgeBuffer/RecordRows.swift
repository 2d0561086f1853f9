import EdgeCore
import Foundation
import GRDB

/// A reading made ready for insertion on the caller's side: names as a series key, value split into
/// the row's columns.
struct PendingReading: Sendable {
    var series: SeriesKey
    var wall: Int64
    var number: Double?
    var text: String?
    var quality: Int64

    init(_ r: Reading, units: String?) {
        series = SeriesKey(device: r.device, tag: r.tag, units: units ?? "")
        wall = r.wallMillis
        switch r.value {
        case .number(let v)?: number = v; text = nil
        case .text(let s)?: number = nil; text = s
        case nil: number = nil; text = nil
        }
        quality = QualityCode.encode(r.quality, clockSynchronized: r.clockSynchronized)
    }
}

/// An interned (device, tag, units) triple; units "" stands for none. The hash is computed once, on the
/// appending caller's thread, so the single writer thread only compares.
struct SeriesKey: Sendable, Hashable {
    let device: String
    let tag: String
    let units: String
    private let hashValue0: Int

    init(device: String, tag: String, units: String) {
        self.device = device; self.tag = tag; self.units = units
        var h = Hasher()
        h.combine(device); h.combine(tag); h.combine(units)
        hashValue0 = h.finalize()
    }
    func hash(into hasher: inout Hasher) { hasher.combine(hashValue0) }
    static func == (a: SeriesKey, b: SeriesKey) -> Bool {
        a.hashValue0 == b.hashValue0 && a.device == b.device && a.tag == b.tag && a.units == b.units
    }
}

/// JSON bodies of alarm and gap records, and rows back into records.
enum RecordRows {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: try e.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ body: String?, seq: Int64) throws -> T {
        guard let body else { throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "record \(seq) has no body") }
        do {
            return try JSONDecoder().decode(type, from: Data(body.utf8))
        } catch {
            throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "record \(seq): unreadable body: \(error)")
        }
    }

    /// A row of `alarmLaneSQL`: seq, kind, wall, body.
    static func alarm(_ row: Row) throws -> BufferedRecord {
        let seq: Int64 = row[0]
        return BufferedRecord(
            seq: seq, lane: .alarm, payload: .alarm(try decode(AlarmEventRecord.self, row[3], seq: seq)))
    }

    /// A row of `readingLaneSQL`: seq, kind, wall, value, quality, body, device, tag, units.
    static func readingLane(_ row: Row, lane: BufferLane = .reading) throws -> BufferedRecord {
        let seq: Int64 = row[0]
        let kind: Int64 = row[1]
        switch RecordKind(rawValue: kind) {
        case .reading:
            let number: Double? = row[3]
            let text: String? = row[5]
            let value: TagValue? = number.map { .number($0) } ?? text.map { .text($0) }
            let units: String = row[8] ?? ""
            let reading = StoredReading(
                device: row[6] ?? "?", tag: row[7] ?? "?", units: units.isEmpty ? nil : units,
                wallMillis: row[2], value: value, quality: QualityCode.decode(row[4]),
                clockSynchronized: QualityCode.clockSynchronized(row[4]))
            return BufferedRecord(seq: seq, lane: lane, payload: .reading(reading))
        case .evictionGap, .lossGap:
            return BufferedRecord(seq: seq, lane: lane, payload: .gap(try decode(GapRecord.self, row[5], seq: seq)))
        case .alarm:
            return BufferedRecord(
                seq: seq, lane: lane, payload: .alarm(try decode(AlarmEventRecord.self, row[5], seq: seq)))
        case nil:
            throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "record \(seq) has unknown kind \(kind)")
        }
    }
}

/// Turns whatever GRDB or SQLite threw into a `BufferError` — the one place that reads SQLite result codes.
func bufferError(_ error: any Error, path: String, operation: String, file: String = #fileID, line: Int = #line)
    -> BufferError
{
    if let e = error as? BufferError { return e }
    if let e = error as? DatabaseError {
        let code: BufferError.Code =
            switch e.resultCode {
            case .SQLITE_FULL: .diskFull
            case .SQLITE_IOERR: .ioError
            case .SQLITE_CORRUPT, .SQLITE_NOTADB: .corrupt
            case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_READONLY: .cannotOpen
            default: .database
            }
        return BufferError(
            code, path: path, operation: operation,
            detail: "\(e.message ?? "SQLite error") (SQLite code \(e.extendedResultCode.rawValue))",
            file: file, line: line)
    }
    return BufferError(.database, path: path, operation: operation, detail: "\(error)", file: file, line: line)
}

extension RecordRows {
    /// A row of `efmLaneSQL`: seq, gap flag, device, meter, contract hour, archive, key, hash, device time,
    /// collected (or noted), raw, decoded, units, from, to, periods.
    static func efm(_ row: Row) throws -> BufferedRecord {
        let seq: Int64 = row[0]
        let isGap: Int64 = row[1]
        if isGap == 1 {
            return BufferedRecord(
                seq: seq, lane: .efm,
                payload: .efmGap(
                    EFMGapUpload(
                        kind: row[5], device: row[2], meter: row[3], from: row[13], to: row[14], periods: row[15],
                        notedWallMillis: row[9])))
        }
        let archive: String = row[5]
        let decoded: String? = row[11]
        let body: EFMUploadRecord.Body
        if archive == "event" {
            let e = try decode(EventRecord.self, decoded, seq: seq)
            body = .event(register: e.register, bitmap: e.bitmap, asFound: e.asFound, asLeft: e.asLeft)
        } else {
            let r = try decode(ArchiveRecord.self, decoded, seq: seq)
            let units = try (row[12] as String?).map { try decode([String?].self, $0, seq: seq) }
            body = .archive(
                names: r.names, numbers: r.numbers,
                units: r.names.indices.map { i in units.flatMap { i < $0.count ? $0[i] : nil } })
        }
        return BufferedRecord(
            seq: seq, lane: .efm,
            payload: .efm(
                EFMUploadRecord(
                    kind: archive, device: row[2], meter: row[3], contractHour: row[4], deviceTime: row[8], key: row[6],
                    hash: row[7], collectedWallMillis: row[9], raw: [UInt8](row[10] as Data), body: body)))
    }
}
