import CCurl
import Foundation
import RelanceCore
import Synchronization

extension HTTPClient {
    /// One HTTP request.
    public struct Request: Sendable, Hashable {
        public var method: String
        public var url: String
        public var headers: [String: String]
        public var body: Data?
        /// HTTP Basic credentials (user, password), sent only over this request.
        public var basicAuth: BasicAuth?

        public struct BasicAuth: Sendable, Hashable {
            public var user: String
            public var password: String
            public init(user: String, password: String) {
                self.user = user
                self.password = password
            }
        }

        public init(method: String, url: String, headers: [String: String] = [:], body: Data? = nil, basicAuth: BasicAuth? = nil) {
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
            self.basicAuth = basicAuth
        }
    }

    /// One HTTP response. Header names are lower-cased.
    public struct Response: Sendable, Hashable {
        public var status: Int
        public var headers: [String: String]
        public var body: Data

        public init(status: Int, headers: [String: String], body: Data) {
            self.status = status
            self.headers = headers
            self.body = body
        }

        /// `Retry-After` as a duration (seconds or an HTTP date), if present and sensible.
        public func retryAfter(now: Date = Date()) -> Duration? {
            guard let value = headers["retry-after"]?.trimmingCharacters(in: .whitespaces) else { return nil }
            if let seconds = ASCIIDigits.integer(value) { return .seconds(min(seconds, 86400)) }
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            guard let date = formatter.date(from: value) else { return nil }
            return .seconds(max(0, min(86400, Int(date.timeIntervalSince(now).rounded(.up)))))
        }
    }
}

/// How to reach an HTTP API.
public struct HTTPClientConfiguration: Sendable, Hashable {
    /// Parallel connections (each kept alive and reused).
    public var connections: Int
    public var connectTimeout: Duration
    /// Limit for one whole request.
    public var timeout: Duration
    public var caFile: String?
    /// Responses larger than this are cut (the rest is discarded).
    public var maxResponseBytes: Int

    public init(
        connections: Int = 4, connectTimeout: Duration = .seconds(10), timeout: Duration = .seconds(30), caFile: String? = nil, maxResponseBytes: Int = 1 << 20
    ) {
        self.connections = connections
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.caFile = caFile
        self.maxResponseBytes = maxResponseBytes
    }
}

/// An HTTP client on libcurl's multi interface: one thread drives every transfer (`curl_multi_poll`),
/// connections are kept alive and reused across requests (HTTP/2 multiplexed where the server
/// offers it over TLS), and at most `connections` requests are under way at once; the others wait
/// their turn in order. No request ever blocks the cooperative pool or holds a thread of its own.
public final class HTTPClient: Sendable {
    let loop: CurlMultiLoop<HTTPSlot>

    public convenience init(configuration: HTTPClientConfiguration) throws {
        try self.init(configuration: configuration, idleWait: .seconds(1))
    }

    /// `idleWait`: how long the loop sleeps with nothing to do before it looks again (tests make
    /// it long, so that a request left waiting for that timeout instead of a wake-up shows).
    init(configuration: HTTPClientConfiguration, idleWait: Duration) throws {
        let slots = try (0..<max(1, configuration.connections)).map { _ in try HTTPSlot(configuration: configuration) }
        loop = try CurlMultiLoop(slots: slots, name: "relance.http", idleWait: idleWait)
    }

    deinit { loop.shutdown() }

    public func execute(_ request: HTTPClient.Request) async -> Result<HTTPClient.Response, CurlError> {
        await withCheckedContinuation { continuation in loop.submit(request, continuation) }
    }
}

/// The response being received, reached from libcurl's C callbacks.
final class HTTPTransfer {
    var body = Data()
    var headers: [String: String] = [:]
    var limit = 1 << 20
}

/// One transfer slot: an easy handle with its response buffers, reused from request to request.
final class HTTPSlot: CurlSlot {
    let easy: CurlEasy
    let transfer = HTTPTransfer()

    init(configuration: HTTPClientConfiguration) throws {
        easy = try CurlEasy()
        transfer.limit = configuration.maxResponseBytes
        try easy.set(CURLOPT_NOSIGNAL, 1)
        try easy.set(CURLOPT_CONNECTTIMEOUT_MS, Int(configuration.connectTimeout.seconds * 1000))
        try easy.set(CURLOPT_TIMEOUT_MS, Int(configuration.timeout.seconds * 1000))
        try easy.set(CURLOPT_TCP_KEEPALIVE, 1)
        try easy.set(CURLOPT_FOLLOWLOCATION, 0)
        // HTTP/2 over TLS when the server offers it; wait for a connection that can multiplex
        // rather than open another.
        try easy.set(CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        try easy.set(CURLOPT_PIPEWAIT, 1)
        if let ca = configuration.caFile { try easy.set(CURLOPT_CAINFO, ca) }
        let opaque = Unmanaged.passUnretained(transfer).toOpaque()
        try easy.check(CCurl_easy_setopt_write_callback(easy.handle, httpWriteCallback), "setopt WRITEFUNCTION")
        try easy.set(CURLOPT_WRITEDATA, pointer: opaque)
        try easy.check(CCurl_easy_setopt_header_callback(easy.handle, httpHeaderCallback), "setopt HEADERFUNCTION")
        try easy.set(CURLOPT_HEADERDATA, pointer: opaque)
    }

    /// Sets the handle up for `request`.
    func prepare(_ request: HTTPClient.Request) throws {
        transfer.body.removeAll(keepingCapacity: true)
        transfer.headers.removeAll(keepingCapacity: true)
        easy.clearError()
        easy.releaseLists()
        try easy.set(CURLOPT_URL, request.url)
        if let body = request.body {
            try easy.set(CURLOPT_POST, 1)
            try easy.check(CCurl_easy_setopt_off_t(easy.handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)), "setopt POSTFIELDSIZE")
            try body.withUnsafeBytes { raw in
                // COPYPOSTFIELDS: libcurl keeps its own copy.
                try easy.set(CURLOPT_COPYPOSTFIELDS, pointer: UnsafeMutableRawPointer(mutating: raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
        } else {
            try easy.set(CURLOPT_HTTPGET, 1)
        }
        if request.method != "GET" && request.method != "POST" {
            try easy.set(CURLOPT_CUSTOMREQUEST, request.method)
        } else {
            try easy.set(CURLOPT_CUSTOMREQUEST, pointer: nil)
        }
        // No "Expect: 100-continue" round trip.
        try easy.set(CURLOPT_HTTPHEADER, list: request.headers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" } + ["Expect:"])
        if let auth = request.basicAuth {
            try easy.set(CURLOPT_HTTPAUTH, Int(CCurl_AUTH_BASIC))
            try easy.set(CURLOPT_USERNAME, auth.user)
            try easy.set(CURLOPT_PASSWORD, auth.password)
        } else {
            try easy.set(CURLOPT_USERNAME, pointer: nil)
            try easy.set(CURLOPT_PASSWORD, pointer: nil)
        }
    }

    static func refused(_ error: CurlError) -> Result<HTTPClient.Response, CurlError> { .failure(error) }

    /// The outcome of the finished transfer.
    func outcome(_ code: CURLcode, for request: HTTPClient.Request) -> Result<HTTPClient.Response, CurlError> {
        guard code == CURLE_OK else {
            let text = easy.errorText.isEmpty ? String(cString: curl_easy_strerror(code)) : easy.errorText
            // The body went out whole and no status line, or a success whose answer was cut, came back.
            let status = easy.responseCode()
            let sent = (request.body.map { !$0.isEmpty && easy.uploadedBytes() >= $0.count } ?? false) && (status == 0 || (200..<300).contains(status))
            return .failure(CurlError(code: Int(code.rawValue), message: text, afterRequestSent: sent))
        }
        return .success(HTTPClient.Response(status: easy.responseCode(), headers: transfer.headers, body: transfer.body))
    }
}

private func httpWriteCallback(data: UnsafeMutablePointer<CChar>?, size: Int, count: Int, userdata: UnsafeMutableRawPointer?) -> Int {
    guard let data, let userdata else { return 0 }
    let transfer = Unmanaged<HTTPTransfer>.fromOpaque(userdata).takeUnretainedValue()
    let n = size * count
    let room = max(0, transfer.limit - transfer.body.count)
    if room > 0 { transfer.body.append(UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: min(n, room)) }
    return n
}

private func httpHeaderCallback(data: UnsafeMutablePointer<CChar>?, size: Int, count: Int, userdata: UnsafeMutableRawPointer?) -> Int {
    guard let data, let userdata else { return 0 }
    let transfer = Unmanaged<HTTPTransfer>.fromOpaque(userdata).takeUnretainedValue()
    let n = size * count
    let line = UnsafeRawBufferPointer(start: data, count: n)
    if line.starts(with: "HTTP/".utf8) {
        transfer.headers.removeAll()  // a new response (after 100 Continue or a redirect)
    } else if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
        let isSpace = { (b: UInt8) in b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }
        var start = colon + 1
        var end = n
        while start < end && isSpace(line[start]) { start += 1 }
        while end > start && isSpace(line[end - 1]) { end -= 1 }
        let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
        transfer.headers[name] = String(decoding: line[start..<end], as: UTF8.self)
    }
    return n
}
