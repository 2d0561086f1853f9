import EdgeControl
import EdgeCore
import EdgeRuntime
import Foundation

/// Fuzz targets for every parser of untrusted bytes (`make fuzz`, issue 15). Two modes, one binary:
/// - built normally: `edgefuzz TARGET FILE…` replays inputs (the seed corpus in `make test`, a crash to debug);
/// - built with `-sanitize=fuzzer` (scripts/fuzz.sh): `edgefuzz TARGET [libFuzzer options] [CORPUS…]` runs
///   libFuzzer's driver on TARGET.
/// A target passes when it returns for every input; a trap (a bounds check, an overflow, a force unwrap) or a
/// hang is the finding.
enum FuzzTargets {
    static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "config": config, "enron": enron, "rtu": rtu, "condition": condition, "units": units,
        "retry-after": retryAfter, "control": control
    ]

    static func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    /// A configuration file as a field tech might leave it: parse, validate, and a template include that
    /// names the same bytes.
    static func config(_ b: [UInt8]) {
        let t = text(b)
        _ = ConfigLoader(files: FuzzFiles(files: ["/f/templates/t.yaml": t])).load(text: t, path: "/f/edged.yaml")
    }

    /// Replies from a flow computer: every confirmation parser, over both framings, and the record decoders.
    static func enron(_ b: [UInt8]) {
        guard let first = b.first else { return }
        let unit = first
        for transport in [EnronFrame.Transport.tcp, .rtu] {
            _ = try? EnronFrame.readPayload(b, transport: transport, unit: unit)
            _ = try? EnronFrame.readPayload(b, transport: transport, unit: unit, function: 1)
            for p in [EFMProfile.scanner2000, .flobossDL8000] {
                _ = try? EnronFrame.archiveRecord(
                    b, transport: transport, unit: unit, recordSize: p.hourly.layout.recordSize)
            }
            _ = try? EnronFrame.eventRecords(b, transport: transport, unit: unit, recordSize: 20)
            _ = try? EnronFrame.acknowledgement(b, transport: transport, unit: unit)
        }
        let body = Array(b.dropFirst())
        for p in [EFMProfile.scanner2000, .flobossDL8000] {
            for a in [p.hourly, p.daily] {
                for order in WordOrder.allCases {
                    _ = try? ArchiveRecord(raw: body, archive: a, index: Int(first), order: order)
                }
            }
            _ = try? EventRecord.decodeAll(body, order: p.wordOrder.value)
        }
        for start in [1001, 3001, 5001, 7001, 6000, 0, 65535] {
            for count in [0, 1, body.count / 4, body.count / 2, body.count * 8] {
                _ = try? EnronRegister.decode(body, start: start, count: count)
            }
        }
    }

    /// RTU frames as they come off the line.
    static func rtu(_ b: [UInt8]) {
        _ = RTUFraming.checks(b)
        _ = RTUFraming.expectedLength(b)
        guard let unit = b.first, b.count > 1 else { return }
        if case .data(let data)? = try? RTUFraming.parseResponse(b, unit: unit, function: b[1] & 0x7F) {
            _ = RTUFraming.registers(data)
            _ = RTUFraming.bits(data, count: data.count * 8)
        }
    }

    static func condition(_ b: [UInt8]) { _ = try? ConditionExpression(parsing: text(b)) }

    static func units(_ b: [UInt8]) {
        _ = TimeSpan(parsing: text(b))
        _ = ByteCount(parsing: text(b))
    }

    /// A server's answer: status from the first two bytes, Retry-After and body from the rest.
    static func retryAfter(_ b: [UInt8]) {
        guard b.count >= 2 else { return }
        let status = 100 + Int(b[0]) * 256 % 500 + Int(b[1]) % 100
        let rest = text(Array(b.dropFirst(2)))
        _ = UplinkOutcome.classify(status: status, retryAfter: rest, body: rest, nowWallMillis: 1_717_423_200_000)
    }

    /// Control replies as edgectl decodes them.
    static func control(_ b: [UInt8]) {
        let d = Data(b)
        _ = try? ControlEnvelope.decode(d, as: StatusReply.self)
        _ = try? ControlEnvelope.decode(d, as: EFMReply.self)
        _ = try? ControlEnvelope.decode(d, as: UplinkReply.self)
        _ = try? JSONDecoder().decode(ControlRequest.self, from: d)
    }
}

/// Template includes served from memory.
struct FuzzFiles: ConfigFileAccess {
    var files: [String: String]
    func readText(_ path: String) throws(ConfigFileError) -> String {
        guard let t = files[path] else { throw ConfigFileError(path: path, reason: "no such file") }
        return t
    }
    func permissions(_ path: String) -> UInt32? { files[path] == nil ? nil : 0o600 }
}

/// The target libFuzzer's driver calls (`LLVMFuzzerTestOneInput`).
nonisolated(unsafe) var selected: @Sendable ([UInt8]) -> Void = { _ in }

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selected(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

typealias FuzzDriver =
    @convention(c) (
        UnsafeMutablePointer<CInt>, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

@main
enum EdgeFuzz {
    static func main() {
        let args = CommandLine.arguments
        guard args.count >= 2, let target = FuzzTargets.all[args[1]] else {
            FileHandle.standardError.write(
                Data(
                    "usage: edgefuzz TARGET [FILE…] (targets: \(FuzzTargets.all.keys.sorted().joined(separator: ", ")))\n"
                        .utf8))
            exit(2)
        }
        selected = target
        // libFuzzer is linked into the `make fuzz` build only (and its driver exported for this lookup).
        guard let sym = dlsym(nil, "LLVMFuzzerRunDriver") else {
            var n = 0
            for path in args.dropFirst(2) {
                var isDir: ObjCBool = false
                FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
                let files =
                    isDir.boolValue
                    ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map {
                        path + "/" + $0
                    }
                    : [path]
                for f in files {
                    guard let d = FileManager.default.contents(atPath: f) else { continue }
                    target([UInt8](d))
                    n += 1
                }
            }
            print("edgefuzz \(args[1]): \(n) inputs replayed, none failed")
            return
        }
        // The driver sees the program name and the libFuzzer options, not the target name.
        var argv: [UnsafeMutablePointer<CChar>?] = ([args[0]] + args.dropFirst(2)).map { strdup($0) } + [nil]
        var argc = CInt(argv.count - 1)
        let status = argv.withUnsafeMutableBufferPointer { buffer -> CInt in
            var base = buffer.baseAddress!
            return unsafeBitCast(sym, to: FuzzDriver.self)(&argc, &base, testOneInput)
        }
        exit(status)
    }
}
