@testable import EdgeCore
import Testing

@Suite struct ConditionTests {
    func parse(_ s: String) throws -> Condition { try ConditionExpression(parsing: s).condition }

    @Test func parsesComparisonsWithPrecedence() throws {
        let c = try parse("rpc-1.well_state == running and pump_fillage < 40 or not (flow >= 1.5)")
        guard
            case .or(
                .and(.compare(let r1, .eq, .state("running")), .compare(let r2, .lt, .number(40))),
                .not(.compare(let r3, .ge, .number(1.5)))) = c
        else {
            Issue.record("unexpected tree \(c)"); return
        }
        #expect(r1 == TagRef(device: "rpc-1", tag: "well_state"))
        #expect(r2 == TagRef(device: nil, tag: "pump_fillage"))
        #expect(r3.tag == "flow")
    }

    @Test(
        arguments: [
            ("well_state running", 12, "expected a comparison"),
            ("well_state == ", 15, "expected a number, true, false or a state name"),
            ("(a == 1", 8, "expected ')'"),
            ("a == 1 b == 2", 8, "expected 'and', 'or' or the end"),
            ("a = 1", 3, "'=' is not an operator"),
            ("a == 1 and", 11, "expected a tag name"),
            ("a.b.c == 1", 1, "is not a tag reference"),
            ("a == $", 6, "unexpected '$'")
        ] as [(String, Int, String)])
    func reportsWhereItFails(text: String, offset: Int, message: String) {
        do {
            _ = try ConditionExpression(parsing: text)
            Issue.record("'\(text)' parsed")
        } catch {
            #expect(error.offset == offset, "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }

    /// Depth and size are bounded: a few thousand '(' overflowed the stack (a make fuzz finding); 32 levels and
    /// 64 operators are far beyond any alarm's condition and still parse.
    @Test func nestingAndLengthAreBounded() throws {
        let deep = String(repeating: "(", count: 5000) + "a == 1" + String(repeating: ")", count: 5000)
        #expect(throws: ConditionSyntaxError.self) { try ConditionExpression(parsing: deep) }
        #expect(throws: ConditionSyntaxError.self) {
            try ConditionExpression(parsing: String(repeating: "not ", count: 5000) + "a == 1")
        }
        #expect(throws: ConditionSyntaxError.self) {
            try ConditionExpression(parsing: (0...65).map { "t\($0) == 1" }.joined(separator: " and "))
        }
        _ = try ConditionExpression(
            parsing: String(repeating: "(", count: 32) + "a == 1" + String(repeating: ")", count: 32))
        _ = try ConditionExpression(parsing: (0...63).map { "t\($0) == 1" }.joined(separator: " or "))
    }

    @Test func evaluatesWithUnknownValues() throws {
        let c = try parse("a > 10 and b == running")
        let values: [String: Double] = ["a": 12, "b": 1]
        let stateOf: (TagRef, String) -> Double? = { _, s in s == "running" ? 1 : nil }
        #expect(c.evaluate({ values[$0.tag] }, state: stateOf) == true)
        #expect(c.evaluate({ $0.tag == "a" ? 5 : nil }, state: stateOf) == false)  // false and unknown = false
        #expect(c.evaluate({ $0.tag == "a" ? 12 : nil }, state: stateOf) == nil)  // true and unknown = unknown
        let o = try parse("a > 10 or b == 1")
        #expect(o.evaluate({ $0.tag == "a" ? 12 : nil }, state: stateOf) == true)
        #expect(try parse("not a == 1").evaluate({ _ in 1 }, state: stateOf) == false)
    }
}
