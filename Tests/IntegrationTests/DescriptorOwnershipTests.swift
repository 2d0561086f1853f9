import EdgeCore
import EdgeSim
import EdgeTestSupport
import Foundation
import Testing

/// Tests share one process: a descriptor closed twice can close another test's file (a CI run lost two
/// uplink tests to SQLite writes failing with EBADF that way). These check the simulator closes only what
/// it owns.
@Suite struct DescriptorOwnershipTests {
    /// A Modbus TCP client on a plain socket, so the test knows exactly when the server has closed its side.
    struct RawClient {
        let fd: Int32
        init(port: Int) throws { fd = try loopbackConnect(port: port, timeoutSeconds: 5) }
        /// Sends one read-holding-registers request and returns the reply's bytes.
        func readOneRegister(unit: UInt8) -> [UInt8] {
            let request: [UInt8] = [0, 1, 0, 0, 0, 6, unit, 3, 0, 0, 0, 1]
            _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            var reply = [UInt8](repeating: 0, count: 260)
            let n = recv(fd, &reply, reply.count, 0)
            return n > 0 ? Array(reply[..<n]) : []
        }
        /// Says it is done sending, then waits until the server has closed its end (end of file).
        func finishAndAwaitServerClose() -> Bool {
            shutdown(fd, Int32(SHUT_WR))
            var byte: UInt8 = 0
            while true {
                let n = recv(fd, &byte, 1, 0)
                if n == 0 { return true }
                if n < 0 && errno != EINTR { return false }
            }
        }
    }

    @Test func aStoppedSimulatorDoesNotCloseTheDescriptorOfAClientThatAlreadyLeft() throws {
        let tags = [
            TagDefinition(
                name: "p", table: .holding, address: 0, type: .uint16, bit: nil, length: nil, order: nil, scale: 1,
                offset: 0, span: nil, units: nil, deadband: nil, integrity: nil, states: nil)
        ]
        let server = SimServer(
            transport: .tcp(host: "127.0.0.1", port: 0),
            devices: [SimDevice(name: "d", unit: 1, tags: tags, signals: ["p": .constant(7)])])
        try server.start()
        var stopped = false
        defer { if !stopped { server.stop() } }

        let client = try RawClient(port: server.port)
        defer { close(client.fd) }
        let reply = client.readOneRegister(unit: 1)
        #expect(reply.count == 11 && reply[7] == 3 && reply[9...10] == [0, 7], "reply \(reply)")
        // The server has now answered on its socket for this client, then closed it when the client left.
        #expect(client.finishAndAwaitServerClose(), "the server never closed the connection")

        // Files opened now take the lowest free numbers, the one the server just closed among them.
        let mine = (0..<32).map { _ in open("/dev/null", O_RDONLY | O_CLOEXEC) }
        #expect(mine.allSatisfy { $0 >= 0 })
        var closedUnderUs: Set<Int32> = []
        // Ours to close are those still ours; a number closed under us may belong to someone else by now.
        defer { for fd in mine where fd >= 0 && !closedUnderUs.contains(fd) { close(fd) } }

        server.stop()
        stopped = true
        closedUnderUs = Set(mine.filter { fcntl($0, F_GETFD) == -1 })
        #expect(
            closedUnderUs.isEmpty, "stopping the simulator closed descriptors it did not own: \(closedUnderUs.sorted())"
        )
        server.stop()  // a second stop closes nothing either
        closedUnderUs.formUnion(mine.filter { fcntl($0, F_GETFD) == -1 })
        #expect(closedUnderUs.isEmpty, "a second stop closed \(closedUnderUs.sorted())")
    }
}
