import ArgumentParser
import EdgeCore
import EdgeSystem
import Foundation

/// A child process of the benchmark (posix_spawn), with its CPU time.
final class BenchProcess {
    let pid: pid_t
    private(set) var exited = false
    private(set) var cpuSeconds = 0.0

    init(_ exe: String, _ args: [String], log: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([exe] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var p: pid_t = 0
        guard posix_spawn(&p, exe, &actions, nil, argv, environ) == 0 else {
            throw ValidationError("cannot start \(exe)")
        }
        pid = p
    }

    /// Whether it is still running (reaps it, with its CPU time, when it has ended).
    var running: Bool {
        if exited { return false }
        var status: Int32 = 0
        var usage = rusage()
        if wait4(pid, &status, WNOHANG, &usage) == pid { finish(usage) }
        return !exited
    }

    /// SIGTERM and wait.
    func stop() {
        guard running else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        var usage = rusage()
        if wait4(pid, &status, 0, &usage) == pid { finish(usage) }
    }

    private func finish(_ u: rusage) {
        exited = true
        cpuSeconds =
            Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }

    /// CPU seconds so far of a running process (`/proc/<pid>/stat` utime + stime).
    static func cpu(_ pid: pid_t) -> Double { ProcessStats.cpuSeconds(pid: pid) ?? 0 }

    /// Runs a command to completion; its output, or an error with it.
    static func output(_ exe: String, _ args: [String]) throws -> String {
        let log = NSTemporaryDirectory() + "/edgebench-\(getpid())-\(UUID().uuidString.prefix(6)).out"
        defer { unlink(log) }
        let p = try BenchProcess(exe, args, log: log)
        var status: Int32 = 0
        waitpid(p.pid, &status, 0)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard status == 0 else { throw ValidationError("\(exe) \(args.first ?? ""): \(text)") }
        return text
    }
}

/// The reference receiver as a child process on free loopback ports, with a fresh store.
final class BenchReceiver {
    let process: BenchProcess
    let port: Int
    let adminPort: Int
    let logPath: String
    var endpoint: String { "https://127.0.0.1:\(port)/api/v1/edge/batches" }

    init(work: String, name: String) throws {
        let log = "\(work)/receiver-\(name).log"
        logPath = log
        process = try BenchProcess(
            "/usr/bin/python3",
            [
                "tools/receiver/receiver.py", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--cert",
                work + "/pki/server.pem",
                "--key", work + "/pki/server.key", "--tokens", work + "/tokens.txt", "--store",
                "\(work)/receiver-\(name).db"
            ], log: log)
        let deadline = Date().addingTimeInterval(20)
        var found: (Int, Int)?
        while found == nil && Date() < deadline && process.running {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains("listening on https://") }) {
                func port(_ marker: String) -> Int? {
                    line.range(of: marker).flatMap { Int(line[$0.upperBound...].prefix { $0.isNumber }) }
                }
                if let p = port("https://127.0.0.1:"), let a = port("admin http://127.0.0.1:") { found = (p, a) }
            }
            if found == nil { usleep(20_000) }
        }
        guard let (p, a) = found else {
            throw ValidationError(
                "receiver did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        port = p; adminPort = a
    }

    func stop() { process.stop() }

    struct Run {
        var seconds: Double, firstBatch: Double
        var batches: Int, bodyBytes: Int, wireBytes: Int
        var clientCPU: Double, receiverCPU: Double
    }

    /// Starts the client, waits until every one of `expect` readings is stored (seqs 1…expect of `epoch`, each
    /// once), stops the client, and returns the time and the receiver's byte counts.
    ///
    /// Progress comes from the receiver's access log (one line per answer, `stored=N`), not from `/stats`,
    /// whose store summary scans the whole database under the store's lock and would slow the ingest.
    func measure(expect: Int, epoch: String, client start: () throws -> BenchProcess) throws -> Run {
        let log = FileHandle(forReadingAtPath: logPath)
        defer { try? log?.close() }
        _ = try log?.readToEnd()
        let cpu0 = BenchProcess.cpu(process.pid)
        let t0 = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        let client = try start()
        var first: Double?
        var stored = 0, pending = ""
        while stored < expect {
            if let data = try log?.readToEnd(), !data.isEmpty {
                pending += String(decoding: data, as: UTF8.self)
                var lines = pending.split(separator: "\n", omittingEmptySubsequences: false)
                pending = String(lines.removeLast())
                for line in lines {
                    guard let r = line.range(of: " stored="), line.contains(" 200 ") else { continue }
                    stored += Int(line[r.upperBound...].prefix { $0.isNumber }) ?? 0
                    if first == nil { first = elapsed() }
                }
                continue
            }
            if !client.running && stored < expect {  // curl's answers come after the receiver's commits and log lines
                usleep(200_000)
                if let data = try log?.readToEnd(), !data.isEmpty {
                    pending += String(decoding: data, as: UTF8.self); continue
                }
                throw ValidationError("the client ended with \(stored) of \(expect) readings stored; see \(logPath)")
            }
            guard elapsed() < 900 else { throw ValidationError("\(stored) of \(expect) readings stored after 900 s") }
            usleep(10_000)
        }
        let seconds = elapsed()
        let receiverCPU = BenchProcess.cpu(process.pid) - cpu0
        client.stop()
        let stats = try admin("/stats")
        let seqs = try admin("/seqs?gateway=pecos-17-gw1&epoch=\(epoch)")
        let ranges = seqs["ranges"] as? [[NSNumber]] ?? []
        guard ranges.count == 1, ranges[0].map(\.intValue) == [1, expect],
            (stats["duplicates"] as? NSNumber)?.intValue == 0
        else {
            throw ValidationError(
                "receiver holds \(seqs["count"] ?? "?") seqs in \(ranges.count) ranges, \(stats["duplicates"] ?? "?") duplicates"
            )
        }
        let body = (stats["bodyBytes"] as? NSNumber)?.intValue ?? 0
        return Run(
            seconds: seconds, firstBatch: first ?? seconds, batches: (stats["batches"] as? NSNumber)?.intValue ?? 0,
            bodyBytes: body, wireBytes: body + ((stats["headerBytes"] as? NSNumber)?.intValue ?? 0),
            clientCPU: client.cpuSeconds, receiverCPU: receiverCPU)
    }

    /// GET on the admin endpoint (plain HTTP/1.0 on loopback).
    func admin(_ path: String) throws -> [String: Any] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(adminPort).bigEndian
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard ok else { throw ValidationError("admin port \(adminPort): connect failed") }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var response: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65_536)
        while case let n = recv(fd, &buf, buf.count, 0), n > 0 { response += buf[..<n] }
        let text = String(decoding: response, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n"),
            let obj = try? JSONSerialization.jsonObject(with: Data(text[split.upperBound...].utf8)) as? [String: Any]
        else {
            throw ValidationError("admin \(path): \(text.prefix(200))")
        }
        return obj
    }
}
