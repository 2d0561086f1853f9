import Foundation

/// Exponential backoff with full jitter: the n-th wait is uniform in 0...min(cap, base·2ⁿ).
public struct Backoff: Sendable, Equatable, Codable {
    public var baseMillis: Int64
    public var capMillis: Int64
    public private(set) var attempt = 0

    public init(base: TimeSpan, cap: TimeSpan) {
        baseMillis = max(1, base.milliseconds); capMillis = max(baseMillis, cap.milliseconds)
    }

    /// The ceiling of the next wait (before jitter).
    public var ceilingMillis: Int64 {
        let shift = Int64(min(attempt, 40))
        let grown = baseMillis.multipliedReportingOverflow(by: Int64(1) << shift)
        return grown.overflow ? capMillis : min(capMillis, grown.partialValue)
    }

    /// The next wait; `random` picks uniformly in a closed range (injected so tests are exact).
    public mutating func next(random: (ClosedRange<Int64>) -> Int64) -> Int64 {
        let wait = random(0...ceilingMillis)
        attempt += 1
        return wait
    }

    public mutating func reset() { attempt = 0 }
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
public enum RetryAfter {
    /// The longest wait a server can ask for (sync protocol §7: a value over 1 hour counts as 1 hour).
    public static let maxMillis: Int64 = 3_600_000

    /// Milliseconds to wait, given the header value and the current wall-clock time; nil if unparsable.
    /// A date in the past means now; anything over an hour counts as an hour.
    public static func millis(_ value: String, nowWallMillis: Int64) -> Int64? {
        let v = value.trimmingCharacters(in: .whitespaces)
        if !v.isEmpty, v.allSatisfy({ $0.isASCII && $0.isNumber }) {
            return Int64(v).map { min($0, maxMillis / 1000) * 1000 } ?? maxMillis  // too many digits: over an hour
        }
        guard let date = HTTPDate.parse(v) else { return nil }
        return min(maxMillis, max(0, date - nowWallMillis))
    }
}

/// HTTP dates, parsed without Foundation's locale-dependent formatters: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, what servers send) and the obsolete forms a recipient must also accept,
/// RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`).
enum HTTPDate {
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func parse(_ s: String) -> Int64? {
        let parts = s.split(separator: " ")
        if parts.count == 6, parts[5] == "GMT", parts[0].hasSuffix(",") {  // IMF-fixdate
            guard let day = Int(parts[1]), let year = Int(parts[3]) else { return nil }
            return millis(year, parts[2], day, parts[4])
        }
        if parts.count == 4, parts[3] == "GMT", parts[0].hasSuffix(",") {  // RFC 850
            let dmy = parts[1].split(separator: "-")
            guard dmy.count == 3, let day = Int(dmy[0]), let yy = Int(dmy[2]) else { return nil }
            // Two-digit years: RFC 9110 §5.6.7 says a year more than 50 years ahead is in the past century.
            let year = dmy[2].count == 2 ? (yy < 70 ? 2000 + yy : 1900 + yy) : yy
            return millis(year, dmy[1], day, parts[2])
        }
        if parts.count == 5 {  // asctime
            guard let day = Int(parts[2]), let year = Int(parts[4]) else { return nil }
            return millis(year, parts[1], day, parts[3])
        }
        return nil
    }

    private static func millis(_ year: Int, _ monthName: Substring, _ day: Int, _ time: Substring) -> Int64? {
        // Fields in their ranges only: a server (or a proxy) that sends year 199444444444019744 or hour 10^15
        // gets its header ignored, not the gateway crashed by an overflow (found by make fuzz).
        guard let month = months.firstIndex(of: String(monthName)), (1...31).contains(day), (1900...9999).contains(year)
        else { return nil }
        let hms = time.split(separator: ":").compactMap { Int($0) }
        guard hms.count == 3, (0...23).contains(hms[0]), (0...59).contains(hms[1]), (0...60).contains(hms[2]) else {
            return nil
        }
        return (daysFromCivil(year, month + 1, day) * 86_400 + Int64(hms[0] * 3600 + hms[1] * 60 + hms[2])) * 1000
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return Int64(era * 146_097 + doe - 719_468)
    }
}
