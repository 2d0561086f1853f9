import EdgeRuntime
import Foundation

/// The reply line: `{"ok": true, "result": …}` or `{"ok": false, "code": …, "error": …}`.
public enum ControlEnvelope {
    /// A success reply around `value` (keys sorted, so replies are stable to compare and to quote).
    public static func ok<T: Encodable>(_ value: T) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let body = try? encoder.encode(value) else {
            return ControlServer.errorReply(.internalError, "cannot encode reply")
        }
        return Data("{\"ok\":true,\"result\":".utf8) + body + Data("}".utf8)
    }

    /// An error reply.
    public static func error(_ code: ControlErrorCode, _ message: String) -> Data {
        ControlServer.errorReply(code, message)
    }

    /// The result of a reply decoded as `T`, and its JSON as edged sent it (for `--json`); throws what edged
    /// said when it said no, or what does not match when the reply is not a `T`.
    public static func decode<T: Decodable>(_ reply: Data, as type: T.Type) throws(ControlCallError) -> (
        value: T, json: Data
    ) {
        guard let obj = try? JSONSerialization.jsonObject(with: reply) as? [String: Any] else {
            throw ControlCallError(
                code: nil,
                message: "edged sent an unreadable reply: \(String(decoding: reply.prefix(200), as: UTF8.self))")
        }
        guard obj["ok"] as? Bool == true else {
            throw ControlCallError(
                code: (obj["code"] as? String).flatMap(ControlErrorCode.init(rawValue:)),
                message: "edged: \(obj["error"] as? String ?? "refused")")
        }
        let result = obj["result"] ?? NSNull()
        guard
            let json = try? JSONSerialization.data(
                withJSONObject: result, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed])
        else {
            throw ControlCallError(code: nil, message: "edged sent a reply that cannot be printed")
        }
        do {
            return (try JSONDecoder().decode(T.self, from: json), json)
        } catch {
            throw ControlCallError(
                code: nil, message: "edged's reply is not what this edgectl expects (versions differ?): \(error)")
        }
    }
}

/// A control call that did not give a result: edged's error (with its code), or a reply that does not
/// decode.
public struct ControlCallError: Error, Sendable, CustomStringConvertible {
    public var code: ControlErrorCode?
    public var message: String
    public var description: String { message }
}
