@testable import EdgeCore
import Testing

@Suite struct RegisterDecoderTests {
    static func tag(
        _ type: ValueType, order: WordOrder? = nil, scale: Double = 1, offset: Double = 0, span: Span? = nil,
        bit: Int? = nil, length: Int? = nil, address: Int = 10
    ) -> TagDefinition {
        TagDefinition(
            name: "t", table: .holding, address: address, type: type, bit: bit, length: length, order: order,
            scale: scale, offset: offset, span: span, units: nil, deadband: nil, integrity: nil, states: nil)
    }

    /// 100.25 as float32 in the four orders (wellsite reference).
    @Test(
        arguments: [
            (WordOrder.abcd, [0x42C8, 0x8000]), (.cdab, [0x8000, 0x42C8]),
            (.badc, [0xC842, 0x0080]), (.dcba, [0x0080, 0xC842])
        ] as [(WordOrder, [UInt16])])
    func float32InAllOrders(order: WordOrder, words: [UInt16]) {
        let (v, q) = RegisterDecoder.decode(Self.tag(.float32, order: order), registers: [0xFFFF] + words, start: 9)
        #expect(q == .good)
        #expect(v == .number(100.25))
        #expect(RegisterDecoder.encode(100.25, Self.tag(.float32, order: order)) == words)
    }

    @Test func integersOfEveryWidthAndOrder() {
        #expect(RegisterDecoder.decode(Self.tag(.uint16), registers: [0xFFFE], start: 10).0 == .number(65534))
        #expect(RegisterDecoder.decode(Self.tag(.int16), registers: [0xFFFE], start: 10).0 == .number(-2))
        #expect(RegisterDecoder.decode(Self.tag(.uint32), registers: [0x0001, 0x0002], start: 10).0 == .number(65538))
        #expect(
            RegisterDecoder.decode(Self.tag(.uint32, order: .cdab), registers: [0x0002, 0x0001], start: 10).0
                == .number(65538))
        #expect(RegisterDecoder.decode(Self.tag(.int32), registers: [0xFFFF, 0xFFFF], start: 10).0 == .number(-1))
        #expect(
            RegisterDecoder.decode(Self.tag(.int32, order: .dcba), registers: [0xC7CF, 0xFFFF], start: 10).0
                == .number(-12345))
        #expect(RegisterDecoder.decode(Self.tag(.uint64), registers: [0, 0, 1, 0], start: 10).0 == .number(65536))
        #expect(
            RegisterDecoder.decode(
                Self.tag(.int64, order: .cdab), registers: [0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF], start: 10
            ).0 == .number(-2))
        let d = 1234.5678
        for order in WordOrder.allCases {
            let words = RegisterDecoder.encode(d, Self.tag(.float64, order: order))
            #expect(words.count == 4)
            #expect(
                RegisterDecoder.decode(Self.tag(.float64, order: order), registers: words, start: 10).0 == .number(d))
            for type in [ValueType.uint32, .int32, .uint64, .int64] {
                let t = Self.tag(type, order: order)
                #expect(
                    RegisterDecoder.decode(
                        t, registers: RegisterDecoder.encode(-7 + (type == .uint32 || type == .uint64 ? 70_007 : 0), t),
                        start: 10
                    ).0
                        == .number(-7 + (type == .uint32 || type == .uint64 ? 70_007 : 0)))
            }
        }
    }

    @Test func scaleOffsetSpanBitsAndStrings() {
        #expect(
            RegisterDecoder.decode(Self.tag(.uint16, scale: 0.1, offset: -5), registers: [1005], start: 10).0
                == .number(95.5))
        let span = Span(rawLow: 0, rawHigh: 65534, engLow: 0, engHigh: 240)
        #expect(RegisterDecoder.decode(Self.tag(.uint16, span: span), registers: [32767], start: 10).0 == .number(120))
        // 65535 lies outside the raw span: bad quality, not a bogus 240.004.
        #expect(
            RegisterDecoder.decode(Self.tag(.uint16, span: span), registers: [65535], start: 10) == (nil, .bad(.decode))
        )
        #expect(RegisterDecoder.decode(Self.tag(.bit, bit: 3), registers: [0b1000], start: 10).0 == .number(1))
        #expect(RegisterDecoder.decode(Self.tag(.bit, bit: 2), registers: [0b1000], start: 10).0 == .number(0))
        #expect(
            RegisterDecoder.decode(Self.tag(.string, length: 3), registers: [0x5331, 0x2D41, 0x0000], start: 10).0
                == .text("S1-A"))
        #expect(
            RegisterDecoder.decode(Self.tag(.string, order: .badc, length: 2), registers: [0x3153, 0x4120], start: 10).0
                == .text("S1 A"))
    }

    @Test func nonFiniteAndShortDataAreBadNotCrashes() {
        // NaN
        #expect(
            RegisterDecoder.decode(Self.tag(.float32), registers: [0x7FC0, 0x0000], start: 10) == (nil, .bad(.decode)))
        // +Inf
        #expect(
            RegisterDecoder.decode(Self.tag(.float32), registers: [0x7F80, 0x0000], start: 10) == (nil, .bad(.decode)))
        // -Inf
        #expect(
            RegisterDecoder.decode(Self.tag(.float64), registers: [0xFFF0, 0, 0, 0], start: 10) == (nil, .bad(.decode)))
        // short
        #expect(RegisterDecoder.decode(Self.tag(.float32), registers: [0x42C8], start: 10) == (nil, .bad(.decode)))
        // before start
        #expect(
            RegisterDecoder.decode(Self.tag(.uint16, address: 5), registers: [1], start: 10) == (nil, .bad(.decode)))
    }

    @Test func bitTables() {
        let coil = TagDefinition(
            name: "c", table: .coil, address: 3, type: .bool, bit: nil, length: nil, order: nil, scale: 1,
            offset: 0, span: nil, units: nil, deadband: nil, integrity: nil, states: nil)
        #expect(RegisterDecoder.decode(coil, bits: [false, false, true, true], start: 0).0 == .number(1))
        #expect(RegisterDecoder.decode(coil, bits: [true, true, false, true], start: 1).0 == .number(0))
    }
}
