import EdgeCore
import Testing

@Suite("Report-by-exception")
struct ReportByExceptionTests {
    static func tag(_ name: String = "p", deadband: Deadband? = nil, integrity: TimeSpan? = nil, span: Span? = nil)
        -> TagDefinition
    {
        TagDefinition(
            name: name, table: .holding, address: 0, type: .uint16, bit: nil, length: nil, order: nil, scale: 1,
            offset: 0, span: span, units: "psi", deadband: deadband, integrity: integrity, states: nil)
    }

    /// One step: value, quality, seconds on the monotonic clock.
    typealias Step = (TagValue?, Quality, Double)
    static func n(_ v: Double, _ s: Double) -> Step { (.number(v), .good, s) }

    /// Feeds the steps to `rbe` for `tag` and returns which were stored.
    static func run(_ rbe: inout ReportByException, _ tag: TagDefinition, device: String = "well-1", _ steps: [Step])
        -> [Bool]
    {
        steps.map { v, q, s in
            rbe.admit(
                Reading(
                    device: device, tag: tag.name, value: v, quality: q,
                    wallMillis: 1_750_000_000_000 + Int64(s * 1000),
                    monotonicNanos: UInt64(s * 1e9)), tag: tag)
        }
    }

    @Test func firstReadingIsStoredThenAnyChangeWithoutDeadband() {
        var rbe = ReportByException()
        #expect(Self.run(&rbe, Self.tag(), [Self.n(10, 0), Self.n(10, 1), Self.n(10.001, 2)]) == [true, false, true])
        #expect(rbe.counts(device: "well-1", tag: "p") == .init(seen: 3, stored: 2))
    }

    @Test func absoluteDeadbandComparesWithTheLastStoredValueNotTheLastSeen() {
        var rbe = ReportByException()
        // Creeping by 0.4: not beyond 1 from 10 until 11.2; exactly the deadband is not beyond.
        let stored = Self.run(
            &rbe, Self.tag(deadband: .absolute(1)),
            [
                Self.n(10, 0), Self.n(10.4, 1), Self.n(10.8, 2), Self.n(11.0, 3), Self.n(11.2, 4), Self.n(10.3, 5),
                Self.n(10.1, 6)
            ])
        #expect(stored == [true, false, false, false, true, false, true])
    }

    @Test func percentDeadbandUsesTheEngineeringSpan() {
        var rbe = ReportByException()
        // 10 psi
        let t = Self.tag(deadband: .percentOfSpan(2), span: Span(rawLow: 0, rawHigh: 65535, engLow: 0, engHigh: 500))
        #expect(Self.run(&rbe, t, [Self.n(100, 0), Self.n(109.9, 1), Self.n(110.5, 2)]) == [true, false, true])
        // Without a span a percentage deadband falls back to any change.
        var other = ReportByException()
        #expect(
            Self.run(&other, Self.tag(deadband: .percentOfSpan(2)), [Self.n(100, 0), Self.n(100.1, 1)]) == [true, true])
    }

    @Test func qualityChangeIsStoredEvenInsideTheDeadband() {
        var rbe = ReportByException()
        let stored = Self.run(
            &rbe, Self.tag(deadband: .absolute(100)),
            [
                Self.n(5, 0), (nil, .bad(.timeout), 1), (nil, .bad(.timeout), 2), (nil, .bad(.link), 3), Self.n(5, 4)
            ])
        // A different bad cause is a different quality.
        #expect(stored == [true, true, false, true, true])
    }

    @Test func integrityIntervalForcesASnapshotDefaultFifteenMinutes() {
        #expect(ReportByException.defaultIntegrity == .minutes(15))
        var rbe = ReportByException()
        let steady = Self.run(
            &rbe, Self.tag(deadband: .absolute(5)), [Self.n(1, 0), Self.n(1, 899), Self.n(1, 900), Self.n(1, 1000)])
        #expect(steady == [true, false, true, false])
        // A tag's own interval wins.
        let fast = Self.run(&rbe, Self.tag("q", integrity: .seconds(60)), [Self.n(1, 0), Self.n(1, 59), Self.n(1, 60)])
        #expect(fast == [true, false, true])
    }

    @Test func textAndKindChangesAndNaN() {
        var rbe = ReportByException()
        let stored = Self.run(
            &rbe, Self.tag(deadband: .absolute(1)),
            [
                (.text("run"), .good, 0), (.text("run"), .good, 1), (.text("stop"), .good, 2),
                Self.n(3, 3), Self.n(.nan, 4), Self.n(.nan, 5), Self.n(3, 6)
            ])
        #expect(stored == [true, false, true, true, true, false, true])
    }

    @Test func countsArePerTagAndConfiguredTagsStartAtZero() {
        var rbe = ReportByException(tags: ["well-1": [Self.tag("p"), Self.tag("q")]])
        #expect(rbe.counts.count == 2)
        #expect(rbe.counts(device: "well-1", tag: "q") == .init(seen: 0, stored: 0))
        _ = Self.run(&rbe, Self.tag("p"), (0..<10).map { Self.n(1, Double($0)) })
        _ = Self.run(&rbe, Self.tag("p"), device: "well-2", [Self.n(1, 0)])
        #expect(rbe.counts(device: "well-1", tag: "p") == .init(seen: 10, stored: 1))
        #expect(rbe.counts(device: "well-2", tag: "p") == .init(seen: 1, stored: 1))
    }
}
