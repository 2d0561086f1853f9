extension EFMProfile {
    /// The names a configuration may give a built-in profile.
    public static let builtInNames = ["scanner2000", "floboss-dl8000"]

    /// A built-in profile by the name a configuration or an edgesim profile file uses: `scanner2000`
    /// (or `scanner-2000`), `floboss-dl8000` (or `flobossDL8000`, `dl8000`).
    public static func builtIn(named name: String) -> EFMProfile? {
        switch name {
        case "scanner2000", "scanner-2000": .scanner2000
        case "floboss-dl8000", "flobossDL8000", "dl8000": .flobossDL8000
        default: nil
        }
    }

    /// Cameron/Sensia Scanner 2000 microEFM (reference §2.1).
    ///
    /// - confirmed (Scanner 2000 manual, Enron section p.176–177): 700 interval (hourly) log, 701 daily log,
    ///   7000/7001 interval/daily pointers (FP32), 7002 event counter; capacities 2304 (6392 with the expansion
    ///   board) and 768; records are date, time and 16 user-configurable floats; defaults FR1 volume, mass,
    ///   energy, DP/SP/T averages, FR1 run time, turbine 1 volume and run time; 20-byte event records.
    /// - assumed: pointer base 1 (the manual gives the range 1..2304), pointer = last written (stated for the
    ///   Scanner 3100, not the 2000), date before time (the manual's order "date, time"), HHMMSS, ABCD, contract
    ///   hour 0 (no Enron register documented), units of the defaults (the manual says "base units"), the
    ///   names of the 7 slots after the 9 defaults (the reference counts 5 spares: 9 + 5 ≠ 16), and 251 reply
    ///   bytes (libmodbus's limit; the manual states none).
    public static let scanner2000: EFMProfile = {
        let manual = "Scanner 2000 microEFM manual, Enron Modbus section p.176"
        let defaults = "\(manual) (default archive assignment)"
        let units = Provenance.assumed("the manual says archives hold base units; which units is not stated")
        func field(_ name: String, _ u: String, _ kind: FieldKind) -> ArchiveField {
            ArchiveField(name, units: u, kind: kind, .confirmed("\(defaults); units \(units)"))
        }
        var fields = [
            field("fr1_volume", "MCF", .volume),
            field("fr1_mass", "lbm", .volume),
            field("fr1_energy", "MMBTU", .energy),
            field("dp_average", "inH2O", .average),
            field("sp_average", "psia", .average),
            field("temperature_average", "degF", .average),
            field("fr1_run_time", "s", .flowTime),
            field("turbine1_volume", "MCF", .volume),
            field("turbine1_run_time", "s", .flowTime)
        ]
        for slot in 10...16 {
            fields.append(
                ArchiveField(
                    "spare_\(slot)", units: "", kind: .other,
                    .assumed("user-configurable slot \(slot) of 16 with no documented default")))
        }
        let layout = RecordLayout(
            stampOrder: Sourced(
                .dateFirst, .assumed("the manual lists \"date, time\"; simplymodbus's history example")),
            timeFormat: Sourced(.hhmmss, .assumed("Enron history default; the manual gives no digit count")),
            fields: fields)
        let base = Sourced(1, .assumed("the manual gives the pointer range as 1..2304 and 1..768"))
        let meaning = Sourced(
            PointerMeaning.lastWritten, .assumed("stated for the Scanner 3100 (manual p.39), not for the 2000"))
        return EFMProfile(
            name: "scanner2000",
            hourly: ArchiveProfile(
                kind: .hourly, register: Sourced(700, .confirmed("\(manual): 700 interval log")),
                capacity: Sourced(2304, .confirmed("\(manual): 2304 interval records (6392 with expansion board)")),
                pointerRegister: Sourced(7000, .confirmed("\(manual): 7000 interval pointer")),
                pointerBase: base, pointerMeaning: meaning, layout: layout),
            daily: ArchiveProfile(
                kind: .daily, register: Sourced(701, .confirmed("\(manual): 701 daily log")),
                capacity: Sourced(768, .confirmed("\(manual): 768 daily records")),
                pointerRegister: Sourced(7001, .confirmed("\(manual): 7001 daily pointer")),
                pointerBase: base, pointerMeaning: meaning, layout: layout),
            eventLayout: Sourced(
                .standard20, .confirmed("Scanner 2000 manual p.177: status, address, time, date, values")),
            contractHour: Sourced(.fixed(0), .assumed("no Enron register documented; set to the device's setting")),
            wordOrder: Sourced(.abcd, .assumed("Enron default (1758-FLO p.324); the manual does not say")),
            maxReplyBytes: Sourced(251, .assumed("libmodbus's limit for one reply; the manual states none")))
    }()

    /// Emerson FloBoss 103/500, 3095FC and DL8000 with Modbus EFM extensions (reference §2.3).
    ///
    /// - confirmed (DL8000 manual p.99–104 and p.203; FloBoss 103 Modbus conversions): 704 hourly history,
    ///   index 0..839 (840 records); 703 daily history, index 0..34 (35); 7161 hourly and 7160 daily index
    ///   registers; the index is where data is *to be* logged (subtract 1 for the last record); 20-byte events,
    ///   at most 240 bytes per reply.
    /// - assumed: the history points — they are configured in ROCLINK's History Table, so the 7 fields here are
    ///   a typical AGA-3 set to be checked against the device; date before time (the manual says "time stamp
    ///   and date stamp" but gives no byte order); HHMMSS (one page says HHMM); ABCD; contract hour 0; the
    ///   DL8000 "History Index Mode" left at Standard.
    public static let flobossDL8000: EFMProfile = {
        let dl8000 = "DL8000 manual p.99-100 (Modbus history)"
        let configured = Provenance.assumed("history points are configured in ROCLINK's History Table; typical AGA-3")
        let fields = [
            ArchiveField("flow_time", units: "min", kind: .flowTime, configured),
            ArchiveField("dp_average", units: "inH2O", kind: .average, configured),
            ArchiveField("sp_average", units: "psig", kind: .average, configured),
            ArchiveField("temperature_average", units: "degF", kind: .average, configured),
            ArchiveField("integral_value", units: "", kind: .integral, configured),
            ArchiveField("volume", units: "MCF", kind: .volume, configured),
            ArchiveField("energy", units: "MMBTU", kind: .energy, configured)
        ]
        let layout = RecordLayout(
            stampOrder: Sourced(
                .dateFirst, .assumed("FloBoss says \"time stamp and date stamp\" without byte order; Enron order")),
            timeFormat: Sourced(.hhmmss, .assumed("DL8000 table says HHMMSS, one page says HHMM")),
            fields: fields)
        let base = Sourced(0, .confirmed("\(dl8000): index 0..839 hourly, 0..34 daily"))
        let meaning = Sourced(
            PointerMeaning.nextToWrite,
            .confirmed("\(dl8000): the index is where data is to be logged; subtract 1 for the last record"))
        return EFMProfile(
            name: "flobossDL8000",
            hourly: ArchiveProfile(
                kind: .hourly, register: Sourced(704, .confirmed("\(dl8000): 704 hourly history (typical)")),
                capacity: Sourced(840, .confirmed("\(dl8000): 840 hourly records (35 days)")),
                pointerRegister: Sourced(7161, .confirmed("\(dl8000): 7161 current hourly index")),
                pointerBase: base, pointerMeaning: meaning, layout: layout),
            daily: ArchiveProfile(
                kind: .daily, register: Sourced(703, .confirmed("\(dl8000): 703 daily history (typical)")),
                capacity: Sourced(35, .confirmed("\(dl8000): 35 daily records")),
                pointerRegister: Sourced(7160, .confirmed("\(dl8000): 7160 current daily index")),
                pointerBase: base, pointerMeaning: meaning, layout: layout),
            eventLayout: Sourced(.standard20, .confirmed("DL8000 manual p.104, Table B-4")),
            contractHour: Sourced(.fixed(0), .assumed("configured in ROCLINK; no Enron register documented")),
            wordOrder: Sourced(.abcd, .assumed("Enron default (1758-FLO p.324); the DL8000 pages do not say")),
            maxReplyBytes: Sourced(240, .confirmed("DL8000 manual p.203 and FloBoss 103 conversions: 240 bytes")))
    }()
}
