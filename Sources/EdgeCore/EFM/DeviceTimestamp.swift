/// A flow computer's local date and time as its records state it: MMDDYY and HHMMSS floats, no time zone,
/// no DST flag (reference §2.8). Kept verbatim — converting it to UTC needs the device's zone and contract hour,
/// which is the exporter's business, and a record must stay as the device wrote it.
public struct DeviceTimestamp: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int

    /// A valid date and time, or nil (13/45/25 is no date; 25:00:00 is no time).
    public init?(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        guard (1...12).contains(month), (1...Self.days(in: month, of: year)).contains(day), (0...23).contains(hour),
            (0...59).contains(minute), (0...59).contains(second)
        else { return nil }
        self.year = year; self.month = month; self.day = day; self.hour = hour; self.minute = minute
        self.second = second
    }

    /// From the two Enron floats. YY is the year's last two digits (DL8000 p.99), so the year is 2000 + YY.
    /// Nil when either float is not a whole non-negative number or does not name a real date and time.
    public init?(date: Float, time: Float, format: TimeFormat) {
        guard date.isFinite, time.isFinite, date >= 0, time >= 0, date == date.rounded(), time == time.rounded(),
            date <= 123_199, time <= 235_959
        else { return nil }
        let d = Int(date)
        let t = Int(time)
        switch format {
        case .hhmmss:
            self.init(
                year: 2000 + d % 100, month: d / 10_000, day: d / 100 % 100, hour: t / 10_000,
                minute: t / 100 % 100, second: t % 100)
        case .hhmm:
            self.init(
                year: 2000 + d % 100, month: d / 10_000, day: d / 100 % 100, hour: t / 100, minute: t % 100,
                second: 0)
        }
    }

    static func days(in month: Int, of year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Seconds since 2000-01-01 00:00:00 in the device's own time: for ordering and period arithmetic.
    public var secondsSince2000: Int64 {
        var days = 0
        for y in 2000..<year { days += (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 366 : 365 }
        for m in 1..<month { days += Self.days(in: m, of: year) }
        days += day - 1
        return Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    /// The timestamp `seconds` after 2000-01-01 00:00:00 (for fakes and simulators that step a device clock).
    public init(secondsSince2000 seconds: Int64) {
        var days = Int(seconds / 86_400)
        var rest = Int(seconds % 86_400)
        var y = 2000
        while true {
            let n = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 366 : 365
            if days < n { break }
            days -= n; y += 1
        }
        var m = 1
        while days >= Self.days(in: m, of: y) { days -= Self.days(in: m, of: y); m += 1 }
        year = y; month = m; day = days + 1
        hour = rest / 3600; rest %= 3600; minute = rest / 60; second = rest % 60
    }

    /// The MMDDYY float a device writes for this date.
    public var dateFloat: Float { Float(month * 10_000 + day * 100 + year % 100) }
    /// The HHMMSS (or HHMM) float a device writes for this time.
    public func timeFloat(_ format: TimeFormat) -> Float {
        format == .hhmmss ? Float(hour * 10_000 + minute * 100 + second) : Float(hour * 100 + minute)
    }

    public static func < (a: DeviceTimestamp, b: DeviceTimestamp) -> Bool {
        (a.year, a.month, a.day, a.hour, a.minute, a.second) < (b.year, b.month, b.day, b.hour, b.minute, b.second)
    }

    /// `2024-03-01T08:00:00`, without a zone: it has none.
    public var description: String {
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(hour)):\(two(minute)):\(two(second))"
    }
}
