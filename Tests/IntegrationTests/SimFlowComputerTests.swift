import CModbus
import EdgeCore
import EdgeSim
import EdgeSystem
import EdgeTestSupport
import Foundation
import Testing

/// The simulator's Enron flow computers against libmodbus on the client side, as edged talks to them: over
/// loopback TCP and over a pty pair (RTU), with `EnronFrame` checking every reply.
@Suite(.serialized) struct SimFlowComputerTests {
    static let start = DeviceTimestamp(year: 2024, month: 3, day: 1, hour: 0, minute: 0, second: 0)!
    static let unit: UInt8 = 20

    func computer(_ profile: EFMProfile, hours: Int) throws -> SimFlowComputer {
        let fc = try SimFlowComputer(name: "meter-1", unit: Int(Self.unit), profile: profile, start: Self.start)
        fc.advance(hours: hours)
        return fc
    }

    /// Serves `fc` over TCP or RTU and hands a connected client to `body`.
    func withServer(_ fc: SimFlowComputer, rtu: Bool, _ body: (EnronTestClient) throws -> Void) throws {
        let pty = try rtu ? PtyPair() : nil
        let server = SimServer(
            transport: pty.map { SimServer.Transport.rtu(path: $0.b, baud: 19200) } ?? .tcp(host: "127.0.0.1", port: 0),
            devices: [],
            flowComputers: [fc])
        try server.start()
        defer { server.stop() }
        let client =
            try pty.map { try EnronTestClient(rtuPath: $0.a, unit: fc.unit) } ?? EnronTestClient(tcpPort: server.port)
        try body(client)
    }

    func hoursAfterStart(_ t: DeviceTimestamp) -> Int64 { (t.secondsSince2000 - Self.start.secondsSince2000) / 3600 }

    @Test(arguments: [false, true]) func pointersRecordsAndLiveValues(rtu: Bool) throws {
        let p = EFMProfile.scanner2000
        let order = p.wordOrder.value
        let fc = try computer(p, hours: 30)
        try withServer(fc, rtu: rtu) { client throws in
            // Pointers: 4 bytes per register, base 1, last written: 30 hourly records, 1 daily (at midnight).
            #expect(try client.floats(unit: Self.unit, start: 7000, count: 2, order: order) == [30, 1])
            var previous: DeviceTimestamp?
            for index in 1...30 {
                let r = try client.record(unit: Self.unit, p.hourly, index: index, order: order)
                #expect(hoursAfterStart(r.timestamp) == Int64(index), "record \(index) at \(r.timestamp)")
                if let previous { #expect(previous < r.timestamp) }
                previous = r.timestamp
                let want = FlowComputerModel.hourlyValues(p.hourly.layout, endingAt: r.timestamp.secondsSince2000)
                #expect(r.numbers == want.map(Double.init))
                #expect(r.value("fr1_run_time") == 3600)
                #expect((20...45).contains(r.value("fr1_volume")!))
                #expect((40...60).contains(r.value("dp_average")!))
            }
            let day = try client.record(unit: Self.unit, p.daily, index: 1, order: order)
            #expect(day.timestamp == DeviceTimestamp(year: 2024, month: 3, day: 2, hour: 0, minute: 0, second: 0))
            var volume = 0.0
            for index in 1...24 {
                volume += try client.record(unit: Self.unit, p.hourly, index: index, order: order).value("fr1_volume")!
            }
            #expect(abs(day.value("fr1_volume")! - volume) < 1e-3 * volume)
            #expect(day.value("fr1_run_time") == 86_400)
            #expect((45...55).contains(day.value("dp_average")!))

            // Live floats: 4 bytes each; a short: 2 bytes; booleans with FC 01.
            let live = try client.floats(unit: Self.unit, start: 7101, count: 4, order: order)
            #expect(live.map { EnronRegister.Value.float32($0) } == (7101...7104).map { fc.value(of: $0)! })
            #expect((40...60).contains(live[0]))
            let short = try client.exchange(EnronFrame.registerRead(unit: Self.unit, start: 3001, count: 1))
            #expect(try EnronFrame.readPayload(short, transport: client.transport, unit: Self.unit) == [0, 0])
            let bits = try client.exchange(EnronFrame.registerRead(unit: Self.unit, start: 1001, count: 2))
            #expect(try EnronFrame.readPayload(bits, transport: client.transport, unit: Self.unit, function: 1) == [1])

            // Unknown registers and indices outside the ring are refused.
            let unknown = try client.exchange(EnronFrame.registerRead(unit: Self.unit, start: 7500, count: 1))
            #expect(throws: EnronFrameError.exception(function: 3, code: 2)) {
                try EnronFrame.readPayload(unknown, transport: client.transport, unit: Self.unit)
            }
            #expect(throws: EnronFrameError.exception(function: 3, code: 3)) {
                try client.record(unit: Self.unit, p.hourly, index: 0, order: order)
            }
        }
    }

    @Test(arguments: [false, true]) func ringWrapsAfterCapacity(rtu: Bool) throws {
        let p = EFMProfile.flobossDL8000  // base 0, pointer = next to write, 840 hourly, 35 daily
        let order = p.wordOrder.value
        let fc = try computer(p, hours: 850)
        try withServer(fc, rtu: rtu) { client throws in
            #expect(try client.floats(unit: Self.unit, start: 7160, count: 2, order: order) == [0, 10])
            // Index 9 is the newest (hour 850), 10 the oldest left (hour 11), 0 was overwritten at hour 841.
            #expect(
                hoursAfterStart(try client.record(unit: Self.unit, p.hourly, index: 9, order: order).timestamp) == 850)
            #expect(
                hoursAfterStart(try client.record(unit: Self.unit, p.hourly, index: 10, order: order).timestamp) == 11)
            #expect(
                hoursAfterStart(try client.record(unit: Self.unit, p.hourly, index: 0, order: order).timestamp) == 841)
            #expect(
                hoursAfterStart(try client.record(unit: Self.unit, p.daily, index: 34, order: order).timestamp) == 840)
            #expect(throws: EnronFrameError.exception(function: 3, code: 3)) {
                try client.record(unit: Self.unit, p.hourly, index: 840, order: order)
            }
        }
    }

    @Test(arguments: [false, true]) func eventsReadAcknowledgedAndGone(rtu: Bool) throws {
        let p = EFMProfile.flobossDL8000  // at most 240 bytes: 12 events per read
        let order = p.wordOrder.value
        let fc = try computer(p, hours: 0)
        try fc.setParameter(register: 7112, value: 55)
        fc.advance(hours: 24 * 8)  // DP (40–60 over the day) goes above 55 and back once a day
        #expect(fc.pendingEvents == 17)
        try withServer(fc, rtu: rtu) { client throws in
            let first = try client.events(unit: Self.unit, order: order)
            #expect(first.count == 12)
            #expect(first[0].isOperatorEvent && first[0].register == 7112)
            #expect(first[0].asFound == 100 && first[0].asLeft == 55)
            #expect(first[0].timestamp == Self.start)
            let alarms = first.dropFirst()
            #expect(alarms.allSatisfy { !$0.isOperatorEvent && $0.register == 7101 && $0.limits == [.hi] })
            #expect(alarms.map(\.alarmSet) == (0..<11).map { $0 % 2 == 0 })
            #expect(zip(alarms, alarms.dropFirst()).allSatisfy { $0.timestamp < $1.timestamp })
            #expect(alarms.allSatisfy { ($0.asFound > 55) == ($0.alarmSet == true) })

            // An event logged between the read and the acknowledge is not cleared by it, and comes first.
            try fc.setParameter(register: 3001, value: 8)
            try client.acknowledge(unit: Self.unit)
            let second = try client.events(unit: Self.unit, order: order)
            #expect(second.count == 6)
            #expect(second[0].isOperatorEvent && second[0].register == 3001 && second[0].asLeft == 8)
            #expect(second.dropFirst().allSatisfy { !$0.isOperatorEvent })
            try client.acknowledge(unit: Self.unit)
            #expect(try client.events(unit: Self.unit, order: order).isEmpty)
            #expect(fc.pendingEvents == 0)
        }
    }

    @Test(arguments: [false, true]) func faultsReachTheClientAsEdgedSeesThem(rtu: Bool) throws {
        let p = EFMProfile.scanner2000
        let order = p.wordOrder.value
        let fc = try computer(p, hours: 10)
        try withServer(fc, rtu: rtu) { client throws in
            // A record of the wrong size: the byte count agrees with the frame, not with the profile.
            fc.inject(.recordSize(delta: -4))
            #expect(throws: EnronFrameError.recordSizeMismatch(expected: 72, got: 68)) {
                try client.record(unit: Self.unit, p.hourly, index: 3, order: order)
            }
            // A reply shorter than its byte count: libmodbus waits for the rest and times out; no answer likewise.
            for fault in [EnronReplyFault.truncated(missing: 5), .silent] {
                fc.inject(fault)
                do {
                    _ = try client.record(unit: Self.unit, p.hourly, index: 3, order: order)
                    Issue.record("\(fault): the read was answered")
                } catch let failure as EnronTestClient.Failure {
                    #expect(failure.errno == ETIMEDOUT, "\(fault): \(failure)")
                }
                #expect(fc.withModel { $0.pendingFaults.isEmpty })
                // After the flush the next exchange is answered normally.
                #expect(
                    hoursAfterStart(try client.record(unit: Self.unit, p.hourly, index: 3, order: order).timestamp) == 3
                )
            }
            // The pointer jumps ahead without records; then the ring is cleared.
            fc.skipRecords(.hourly, count: 5)
            #expect(try client.floats(unit: Self.unit, start: 7000, count: 1, order: order) == [15])
            fc.clearArchive(.hourly)
            #expect(try client.floats(unit: Self.unit, start: 7000, count: 1, order: order) == [2304])
            #expect(throws: EFMDecodeError.timestamp(date: 0, time: 0)) {
                try client.record(unit: Self.unit, p.hourly, index: 1, order: order)
            }
            // The clock set back: the next record is older than the one before it.
            fc.advance(hours: 1)
            let before = try client.record(unit: Self.unit, p.hourly, index: 1, order: order).timestamp
            fc.setClock(DeviceTimestamp(secondsSince2000: before.secondsSince2000 - 3 * 3600))
            fc.advance(hours: 1)
            #expect(try client.floats(unit: Self.unit, start: 7000, count: 1, order: order) == [2])
            let after = try client.record(unit: Self.unit, p.hourly, index: 2, order: order).timestamp
            #expect(after.secondsSince2000 == before.secondsSince2000 - 2 * 3600)
        }
    }

    /// libmodbus 3.1.6 sends transaction id 0 from `modbus_send_raw_request`, so the echo is checked by hand.
    @Test func tcpReplyEchoesTheTransactionID() throws {
        let fc = try computer(.scanner2000, hours: 2)
        let server = SimServer(transport: .tcp(host: "127.0.0.1", port: 0), devices: [], flowComputers: [fc])
        try server.start()
        defer { server.stop() }
        let fd = try TCPSocket.connect(host: "127.0.0.1", port: server.port, timeoutMillis: 2000)
        defer { close(fd) }
        try TCPSocket.writeAll(fd, [0xBE, 0xEF, 0, 0, 0, 6, Self.unit, 0x03, 0x1B, 0x58, 0x00, 0x01])
        var reply: [UInt8] = []
        while reply.count < 13 {
            let chunk = try TCPSocket.read(fd, max: 64, timeoutMillis: 2000)
            guard !chunk.isEmpty else { break }
            reply += chunk
        }
        #expect(reply == [0xBE, 0xEF, 0, 0, 0, 7, Self.unit, 0x03, 4] + EnronRegister.bytes(of: Float(2)))
    }
}

/// How a flow computer is declared in a profile file and driven through the control socket's `efm` commands.
@Suite struct SimFlowComputerConfigTests {
    @Test func profileFileDeclaresAndControlSocketDrives() throws {
        let json = """
            {"devices": {}, "flowComputers": {"meter-1": {"profile": "floboss-dl8000", "bus": "lan", "unit": 20,
             "historyHours": 48, "contractHour": 8, "clock": "2024-03-03T00:00:00"}}}
            """
        let profile = try JSONDecoder().decode(SimProfile.self, from: Data(json.utf8))
        let fc = try #require(profile.flowComputers?["meter-1"]).make(name: "meter-1")
        #expect(fc.profile == .flobossDL8000 && fc.unit == 20)
        #expect(fc.clock == DeviceTimestamp(year: 2024, month: 3, day: 3, hour: 0, minute: 0, second: 0))
        #expect(fc.pointer(.hourly) == 48 && fc.pointer(.daily) == 2)  // next to write; days closed at 08:00
        #expect(fc.value(of: 3001) == .int16(8))

        let control = SimControl(path: "/nonexistent/unused.sock", devices: [], flowComputers: [fc])
        #expect(control.handle("efm meter-1 advance 3").hasPrefix("ok meter-1 clock 2024-03-03T03:00:00"))
        #expect(control.handle("efm meter-1 skip hourly 5") == "ok meter-1 hourly pointer 56")
        #expect(control.handle("efm meter-1 param 7112 55").hasPrefix("ok"))
        #expect(fc.pendingEvents == 1)
        #expect(control.handle("efm meter-1 param 7999 1").hasPrefix("error"))
        #expect(control.handle("efm meter-1 fault record-size:-4") == "ok meter-1 next reply record-size:-4")
        #expect(fc.withModel { $0.pendingFaults } == [.recordSize(delta: -4)])
        #expect(control.handle("efm meter-1 fault truncated:0").hasPrefix("error"))
        #expect(control.handle("efm meter-2 advance 1").hasPrefix("error: usage"))
        #expect(throws: SimError.self) {
            try SimProfile.FlowComputerSpec(profile: "rocplus", bus: "lan", unit: 1).make(name: "x")
        }
    }
}
