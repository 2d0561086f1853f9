import EdgeBuffer
import EdgeCore
import EdgeSystem
import Foundation
import Logging

/// The month's data usage, kept in the buffer file across restarts.
extension UplinkService {
    static func loadUsage(_ store: BufferStore, logger: Logger) async -> DataUsage {
        let month = DataUsage.month(ofWallMillis: SystemClock.wallMillis())
        do {
            guard let text = try await store.state(usageKey) else { return DataUsage(month: month) }
            return try JSONDecoder().decode(DataUsage.self, from: Data(text.utf8))
        } catch {
            logger.error("uplink: this month's data usage is unreadable (\(error)); counting from zero")
            return DataUsage(month: month)
        }
    }

    /// Saves the month's usage in the buffer file; false when that failed (it is saved again later).
    func saveUsage(_ usage: DataUsage, store: BufferStore) async -> Bool {
        guard let data = try? JSONEncoder().encode(usage) else { return false }
        do {
            _ = try await store.append(
                alarms: [], state: StateEntry(key: Self.usageKey, value: String(decoding: data, as: UTF8.self)))
            return true
        } catch {
            logger.error("uplink: saving this month's data usage failed: \(error)")
            return false
        }
    }
}
