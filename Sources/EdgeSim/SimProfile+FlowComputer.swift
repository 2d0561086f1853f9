import EdgeCore
import Foundation

extension SimProfile {
    /// One simulated Enron flow computer in a profile file: which built-in profile, on which bus of the edged
    /// configuration and at which unit id, and how much history it holds when the simulator starts.
    public struct FlowComputerSpec: Sendable, Decodable {
        /// `scanner2000` or `floboss-dl8000`.
        public var profile: String
        /// The bus (of the edged configuration) it is served on.
        public var bus: String
        public var unit: Int
        /// Hours of history written before serving starts (default 0).
        public var historyHours: Int?
        /// The contract hour (default: the profile's).
        public var contractHour: Int?
        /// Device clock once the history is written, `2024-03-01T08:00:00` (default: the host's UTC time, at
        /// the top of the hour).
        public var clock: String?
        /// Hold each Enron reply for the time its bytes take on a serial line at this baud rate (as over a
        /// 9600-baud radio), so a backfill takes as long as it would in the field.
        public var baud: Int?

        public init(
            profile: String, bus: String, unit: Int, historyHours: Int? = nil, contractHour: Int? = nil,
            clock: String? = nil, baud: Int? = nil
        ) {
            self.profile = profile; self.bus = bus; self.unit = unit; self.historyHours = historyHours
            self.contractHour = contractHour; self.clock = clock; self.baud = baud
        }

        /// The flow computer, its history written.
        public func make(name: String) throws -> SimFlowComputer {
            guard let p = SimFlowComputer.builtInProfile(named: profile) else {
                throw SimError("\(name): unknown flow computer profile '\(profile)' (scanner2000, floboss-dl8000)")
            }
            let hours = historyHours ?? 0
            guard hours >= 0 else { throw SimError("\(name): historyHours \(hours) is negative") }
            let end: Int64
            if let text = clock {
                guard let t = Self.timestamp(text) else {
                    throw SimError("\(name): clock '\(text)' is not YYYY-MM-DDTHH:MM:SS")
                }
                end = t.secondsSince2000
            } else {
                let now = Int64(Date().timeIntervalSince1970) - 946_684_800
                end = now - now % 3600
            }
            let computer = try SimFlowComputer(
                name: name, unit: unit, profile: p, start: DeviceTimestamp(secondsSince2000: end - Int64(hours) * 3600),
                contractHour: contractHour)
            computer.advance(hours: hours)
            if let baud {
                guard (300...1_000_000).contains(baud) else {
                    throw SimError("\(name): baud \(baud) is not 300–1000000")
                }
                computer.emulateLine(baud: baud)
            }
            return computer
        }

        /// Parses `YYYY-MM-DDTHH:MM:SS` (years 2000–2099, as a 2-digit-year device can write them).
        public static func timestamp(_ text: String) -> DeviceTimestamp? {
            let parts = text.split(whereSeparator: { "-T:".contains($0) }).map { Int($0) }
            guard parts.count == 6, let y = parts[0], (2000...2099).contains(y), let mo = parts[1], let d = parts[2],
                let h = parts[3], let mi = parts[4], let s = parts[5]
            else { return nil }
            return DeviceTimestamp(year: y, month: mo, day: d, hour: h, minute: mi, second: s)
        }
    }
}
