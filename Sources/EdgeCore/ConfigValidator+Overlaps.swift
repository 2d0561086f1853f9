extension ConfigValidator {
    /// Warns where a tag covers part of another tag's registers in the same table of one template, e.g. a
    /// float32 at 100 (100-101) and a uint16 at 101: one of the two addresses is usually off by one.
    ///
    /// Two tags on exactly the same registers (one float32 under two scalings, a word and one of its bits)
    /// are deliberate and pass; bit tags never warn, as they read one flag of a word whatever else covers it.
    mutating func checkOverlaps(_ t: DeviceTemplate, tagNodes: [YNode]) {
        let words = zip(t.tags, tagNodes).filter { !$0.0.table.isBitTable && $0.0.type != .bit }
        for (j, (later, n)) in words.enumerated() {
            for (earlier, _) in words[..<j]
            where earlier.table == later.table
                && earlier.address <= later.lastAddress && later.address <= earlier.lastAddress
                && (earlier.address != later.address || earlier.lastAddress != later.lastAddress)
            {
                let at = Self.field(n, "address")
                log.warning(
                    at.location, at.path,
                    "tag '\(later.name)' (\(Self.registers(of: later, t.addressing))) partly overlaps tag "
                        + "'\(earlier.name)' (\(Self.registers(of: earlier, t.addressing))) of template '\(t.name)'; check both addresses"
                )
            }
        }
    }

    /// `float32 at 40101-40102` (Modicon) or `float32 at holding 100...101` (wire), as the template writes addresses.
    static func registers(of tag: TagDefinition, _ addressing: AddressConvention) -> String {
        let first =
            addressing == .modicon ? Modicon.format(tag.table, tag.address) : "\(tag.table.rawValue) \(tag.address)"
        guard tag.width > 1 else { return "\(tag.type.rawValue) at \(first)" }
        let last = addressing == .modicon ? "-\(Modicon.format(tag.table, tag.lastAddress))" : "...\(tag.lastAddress)"
        return "\(tag.type.rawValue) at \(first)\(last)"
    }
}
