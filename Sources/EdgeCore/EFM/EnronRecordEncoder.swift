/// The bytes a flow computer sends for its records: the inverse of `ArchiveRecord` and `EventRecord` decoding,
/// shared by the in-memory test fake and the simulator so both write records exactly as the decoders read them.
public enum EnronRecordEncoder {
    /// One archive record per `layout`: the two timestamp floats in the layout's order and time format, then one
    /// float per field. `values` must hold one value per field of the layout.
    public static func archiveRecord(
        _ layout: RecordLayout, at timestamp: DeviceTimestamp, values: [Float], order: WordOrder
    ) -> [UInt8] {
        precondition(values.count == layout.fields.count, "\(values.count) values for \(layout.fields.count) fields")
        let date = EnronRegister.bytes(of: timestamp.dateFloat, order: order)
        let time = EnronRegister.bytes(of: timestamp.timeFloat(layout.timeFormat.value), order: order)
        let stamp = layout.stampOrder.value == .dateFirst ? date + time : time + date
        return stamp + values.flatMap { EnronRegister.bytes(of: $0, order: order) }
    }

    /// One standard 20-byte event record: bitmap, register, time HHMMSS, date MMDDYY, as-found, as-left.
    public static func eventRecord(
        bitmap: UInt16, register: UInt16, at timestamp: DeviceTimestamp, asFound: Float, asLeft: Float,
        order: WordOrder
    ) -> [UInt8] {
        [UInt8(bitmap >> 8), UInt8(bitmap & 0xFF), UInt8(register >> 8), UInt8(register & 0xFF)]
            + EnronRegister.bytes(of: timestamp.timeFloat(.hhmmss), order: order)
            + EnronRegister.bytes(of: timestamp.dateFloat, order: order)
            + EnronRegister.bytes(of: asFound, order: order) + EnronRegister.bytes(of: asLeft, order: order)
    }
}

extension ArchiveProfile {
    /// The ring index that record `n` (counting every record ever written from 0) is stored at.
    public func index(ofRecord n: Int) -> Int { pointerBase.value + n % capacity.value }

    /// What the pointer register holds once `written` records have been stored, per the profile's base and
    /// meaning. Before the first record a last-written pointer names the ring's last slot.
    public func pointer(afterWriting written: Int) -> Int {
        let c = capacity.value
        switch pointerMeaning.value {
        case .lastWritten: return pointerBase.value + ((written - 1) % c + c) % c
        case .nextToWrite: return pointerBase.value + written % c
        }
    }
}
