import ArgumentParser
import EdgeControl
import EdgeCore
import EdgeRuntime
import EdgeSystem
import Foundation
import Uplink

struct UplinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uplink", abstract: "Uplink state, and a connection test a field tech can act on.",
        subcommands: [Show.self, Test.self, AckRejected.self], defaultSubcommand: Show.self)

    /// The operator has looked at the batches the server rejected (`edgectl buffer` counts them): the
    /// `uplink-rejected-batch` alarm clears, here and at the server.
    struct AckRejected: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ack-rejected",
            abstract: "Acknowledge the batches the server rejected (clears the uplink-rejected-batch alarm).")
        @OptionGroup var socket: SocketOption
        func run() throws {
            let r = try socket.call(.uplinkAckRejected, as: DoneReply.self)
            if !socket.json { print(r.done) }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "State, last success, last error, bytes on the wire this month against the budget.")
        @OptionGroup var socket: SocketOption
        func run() throws {
            let u = try socket.call(.uplink, as: UplinkReply.self)
            if socket.json { return }
            print("endpoint     \(u.endpoint)")
            print("state        \(u.state)" + (u.nextAttemptMillis.map { " (next attempt \(Fmt.ahead($0)))" } ?? ""))
            print("last success \(Fmt.ago(u.lastSuccessMillis))")
            if let e = u.lastError { print("last error   \(e)") }
            print("sent         \(u.batchesSent) batches, \(u.recordsAcknowledged) records acknowledged")
            if u.attempts > 0 {
                let rate = String(format: "%.1f", 100 * Double(u.attemptsStored) / Double(u.attempts))
                print(
                    "attempts     \(u.attempts), \(rate) % stored"
                        + (u.lastRoundTripMillis.map { "; last round trip \($0) ms" } ?? ""))
            }
            print("on the wire  \(Fmt.bytes(u.bytesSent)) sent, \(Fmt.bytes(u.bytesReceived)) received since start")
            if let budget = u.monthlyBudget {
                let used = Double(u.monthBytes) / Double(max(1, budget))
                print(
                    "this month   \(Fmt.bytes(u.monthBytes)) of \(Fmt.bytes(budget)) in \(u.month) ("
                        + String(format: "%.0f%%", used * 100) + ")"
                        + (u.dataBudgetMode == "saving" ? " — saving data: alarms and hourly snapshots only" : ""))
                if u.readingsDroppedForBudget > 0 {
                    print(
                        "             \(u.readingsDroppedForBudget) readings not sent (data-budget gap records) since start"
                    )
                }
            } else {
                print("this month   \(Fmt.bytes(u.monthBytes)) in \(u.month) (no monthly budget)")
            }
            if u.deadLetterBatches > 0 {
                print(
                    "dead letters \(u.deadLetterBatches) batches rejected by the server (`edgectl uplink ack-rejected` once looked at)"
                )
            }
        }
    }

    /// Resolves, connects, verifies TLS, authenticates and sends a probe; says what is wrong in words.
    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test", abstract: "Probe the sync endpoint: DNS, TLS, pin, token.")
        @Option(help: "Configuration file.") var config: String = ConfigLoader.defaultPath
        @Flag(help: "JSON output.") var json = false

        struct Result: Encodable {
            var ok: Bool; var endpoint: String; var status: Int?; var milliseconds: Double?; var diagnosis: String
        }

        func run() throws {
            let c = try loadConfigOrExit(config, quietWarnings: true).config
            let client = SyncClient(
                uplink: c.uplink,
                encoder: BatchEncoder(
                    sender: BatchSender(
                        gateway: c.gateway.id, tenant: c.gateway.tenant,
                        site: c.gateway.site, software: EdgeCoreVersion.string), formats: [:]))
            let token: String
            do { token = try TokenLoader.load(c.uplink.token) } catch {
                report(Result(ok: false, endpoint: c.uplink.endpoint, diagnosis: "token: \(error)"))
                throw ExitCode(1)
            }
            let req = client.probeRequest(
                token: token, epoch: "probe-" + c.gateway.id.filter { $0.isLetter || $0.isNumber },
                sentAt: Int64(Date().timeIntervalSince1970 * 1000), clockSynchronized: ClockStatus.isSynchronized())
            switch client.http.sendBlocking(req) {
            case .failure(let e):
                let hint: String =
                    switch e.kind {
                    case .dns: " — check the endpoint's host name and the box's DNS (resolv.conf, cellular APN)"
                    case .connect: " — no route or the port is closed: check the link, firewall, proxy"
                    case .tlsVerify:
                        " — the server's certificate is not trusted: check uplink.tls.caFile and the box's clock"
                    case .pinMismatch:
                        " — the server's key changed or this is not the WellPulse endpoint: check uplink.tls.pinnedPublicKey"
                    case .timeout: " — the server did not answer in time: the link may be too slow or blocked"
                    default: ""
                    }
                report(Result(ok: false, endpoint: c.uplink.endpoint, diagnosis: e.description + hint))
                throw ExitCode(1)
            case .success(let r):
                let ms = r.seconds * 1000
                switch r.status {
                case 200...299:
                    report(
                        Result(
                            ok: true, endpoint: c.uplink.endpoint, status: r.status, milliseconds: ms,
                            diagnosis: String(
                                format: "OK: TLS verified, token accepted (HTTP %d in %.0f ms)", r.status, ms)))
                case 401, 403:
                    report(
                        Result(
                            ok: false, endpoint: c.uplink.endpoint, status: r.status, milliseconds: ms,
                            diagnosis:
                                "HTTP \(r.status): the server refused the token — install the gateway's current token"))
                    throw ExitCode(1)
                default:
                    let body = String(decoding: r.body.prefix(300), as: UTF8.self)
                    report(
                        Result(
                            ok: false, endpoint: c.uplink.endpoint, status: r.status, milliseconds: ms,
                            diagnosis: "HTTP \(r.status): \(body.isEmpty ? "unexpected answer" : body)"))
                    throw ExitCode(1)
                }
            }
        }

        func report(_ r: Result) {
            if json { print(ProbeCommand.json(r)) } else { print("\(r.endpoint): \(r.diagnosis)") }
        }
    }
}
