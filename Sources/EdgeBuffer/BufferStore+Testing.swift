import EdgeCore
import Foundation
import GRDB

/// Introspection for tests (`@_spi(Testing) import EdgeBuffer`): connection settings and query plans.
extension BufferStore {
    /// Settings as the writer connection and a reader connection see them.
    @_spi(Testing) public struct ConnectionSettings: Sendable, Equatable {
        public var writerSynchronous: Int
        public var readerSynchronous: Int
        public var journalMode: String
        public var pageSize: Int
        public var autoVacuum: Int
        public var maxPageCount: Int
        public var journalSizeLimit: Int
        public var walAutocheckpoint: Int
        public var writerCacheSize: Int
        public var readerCacheSize: Int
    }

    @_spi(Testing) public func connectionSettings() throws(BufferError) -> ConnectionSettings {
        do {
            let (reader, readerCache) = try pool.read { db in
                (
                    try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1,
                    try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? 0
                )
            }
            return try pool.writeWithoutTransaction { db in
                func int(_ p: String) throws -> Int { try Int.fetchOne(db, sql: "PRAGMA \(p)") ?? -1 }
                return ConnectionSettings(
                    writerSynchronous: try int("synchronous"), readerSynchronous: reader,
                    journalMode: try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "",
                    pageSize: try int("page_size"), autoVacuum: try int("auto_vacuum"),
                    maxPageCount: try int("max_page_count"), journalSizeLimit: try int("journal_size_limit"),
                    walAutocheckpoint: try int("wal_autocheckpoint"),
                    writerCacheSize: try int("cache_size"), readerCacheSize: readerCache)
            }
        } catch {
            throw bufferError(error, path: path, operation: "connection settings")
        }
    }

    /// `EXPLAIN QUERY PLAN` of the dequeue statement of `lane` (alarm or reading).
    @_spi(Testing) public func dequeuePlan(_ lane: BufferLane) throws(BufferError) -> [String] {
        let sql = lane == .alarm ? BufferSchema.alarmLaneSQL : BufferSchema.readingLaneSQL
        return try read("query plan") { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: [100]).map { $0["detail"] as String }
        }
    }

    /// Which of `seqs` are in the alarm or reading lane now.
    @_spi(Testing) public func presentSeqs(_ seqs: [Int64]) throws(BufferError) -> Set<Int64> {
        try read("present seqs") { db in
            var found = Set<Int64>()
            for chunk in stride(from: 0, to: seqs.count, by: 500).map({ Array(seqs[$0..<min($0 + 500, seqs.count)]) }) {
                let list = chunk.map(String.init).joined(separator: ",")
                found.formUnion(try Int64.fetchAll(db, sql: "SELECT seq FROM record WHERE seq IN (\(list))"))
            }
            return found
        }
    }

    /// Runs the idle-time upkeep (retention, EFM pruning, vacuum, checkpoint) now, on the caller's thread.
    @_spi(Testing) public func runUpkeep() { upkeep() }
}
