import CCurl
import CEdgeShim
import EdgeCore
import EdgeRuntime
import EdgeSystem
import Foundation

/// One HTTP request to the sync endpoint.
public struct HTTPRequest: Sendable {
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]
    public init(url: String, headers: [(String, String)], body: [UInt8]) {
        self.url = url; self.headers = headers; self.body = body
    }
}

/// The server's answer, and what the exchange cost on the wire.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names lowercased.
    public var headers: [String: String]
    public var body: [UInt8]
    /// Request line + headers + body, and response headers + body, as curl counts them (TLS framing not included).
    public var bytesSent: Int64
    public var bytesReceived: Int64
    public var seconds: Double
    /// The HTTP version libcurl used (`CURL_HTTP_VERSION_1_1` = 2, `CURL_HTTP_VERSION_2_0` = 3).
    public var httpVersion: Int
}

/// Why a request got no HTTP answer, in words a field tech can act on.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case dns, connect, tlsVerify, pinMismatch, tls, timeout, dropped, local, other
    }
    public var kind: Kind
    public var curlCode: Int32
    public var message: String
    public var description: String { message }

    static func classify(_ code: CURLcode, _ detail: String, url: String) -> TransportError {
        let host = URL(string: url)?.host ?? url
        let d = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        let (kind, text): (Kind, String) =
            switch code {
            case CURLE_COULDNT_RESOLVE_HOST: (.dns, "cannot resolve \(host) (DNS): \(d)")
            case CURLE_COULDNT_RESOLVE_PROXY: (.dns, "cannot resolve the proxy: \(d)")
            case CURLE_COULDNT_CONNECT: (.connect, "no connection to \(host): \(d)")
            case CURLE_PEER_FAILED_VERIFICATION: (.tlsVerify, "TLS verification of \(host) failed: \(d)")
            case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                (.pinMismatch, "\(host) presented a public key that does not match the configured pin")
            case CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE:
                (.tls, "TLS handshake with \(host) failed: \(d)")
            case CURLE_OPERATION_TIMEDOUT: (.timeout, "\(host) did not answer in time: \(d)")
            case CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE:
                // The error buffer keeps libcurl's first message of the transfer, which can be a side note
                // ("getpeername() failed"); the code's own text says what failed.
                (
                    .dropped,
                    "connection to \(host) dropped before the answer (\(String(cString: curl_easy_strerror(code)))): \(d)"
                )
            case CURLE_FAILED_INIT, CURLE_OUT_OF_MEMORY, CURLE_BAD_FUNCTION_ARGUMENT: (.local, "libcurl: \(d)")
            default: (.other, "\(host): \(d)")
            }
        return TransportError(kind: kind, curlCode: Int32(code.rawValue), message: text)
    }
}

/// HTTPS through libcurl and the system OpenSSL. `curl_easy_perform` blocks, so every request runs on this
/// client's own thread, one at a time, reusing one easy handle (and so its connection: keep-alive, HTTP/2).
/// Certificate and host verification are always on.
// Guard: `handle` is used only by jobs on `worker`'s thread, and by `deinit` once no job holds `self` (it hands
// the handle to `worker` to clean up); the rest is immutable after init.
public final class CurlClient: @unchecked Sendable {
    public let tls: TLSSettings
    public let connectTimeout: TimeSpan
    public let requestTimeout: TimeSpan
    public let proxy: String?
    private let worker = BlockingWorker(name: "uplink-curl")
    private var handle: UnsafeMutableRawPointer?  // CURL*, touched only on the worker thread

    public init(tls: TLSSettings, connectTimeout: TimeSpan, requestTimeout: TimeSpan, proxy: String?) {
        self.tls = tls; self.connectTimeout = connectTimeout; self.requestTimeout = requestTimeout; self.proxy = proxy
        CurlGlobal.initialize()
    }

    deinit {
        let h = handle
        worker.stopAfter { if let h { curl_easy_cleanup(h) } }
    }

    /// Sends a request and waits (without blocking the caller's thread) for the answer.
    public func send(_ request: HTTPRequest) async throws(TransportError) -> HTTPResponse {
        let result: Result<HTTPResponse, TransportError> = await withCheckedContinuation { cont in
            worker.run { [self] in cont.resume(returning: perform(request)) }
        }
        return try result.get()
    }

    /// Blocking variant for tools that are not async (edgectl).
    public func sendBlocking(_ request: HTTPRequest) -> Result<HTTPResponse, TransportError> {
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        worker.run { [self] in
            box.value = perform(request); done.signal()
        }
        done.wait()
        return box.value!
    }

    // Guard: `value` is written on the worker thread before `done.signal()` and read after `done.wait()`.
    private final class ResultBox: @unchecked Sendable { var value: Result<HTTPResponse, TransportError>? }

    /// Collects the response body and headers from libcurl's callbacks.
    final class Sink {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
    }

    private func perform(_ request: HTTPRequest) -> Result<HTTPResponse, TransportError> {
        if handle == nil { handle = curl_easy_init() }
        guard let h = handle else {
            return .failure(TransportError(kind: .local, curlCode: -1, message: "libcurl: cannot create a handle"))
        }
        curl_easy_reset(h)  // keeps the connection cache
        let sink = Sink()
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for (k, v) in request.headers { headerList = curl_slist_append(headerList, "\(k): \(v)") }
        headerList = curl_slist_append(headerList, "Expect:")  // no 100-continue round trip
        var body = request.body
        let started = DispatchTime.now().uptimeNanoseconds
        var refused: (option: String, code: CURLcode)?
        let code: CURLcode = body.withUnsafeMutableBytes { bodyPtr in
            errorBuffer.withUnsafeMutableBufferPointer { errPtr in
                let unmanaged = Unmanaged.passUnretained(sink).toOpaque()
                // Every option is checked: one libcurl refuses (a pin its TLS backend cannot check, a CA file
                // option it does not know) would otherwise be silently not enforced.
                func set(_ name: String, _ rc: CURLcode) {
                    if rc != CURLE_OK && refused == nil { refused = (name, rc) }
                }
                set("CURLOPT_URL", edge_curl_setopt_str(h, CURLOPT_URL, request.url))
                set("CURLOPT_POST", edge_curl_setopt_long(h, CURLOPT_POST, 1))
                set("CURLOPT_POSTFIELDS", edge_curl_setopt_ptr(h, CURLOPT_POSTFIELDS, bodyPtr.baseAddress))
                set(
                    "CURLOPT_POSTFIELDSIZE_LARGE",
                    edge_curl_setopt_off(h, CURLOPT_POSTFIELDSIZE_LARGE, Int64(bodyPtr.count)))
                set(
                    "CURLOPT_HTTPHEADER",
                    edge_curl_setopt_ptr(h, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList)))
                set(
                    "CURLOPT_ERRORBUFFER",
                    edge_curl_setopt_ptr(h, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errPtr.baseAddress)))
                set("CURLOPT_WRITEFUNCTION", edge_curl_setopt_writefunction(h, curlWrite))
                set("CURLOPT_WRITEDATA", edge_curl_setopt_ptr(h, CURLOPT_WRITEDATA, unmanaged))
                set("CURLOPT_HEADERFUNCTION", edge_curl_setopt_headerfunction(h, curlHeader))
                set("CURLOPT_HEADERDATA", edge_curl_setopt_ptr(h, CURLOPT_HEADERDATA, unmanaged))
                set("CURLOPT_NOSIGNAL", edge_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1))
                set("CURLOPT_HTTP_VERSION", edge_curl_setopt_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS)))
                set(
                    "CURLOPT_CONNECTTIMEOUT_MS",
                    edge_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(connectTimeout.milliseconds)))
                set(
                    "CURLOPT_TIMEOUT_MS", edge_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, Int(requestTimeout.milliseconds))
                )
                // TLS: 1.2 or newer, verification always on.
                set("CURLOPT_SSLVERSION", edge_curl_setopt_long(h, CURLOPT_SSLVERSION, Int(CURL_SSLVERSION_TLSv1_2)))
                set("CURLOPT_SSL_VERIFYPEER", edge_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 1))
                set("CURLOPT_SSL_VERIFYHOST", edge_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 2))
                set("CURLOPT_PROTOCOLS_STR", edge_curl_setopt_str(h, CURLOPT_PROTOCOLS_STR, "https"))
                if let ca = tls.caFile { set("CURLOPT_CAINFO", edge_curl_setopt_str(h, CURLOPT_CAINFO, ca)) }
                if let pin = tls.pinnedPublicKey {
                    set("CURLOPT_PINNEDPUBLICKEY", edge_curl_setopt_str(h, CURLOPT_PINNEDPUBLICKEY, pin))
                }
                if let cert = tls.clientCertificate {
                    set("CURLOPT_SSLCERT", edge_curl_setopt_str(h, CURLOPT_SSLCERT, cert))
                }
                if let key = tls.clientKey { set("CURLOPT_SSLKEY", edge_curl_setopt_str(h, CURLOPT_SSLKEY, key)) }
                if let proxy { set("CURLOPT_PROXY", edge_curl_setopt_str(h, CURLOPT_PROXY, proxy)) }
                if refused != nil { return CURLE_OK }
                return curl_easy_perform(h)
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        if let refused {
            return .failure(
                TransportError(
                    kind: .local, curlCode: Int32(refused.code.rawValue),
                    message:
                        "libcurl refused \(refused.option): \(String(cString: curl_easy_strerror(refused.code))); nothing was sent"
                ))
        }
        guard code == CURLE_OK else {
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return .failure(TransportError.classify(code, detail, url: request.url))
        }
        var status = 0, requestSize = 0, headerSize = 0, version = 0
        var upload: Int64 = 0, download: Int64 = 0
        _ = edge_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        _ = edge_curl_getinfo_long(h, CURLINFO_REQUEST_SIZE, &requestSize)
        _ = edge_curl_getinfo_long(h, CURLINFO_HEADER_SIZE, &headerSize)
        _ = edge_curl_getinfo_long(h, CURLINFO_HTTP_VERSION, &version)
        _ = edge_curl_getinfo_off(h, CURLINFO_SIZE_UPLOAD_T, &upload)
        _ = edge_curl_getinfo_off(h, CURLINFO_SIZE_DOWNLOAD_T, &download)
        return .success(
            HTTPResponse(
                status: status, headers: sink.headers, body: sink.body,
                bytesSent: Int64(requestSize) + upload, bytesReceived: Int64(headerSize) + download,
                seconds: seconds, httpVersion: version))
    }
}

private func curlWrite(_ ptr: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ user: UnsafeMutableRawPointer?)
    -> Int
{
    guard let ptr, let user else { return 0 }
    let sink = Unmanaged<CurlClient.Sink>.fromOpaque(user).takeUnretainedValue()
    let n = size * count
    if sink.body.count < 1 << 20 {
        ptr.withMemoryRebound(to: UInt8.self, capacity: n) {
            sink.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: n))
        }
    }
    return n
}

private func curlHeader(
    _ ptr: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ user: UnsafeMutableRawPointer?
) -> Int {
    guard let ptr, let user else { return 0 }
    let sink = Unmanaged<CurlClient.Sink>.fromOpaque(user).takeUnretainedValue()
    let n = size * count
    let line = ptr.withMemoryRebound(to: UInt8.self, capacity: n) {
        String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
    }
    if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        sink.headers[name] = value
    } else if line.hasPrefix("HTTP/") {
        sink.headers.removeAll()  // a new response (after a redirect or 100) starts over
    }
    return n
}

/// `curl_global_init` once per process, before any thread uses libcurl.
enum CurlGlobal {
    private static let once: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()
    static func initialize() { _ = once }

    /// Whether libcurl is the OpenSSL flavour (it must be: TLS through the system OpenSSL).
    public static var usesOpenSSL: Bool { edge_curl_uses_openssl() != 0 }
}
