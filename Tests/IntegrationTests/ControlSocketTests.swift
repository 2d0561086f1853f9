import EdgeRuntime
import EdgeTestSupport
import Foundation
import Testing

/// The control socket server on a real Unix socket, with a handler standing in for the daemon's: bad
/// input gets an error reply, never a crash; a slow request or an idle client does not hold up others.
@Suite struct ControlSocketTests {
    /// What edgectl does on the wire, without edgectl: one line out, one line back.
    final class Client {
        let fd: Int32
        init(_ path: String, timeoutSeconds: Int = 5) throws {
            fd = try unixConnect(path, timeoutSeconds: timeoutSeconds)
        }
        deinit { close(fd) }

        func send(_ text: String) {
            let bytes = Array(text.utf8)
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                off += n
            }
        }

        /// The next reply line; nil when the server closed the connection or said nothing in time.
        func readLine() -> String? {
            var line: [UInt8] = []
            var c: UInt8 = 0
            while recv(fd, &c, 1, 0) == 1 {
                if c == 10 { return String(decoding: line, as: UTF8.self) }
                line.append(c)
            }
            return nil
        }

        func request(_ json: String) -> String? { send(json + "\n"); return readLine() }
    }

    /// A handler that answers at once, except `hang`, which waits until the test releases it.
    final class Handler: @unchecked Sendable {
        let lock = NSLock()
        var hanging = 0
        let release = DispatchSemaphore(value: 0)
        var peers: [ControlPeer] = []

        func handle(_ req: ControlRequest, _ peer: ControlPeer) -> Data {
            lock.withLock { peers.append(peer) }
            if req.command == "hang" {
                lock.withLock { hanging += 1 }
                _ = release.wait(timeout: .now() + 30)
                lock.withLock { hanging -= 1 }
            }
            return Data("{\"ok\":true,\"result\":\"\(req.command)\"}".utf8)
        }
        func releaseAll(_ n: Int) { for _ in 0..<n { release.signal() } }
    }

    /// A started server in a scratch directory; stopped when the value goes.
    final class Running {
        let dir = TempDir("edged-ctl")
        let server: ControlServer
        var path: String { server.path }
        init(_ handler: Handler) throws {
            server = ControlServer(path: dir.file("control.sock")) { handler.handle($0, $1) }
            try server.start()
        }
        deinit { server.stop() }
    }

    @Test func aMalformedLineGetsAnErrorAndTheConnectionServesTheNextRequest() throws {
        let handler = Handler()
        let server = try Running(handler)
        let client = try Client(server.path)
        let bad = try #require(client.request("this is not json"))
        #expect(bad.contains("\"ok\":false") && bad.contains("malformed request"), "\(bad)")
        let wrongShape = try #require(client.request("{\"verb\": \"status\"}"))
        #expect(wrongShape.contains("malformed request"), "\(wrongShape)")
        #expect(client.request("{\"command\": \"status\"}") == "{\"ok\":true,\"result\":\"status\"}")
        // The handler learns who asked (SO_PEERCRED), for the log of every change.
        #expect(handler.lock.withLock { handler.peers.map(\.uid) } == [getuid()])
    }

    @Test func anOversizedRequestGetsAnErrorAndOnlyThatConnectionIsClosed() throws {
        let handler = Handler()
        let server = try Running(handler)
        let client = try Client(server.path)
        client.send(String(repeating: "x", count: ControlServer.maxRequestBytes + 8192))
        let reply = try #require(client.readLine())
        #expect(reply.contains("request larger than \(ControlServer.maxRequestBytes) bytes"), "\(reply)")
        #expect(client.readLine() == nil, "the connection stays open after an oversized request")
        #expect(try Client(server.path).request("{\"command\": \"status\"}")?.contains("\"ok\":true") == true)
    }

    @Test func aSlowRequestAndAnIdleClientDoNotHoldUpOthers() async throws {
        let handler = Handler()
        let server = try Running(handler)
        let idle = try Client(server.path)  // connected, says nothing (the server waits 30 s for it)
        let slow = try Client(server.path, timeoutSeconds: 30)
        slow.send("{\"command\": \"hang\"}\n")
        #expect(await eventually(timeout: 10) { handler.lock.withLock { handler.hanging } == 1 })
        // Both of those are still open; another client is answered within its 5 s receive timeout.
        #expect(try Client(server.path).request("{\"command\": \"status\"}") == "{\"ok\":true,\"result\":\"status\"}")
        handler.releaseAll(1)
        #expect(slow.readLine() == "{\"ok\":true,\"result\":\"hang\"}")
        withExtendedLifetime(idle) {}
    }

    @Test func pastTheConnectionCapANewClientIsToldBusyAndLaterServed() async throws {
        let handler = Handler()
        let server = try Running(handler)
        var hung = try (0..<ControlServer.maxConnections).map { _ in try Client(server.path, timeoutSeconds: 30) }
        hung.forEach { $0.send("{\"command\": \"hang\"}\n") }
        #expect(
            await eventually(timeout: 10) { handler.lock.withLock { handler.hanging } == ControlServer.maxConnections })
        let refused = try #require(try Client(server.path).readLine())
        #expect(refused.contains("\"ok\":false") && refused.contains("busy"), "\(refused)")
        handler.releaseAll(ControlServer.maxConnections)
        #expect(hung.allSatisfy { $0.readLine() == "{\"ok\":true,\"result\":\"hang\"}" })
        // Answered, they stay open (a connection may carry more requests); closed, their places are free again.
        let busy = try #require(try Client(server.path).readLine())
        #expect(busy.contains("busy"), "\(busy)")
        hung.removeAll()
        #expect(
            await eventually(timeout: 10) {
                (try? Client(server.path).request("{\"command\": \"status\"}"))??.contains("\"ok\":true") == true
            })
    }

    @Test func stopRemovesTheSocketAndRefusesNewClients() async throws {
        let running = try Running(Handler())
        let server = running.server
        #expect(FileManager.default.fileExists(atPath: server.path))
        server.stop()
        #expect(!FileManager.default.fileExists(atPath: server.path))
        #expect(throws: TestSetupError.self) { _ = try Client(server.path) }
        withExtendedLifetime(running) {}
    }
}
