import EdgeCore
import EdgeSystem
import Foundation

/// Enron replies, which `modbus_reply` cannot build (4 bytes per 32-bit register, one record for an archive
/// read, event reads, the acknowledge): the server frames `SimFlowComputer.reply(to:)` itself and writes it.
extension SimServer {
    /// Answers an RTU request frame (unit, PDU, CRC already checked): unit + reply PDU + CRC, low byte first.
    func answerEnronRTU(_ computer: SimFlowComputer, frame: [UInt8], fd: Int32) {
        guard let pdu = computer.reply(to: Array(frame[1..<(frame.count - 2)])) else { return }
        writeReply(RTUFraming.sealed([UInt8(computer.unit)] + pdu), to: fd, computer: computer) { bytes in
            var off = 0
            while off < bytes.count {
                let n = try Syscall.run("write") {
                    bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, bytes.count - off) }
                }
                guard n > 0 else { throw SystemError("write", errno: EIO, detail: "wrote nothing") }
                off += n
            }
        }
    }

    /// Answers a TCP request (as `modbus_receive` returns it, MBAP header included): the request's transaction
    /// id, protocol 0, the length of unit + PDU, the unit, then the reply PDU.
    func answerEnronTCP(_ computer: SimFlowComputer, request: [UInt8], fd: Int32) {
        guard request.count >= 12, let pdu = computer.reply(to: Array(request[7..<12])) else { return }
        let length = pdu.count + 1
        let frame = [request[0], request[1], 0, 0, UInt8(length >> 8), UInt8(length & 0xFF), request[6]] + pdu
        writeReply(frame, to: fd, computer: computer) { try UnixSocket.writeAll(fd, $0) }
    }

    /// Writes a reply; a failed write (the client went away, the pty closed) is reported and the server goes on.
    private func writeReply(
        _ bytes: [UInt8], to fd: Int32, computer: SimFlowComputer, _ write: ([UInt8]) throws -> Void
    ) {
        do { try write(bytes) } catch {
            FileHandle.standardError.write(Data("edgesim: \(computer.name) (unit \(computer.unit)): \(error)\n".utf8))
        }
    }
}
