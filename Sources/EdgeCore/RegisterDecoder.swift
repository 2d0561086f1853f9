/// Turns raw registers or bits into engineering values, per a tag's type, order and scaling.
///
/// Never traps on device data: a value that cannot be represented (NaN, infinity, a raw value outside
/// the tag's span) decodes to `.bad(.decode)`.
public enum RegisterDecoder {
    /// Decodes a register-table tag from the registers of the request that read it.
    /// - Parameters:
    ///   - registers: the request's registers; `start` is the wire address of `registers[0]`.
    public static func decode(_ tag: TagDefinition, registers: [UInt16], start: Int) -> (TagValue?, Quality) {
        Step(tag).decode(registers, start: start)
    }

    /// Everything needed to decode one tag, without references: the poller keeps one per tag so the hot
    /// loop copies no strings or arrays.
    public struct Step: Sendable {
        let type: ValueType
        let address: Int
        let width: Int
        let bit: Int
        let order: WordOrder?
        let scale: Double
        let offset: Double
        let span: Span?
        /// 16-bit words per register address: 2 for Enron 32-bit registers (their 4 bytes arrive as 2 words).
        let stride: Int

        public init(_ tag: TagDefinition) {
            type = tag.type; address = tag.address; bit = tag.bit ?? 0; order = tag.order
            scale = tag.scale; offset = tag.offset; span = tag.span
            stride = tag.isEnronWide ? 2 : 1
            width = tag.isEnronWide ? tag.type.registerCount(stringLength: 0) : tag.width
        }

        /// Decodes from the registers of the request that read the tag (`start` is registers[0]'s address).
        public func decode(_ registers: [UInt16], start: Int) -> (TagValue?, Quality) {
            let from = (address - start) * stride
            guard from >= 0, from + width <= registers.count else { return (nil, .bad(.decode)) }
            switch type {
            case .bool:
                return (.number(registers[from] != 0 ? 1 : 0), .good)
            case .bit:
                return (.number(Double((registers[from] >> UInt16(bit)) & 1)), .good)
            case .string:
                return (
                    .text(RegisterDecoder.string(Array(registers[from..<(from + width)]), swapped: order == .badc)),
                    .good
                )
            case .uint16:
                return scaled(Double(registers[from]))
            case .int16:
                return scaled(Double(Int16(bitPattern: registers[from])))
            case .uint32:
                return scaled(Double(UInt32(truncatingIfNeeded: RegisterDecoder.bits(registers, from, 2, order))))
            case .int32:
                return scaled(
                    Double(
                        Int32(bitPattern: UInt32(truncatingIfNeeded: RegisterDecoder.bits(registers, from, 2, order)))))
            case .float32:
                return scaled(
                    Double(
                        Float(bitPattern: UInt32(truncatingIfNeeded: RegisterDecoder.bits(registers, from, 2, order)))))
            case .uint64:
                return scaled(Double(RegisterDecoder.bits(registers, from, 4, order)))
            case .int64:
                return scaled(Double(Int64(bitPattern: RegisterDecoder.bits(registers, from, 4, order))))
            case .float64:
                return scaled(Double(bitPattern: RegisterDecoder.bits(registers, from, 4, order)))
            }
        }

        /// Applies span or scale/offset; rejects values that are not finite or lie outside the raw span.
        @inline(__always)
        func scaled(_ raw: Double) -> (TagValue?, Quality) {
            guard raw.isFinite else { return (nil, .bad(.decode)) }
            let value: Double
            if let s = span {
                guard raw >= min(s.rawLow, s.rawHigh), raw <= max(s.rawLow, s.rawHigh) else {
                    return (nil, .bad(.decode))
                }
                value = s.engLow + (raw - s.rawLow) * (s.engHigh - s.engLow) / (s.rawHigh - s.rawLow)
            } else {
                value = raw * scale + offset
            }
            guard value.isFinite else { return (nil, .bad(.decode)) }
            return (.number(value), .good)
        }
    }

    /// Assembles `count` registers starting at `from` into one big-endian bit pattern (no allocation).
    @inline(__always)
    static func bits(_ regs: [UInt16], _ from: Int, _ count: Int, _ order: WordOrder?) -> UInt64 {
        let o = order ?? .abcd
        let reversed = o == .cdab || o == .dcba
        let swapped = o == .badc || o == .dcba
        var out: UInt64 = 0
        for k in 0..<count {
            var w = regs[from + (reversed ? count - 1 - k : k)]
            if swapped { w = w.byteSwapped }
            out = (out << 16) | UInt64(w)
        }
        return out
    }

    /// Decodes a coil or discrete-input tag from the bits of the request that read it.
    public static func decode(_ tag: TagDefinition, bits: [Bool], start: Int) -> (TagValue?, Quality) {
        let i = tag.address - start
        guard i >= 0, i < bits.count else { return (nil, .bad(.decode)) }
        return (.number(bits[i] ? 1 : 0), .good)
    }

    /// Assembles 2 or 4 registers into one big-endian bit pattern according to the order.
    /// ABCD: as sent. CDAB: words reversed. BADC: bytes swapped in each word. DCBA: both.
    public static func bits(_ words: [UInt16], _ order: WordOrder?) -> UInt64 {
        bits(words, 0, words.count, order)
    }

    /// The registers that carry `pattern` in the given order: the inverse of `bits`.
    public static func words(_ pattern: UInt64, count: Int, _ order: WordOrder?) -> [UInt16] {
        let o = order ?? .abcd
        var ws = (0..<count).map { UInt16(truncatingIfNeeded: pattern >> (16 * UInt64(count - 1 - $0))) }
        if o == .badc || o == .dcba { ws = ws.map { $0.byteSwapped } }
        if o == .cdab || o == .dcba { ws.reverse() }
        return ws
    }

    static func string(_ words: [UInt16], swapped: Bool) -> String {
        var bytes: [UInt8] = []
        for w in words {
            let hi = UInt8(w >> 8), lo = UInt8(w & 0xFF)
            bytes += swapped ? [lo, hi] : [hi, lo]
        }
        let trimmed = bytes.prefix { $0 != 0 }
        return String(decoding: trimmed, as: UTF8.self).trimmingTrailingSpaces()
    }

    /// Applies span or scale/offset; rejects values that are not finite or lie outside the raw span.
    public static func engineering(_ raw: Double, _ tag: TagDefinition) -> (TagValue?, Quality) {
        Step(tag).scaled(raw)
    }

    /// The raw register value that decodes to `value` (for the simulator and tests): inverse scaling.
    public static func raw(for value: Double, _ tag: TagDefinition) -> Double {
        if let s = tag.span {
            return s.rawLow + (value - s.engLow) * (s.rawHigh - s.rawLow) / (s.engHigh - s.engLow)
        }
        return (value - tag.offset) / tag.scale
    }

    /// Registers that carry `value` for `tag` (numeric types): the inverse of `decode`.
    public static func encode(_ value: Double, _ tag: TagDefinition) -> [UInt16] {
        let rawValue = raw(for: value, tag)
        func clamp<T: FixedWidthInteger>(_: T.Type) -> T {
            let r = rawValue.rounded()
            return r >= Double(T.max) ? T.max : r <= Double(T.min) ? T.min : T(r)
        }
        let n = tag.type.registerCount(stringLength: tag.length ?? 0)
        switch tag.type {
        case .bool, .bit: return [value != 0 ? (tag.type == .bit ? UInt16(1) << UInt16(tag.bit ?? 0) : 1) : 0]
        case .uint16: return [clamp(UInt16.self)]
        case .int16: return [UInt16(bitPattern: clamp(Int16.self))]
        case .uint32: return words(UInt64(clamp(UInt32.self)), count: n, tag.order)
        case .int32: return words(UInt64(UInt32(bitPattern: clamp(Int32.self))), count: n, tag.order)
        case .uint64: return words(clamp(UInt64.self), count: n, tag.order)
        case .int64: return words(UInt64(bitPattern: clamp(Int64.self)), count: n, tag.order)
        case .float32: return words(UInt64(Float(rawValue).bitPattern), count: n, tag.order)
        case .float64: return words(rawValue.bitPattern, count: n, tag.order)
        case .string: return [UInt16](repeating: 0, count: n)
        }
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
