import CCurl
import Foundation
import Logging
import RelanceCore
import Synchronization

/// How to reach the SMTP relay.
public struct SMTPConfiguration: Sendable, Hashable {
    public enum StartTLS: String, Sendable, Codable { case required, none }

    /// `smtp://host:port` (STARTTLS per `starttls`) or `smtps://host:port` (TLS from the start).
    public var url: String
    public var startTLS: StartTLS
    public var caFile: String?
    public var username: String?
    public var password: String?
    /// Parallel connections (each reused across messages).
    public var connections: Int
    public var connectTimeout: Duration
    /// Limit for one whole message transaction.
    public var timeout: Duration
    /// Name sent in EHLO (libcurl's default is the URL's path, else its own name).
    public var heloName: String?

    public init(
        url: String, startTLS: StartTLS = .required, caFile: String? = nil, username: String? = nil, password: String? = nil, connections: Int = 4,
        connectTimeout: Duration = .seconds(10), timeout: Duration = .seconds(60), heloName: String? = nil
    ) {
        self.url = url
        self.startTLS = startTLS
        self.caFile = caFile
        self.username = username
        self.password = password
        self.connections = connections
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.heloName = heloName
    }
}

/// Sends email through an SMTP relay with libcurl: a fixed pool of easy handles, each on its own
/// serial dispatch queue (curl_easy_perform blocks; it never runs on the cooperative pool), each
/// keeping its connection open across messages.
public final class SMTPTransport: Sendable {
    let configuration: SMTPConfiguration
    private let pool: HandlePool<SMTPConnection>

    public init(configuration: SMTPConfiguration) throws {
        self.configuration = configuration
        var connections: [SMTPConnection] = []
        for i in 0..<max(1, configuration.connections) {
            connections.append(try SMTPConnection(configuration: configuration, index: i))
        }
        self.pool = HandlePool(connections)
    }

    /// Sends one message (`message` is the full RFC 5322 text with CRLF line endings).
    public func send(from: String, to: String, message: Data) async -> SendOutcome {
        await pool.withConnection { $0.send(from: from, to: to, message: message) }
    }
}

/// A connection whose blocking work runs on its own serial queue.
protocol QueuedConnection: Sendable {
    var queue: DispatchQueue { get }
}

extension HandlePool where Resource: QueuedConnection {
    /// Waits for a free connection, runs the blocking `work` on its queue (never on the cooperative
    /// pool), hands the connection back.
    func withConnection<T: Sendable>(_ work: @escaping @Sendable (Resource) -> T) async -> T {
        let connection = await acquire()
        defer { release(connection) }
        return await withCheckedContinuation { continuation in
            connection.queue.async { continuation.resume(returning: work(connection)) }
        }
    }
}

/// A fixed set of reusable resources handed out one caller at a time; callers wait in FIFO order.
final class HandlePool<Resource: Sendable>: Sendable {
    private struct State {
        var idle: [Resource]
        var waiters: [CheckedContinuation<Resource, Never>] = []
    }

    private let state: Mutex<State>

    init(_ resources: [Resource]) { state = Mutex(State(idle: resources)) }

    func acquire() async -> Resource {
        await withCheckedContinuation { continuation in
            let resource = state.withLock { state -> Resource? in
                if let r = state.idle.popLast() { return r }
                state.waiters.append(continuation)
                return nil
            }
            if let resource { continuation.resume(returning: resource) }
        }
    }

    func release(_ resource: Resource) {
        let waiter = state.withLock { state -> CheckedContinuation<Resource, Never>? in
            if state.waiters.isEmpty {
                state.idle.append(resource)
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume(returning: resource)
    }
}

/// The message being uploaded and the server replies seen, reached from libcurl's C callbacks.
final class TransferState: ServerReplies {
    var payload = Data()
    var offset = 0
}

/// One SMTP connection: an easy handle and the serial queue that alone touches it.
final class SMTPConnection: QueuedConnection, @unchecked Sendable {
    // @unchecked: `easy` and `transfer` are only used on `queue`, a serial queue, one job at a time
    // (the HandlePool hands the connection to one caller at a time as well).
    let queue: DispatchQueue
    private let easy: CurlEasy
    private let transfer = TransferState()
    private let configuration: SMTPConfiguration

    init(configuration: SMTPConfiguration, index: Int) throws {
        self.configuration = configuration
        self.queue = DispatchQueue(label: "relance.smtp.\(index)")
        self.easy = try CurlEasy()
        var url = configuration.url
        if let helo = configuration.heloName, !url.dropFirst(8).contains("/") { url += "/" + helo }
        try easy.set(CURLOPT_URL, url)
        try easy.set(CURLOPT_NOSIGNAL, 1)
        if url.lowercased().hasPrefix("smtps://") || configuration.startTLS == .required {
            try easy.set(CURLOPT_USE_SSL, CCurl_USESSL_ALL)
        }
        if let ca = configuration.caFile { try easy.set(CURLOPT_CAINFO, ca) }
        if let user = configuration.username { try easy.set(CURLOPT_USERNAME, user) }
        if let password = configuration.password { try easy.set(CURLOPT_PASSWORD, password) }
        try easy.set(CURLOPT_CONNECTTIMEOUT_MS, Int(configuration.connectTimeout.seconds * 1000))
        try easy.set(CURLOPT_TIMEOUT_MS, Int(configuration.timeout.seconds * 1000))
        // Bounds every wait for a server reply, QUIT included: a relay that stops answering must
        // not hold the handle's cleanup (and the process's exit) for libcurl's default two minutes.
        try easy.set(CURLOPT_SERVER_RESPONSE_TIMEOUT, max(1, Int(configuration.timeout.seconds.rounded(.up))))
        try easy.set(CURLOPT_UPLOAD, 1)
        let opaque = Unmanaged.passUnretained(transfer).toOpaque()
        try easy.check(CCurl_easy_setopt_read_callback(easy.handle, smtpReadCallback), "setopt READFUNCTION")
        try easy.set(CURLOPT_READDATA, pointer: opaque)
        // The debug callback is how libcurl exposes the server's reply text (4xx/5xx reasons).
        try easy.collectReplies(into: transfer)
    }

    /// Blocking; runs on `queue`.
    func send(from: String, to: String, message: Data) -> SendOutcome {
        transfer.payload = message
        transfer.offset = 0
        transfer.replies.removeAll(keepingCapacity: true)
        easy.clearError()
        do {
            easy.releaseLists()
            try easy.set(CURLOPT_MAIL_FROM, "<\(from)>")
            try easy.set(CURLOPT_MAIL_RCPT, list: ["<\(to)>"])
            try easy.check(CCurl_easy_setopt_off_t(easy.handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(message.count)), "setopt INFILESIZE")
        } catch {
            return .transient(code: nil, detail: "\(error)", retryAfter: nil)
        }
        let result = easy.perform()
        let code = easy.responseCode()
        // The reply that carries the deciding code (after a failure libcurl QUITs, and "221 Bye"
        // would hide the reason).
        let reply = transfer.replies.last(where: { code > 0 && $0.hasPrefix("\(code)") }) ?? transfer.replies.last(where: { $0.first?.isNumber == true }) ?? ""
        if result == CURLE_OK {
            return .sent(providerID: nil, code: code, detail: reply.isEmpty ? "accepted" : reply)
        }
        let curlText = easy.errorText.isEmpty ? String(cString: curl_easy_strerror(result)) : easy.errorText
        let detail = reply.isEmpty ? "\(curlText) (curl \(result.rawValue))" : "\(reply) (\(curlText))"
        // The whole message went out after DATA and no reply to it came (a timeout, a dropped
        // connection): the relay may have queued it. Sending it again risks a duplicate.
        if !(400..<600).contains(code) && !message.isEmpty && easy.uploadedBytes() >= message.count {
            return .inDoubt(detail: "no reply after the whole message was sent: \(detail)")
        }
        switch result {
        case CURLE_LOGIN_DENIED, CURLE_USE_SSL_FAILED, CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION:
            // Our configuration or the relay is at fault, not the recipient: keep the reminder.
            return .transient(code: code == 0 ? nil : code, detail: detail, retryAfter: nil)
        default:
            break
        }
        switch code {
        case 500..<600: return .permanent(code: code, detail: detail)
        case 400..<500: return .transient(code: code, detail: detail, retryAfter: nil)
        default: return .transient(code: code == 0 ? nil : code, detail: detail, retryAfter: nil)
        }
    }
}

private func smtpReadCallback(buffer: UnsafeMutablePointer<CChar>?, size: Int, count: Int, userdata: UnsafeMutableRawPointer?) -> Int {
    guard let buffer, let userdata else { return 0 }
    let transfer = Unmanaged<TransferState>.fromOpaque(userdata).takeUnretainedValue()
    let n = min(size * count, transfer.payload.count - transfer.offset)
    guard n > 0 else { return 0 }
    transfer.payload.withUnsafeBytes { raw in
        let start = raw.baseAddress!.advanced(by: transfer.offset)
        UnsafeMutableRawPointer(buffer).copyMemory(from: start, byteCount: n)
    }
    transfer.offset += n
    return n
}
