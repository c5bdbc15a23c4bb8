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

/// Sends email through an SMTP relay: a fixed pool of connections opened by libcurl, each on its
/// own serial dispatch queue (its I/O blocks; it never runs on the cooperative pool), each kept
/// open across messages.
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

/// One SMTP connection. libcurl connects it (TCP, STARTTLS or implicit TLS with certificate
/// checks, EHLO, AUTH: `CURLOPT_CONNECT_ONLY`); the mail transactions are then written and read
/// with `curl_easy_send`/`curl_easy_recv`, decided by `SMTPTransaction`, pipelined when the server
/// offers PIPELINING. libcurl's own SMTP transfer waits for each command's reply in turn, four
/// round trips a message; this is two. Blocking: runs on `queue`, never on the cooperative pool.
final class SMTPConnection: QueuedConnection, @unchecked Sendable {
    // @unchecked: everything but `queue` is used only on `queue`, a serial queue, one job at a
    // time (the HandlePool hands the connection to one caller at a time as well).
    let queue: DispatchQueue
    private let configuration: SMTPConfiguration
    private let url: String
    /// The server's reply lines seen while connecting (greeting, EHLO, STARTTLS, AUTH).
    private let replies = ServerReplies()
    private var easy: CurlEasy?
    private var socket: curl_socket_t = -1
    private var parser = SMTPReplyParser()
    private var pipelining = false
    private var receiveBuffer = [UInt8](repeating: 0, count: 16384)

    init(configuration: SMTPConfiguration, index: Int) throws {
        self.configuration = configuration
        self.queue = DispatchQueue(label: "relance.smtp.\(index)")
        var url = configuration.url
        if let helo = configuration.heloName, !url.dropFirst(8).contains("/") { url += "/" + helo }
        self.url = url
        // Checks the options once, where a bad one is a configuration error.
        _ = try makeHandle()
    }

    deinit { disconnect(graceful: true) }

    private func makeHandle() throws -> CurlEasy {
        let easy = try CurlEasy()
        try easy.set(CURLOPT_URL, url)
        try easy.set(CURLOPT_NOSIGNAL, 1)
        if url.lowercased().hasPrefix("smtps://") || configuration.startTLS == .required {
            try easy.set(CURLOPT_USE_SSL, CCurl_USESSL_ALL)
        }
        if let ca = configuration.caFile { try easy.set(CURLOPT_CAINFO, ca) }
        if let user = configuration.username { try easy.set(CURLOPT_USERNAME, user) }
        if let password = configuration.password { try easy.set(CURLOPT_PASSWORD, password) }
        try easy.set(CURLOPT_CONNECTTIMEOUT_MS, Int(configuration.connectTimeout.seconds * 1000))
        try easy.set(CURLOPT_TIMEOUT_MS, Int((configuration.connectTimeout + configuration.timeout).seconds * 1000))
        // Bounds every wait for a server reply libcurl makes (greeting, EHLO, AUTH, and QUIT when
        // the connection closes): a relay that stops answering must not hold the process's exit
        // for libcurl's default two minutes.
        try easy.set(CURLOPT_SERVER_RESPONSE_TIMEOUT, max(1, Int(configuration.timeout.seconds.rounded(.up))))
        try easy.set(CURLOPT_CONNECT_ONLY, 1)
        // The debug callback is how libcurl exposes the server's reply text (EHLO's capabilities,
        // the reason of a refused login).
        try easy.collectReplies(into: replies)
        return easy
    }

    /// Sends one message; blocking, runs on `queue`.
    func send(from: String, to: String, message: Data) -> SendOutcome {
        let deadline = ContinuousClock.now + configuration.timeout
        // A kept connection the server closed or spoke on while idle (Postfix says 421 after its
        // idle timeout) is replaced before use; one that fails before any reply, once, as well.
        if easy != nil, !isAlive() { disconnect(graceful: false) }
        var retried = false
        while true {
            let reused = easy != nil
            if !reused, let failure = connect() { return failure }
            var transaction = SMTPTransaction(from: from, to: to, message: message, pipelining: pipelining)
            var step = transaction.start()
            var replied = false
            let failure: String
            run: while true {
                switch step {
                case .send(let bytes):
                    if let problem = write(bytes, deadline: deadline) {
                        failure = problem.detail
                        break run
                    }
                    step = transaction.sent()
                case .receive:
                    switch readReply(deadline: deadline) {
                    case .success(let reply):
                        replied = true
                        step = transaction.receive(reply)
                    case .failure(let problem):
                        failure = problem.detail
                        break run
                    }
                case .done(let outcome, let keep):
                    if !keep { disconnect(graceful: true) }
                    return outcome
                }
            }
            disconnect(graceful: false)
            if reused, !replied, !retried, !transaction.contentSent {
                retried = true
                continue
            }
            return transaction.connectionLost(failure)
        }
    }

    /// Opens the connection; the failure's outcome if it could not.
    private func connect() -> SendOutcome? {
        replies.replies.removeAll(keepingCapacity: true)
        let easy: CurlEasy
        do { easy = try makeHandle() } catch { return .transient(code: nil, detail: "\(error)", retryAfter: nil) }
        let result = easy.perform()
        guard result == CURLE_OK else {
            let code = easy.responseCode()
            // The reply that carries the deciding code (after a failure libcurl QUITs, and "221 Bye"
            // would hide the reason).
            let reply =
                replies.replies.last(where: { code > 0 && $0.hasPrefix("\(code)") }) ?? replies.replies.last(where: { $0.first?.isNumber == true }) ?? ""
            let curlText = easy.errorText.isEmpty ? String(cString: curl_easy_strerror(result)) : easy.errorText
            let detail = reply.isEmpty ? "\(curlText) (curl \(result.rawValue))" : "\(reply) (\(curlText))"
            // Refused logins, TLS failures and unreachable relays are ours or the relay's, never
            // the recipient's: the reminder is kept and retried, whatever code came.
            return .transient(code: code == 0 ? nil : code, detail: detail, retryAfter: nil)
        }
        var socket: curl_socket_t = -1
        guard CCurl_easy_getinfo_socket(easy.handle, CURLINFO_ACTIVESOCKET, &socket) == CURLE_OK, socket >= 0 else {
            return .transient(code: nil, detail: "libcurl gave no socket for the SMTP connection", retryAfter: nil)
        }
        self.easy = easy
        self.socket = socket
        parser = SMTPReplyParser()
        pipelining = SMTPTransaction.capability("PIPELINING", in: replies.replies)
        return nil
    }

    /// Closes the connection: `graceful` lets libcurl say QUIT (and wait for its reply, bounded
    /// by the reply timeout); otherwise the socket is shut first, so nothing waits on a server
    /// that stopped answering.
    private func disconnect(graceful: Bool) {
        guard easy != nil else { return }
        if !graceful, socket >= 0 { _ = shutdown(socket, Int32(SHUT_RDWR)) }
        easy = nil
        socket = -1
    }

    /// Whether an idle kept connection is still usable: nothing arrived on it since the last
    /// transaction (a TLS record without data, such as a TLS 1.3 session ticket, is not a reply).
    private func isAlive() -> Bool {
        guard let easy, parser.isEmpty else { return false }
        var poll = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, 0) > 0 else { return true }
        var received = 0
        let result = receiveBuffer.withUnsafeMutableBytes { curl_easy_recv(easy.handle, $0.baseAddress, $0.count, &received) }
        return result == CURLE_AGAIN
    }

    private struct Failure: Error {
        var detail: String
    }

    private func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant) -> Failure? {
        guard let easy else { return Failure(detail: "not connected") }
        var offset = 0
        return bytes.withUnsafeBytes { raw -> Failure? in
            while offset < raw.count {
                var written = 0
                let result = curl_easy_send(easy.handle, raw.baseAddress! + offset, raw.count - offset, &written)
                switch result {
                case CURLE_OK: offset += written
                case CURLE_AGAIN:
                    if let problem = wait(for: Int16(POLLOUT), until: deadline) { return Failure(detail: "sending to the SMTP server: \(problem)") }
                default: return Failure(detail: "sending to the SMTP server failed: \(String(cString: curl_easy_strerror(result)))")
                }
            }
            return nil
        }
    }

    private func readReply(deadline: ContinuousClock.Instant) -> Result<SMTPReply, Failure> {
        guard let easy else { return .failure(Failure(detail: "not connected")) }
        while true {
            do {
                if let reply = try parser.next() { return .success(reply) }
            } catch {
                return .failure(Failure(detail: error.description))
            }
            var received = 0
            let result = receiveBuffer.withUnsafeMutableBytes { curl_easy_recv(easy.handle, $0.baseAddress, $0.count, &received) }
            switch result {
            case CURLE_OK:
                guard received > 0 else { return .failure(Failure(detail: "the SMTP server closed the connection")) }
                receiveBuffer.withUnsafeBytes { parser.append(UnsafeRawBufferPointer(rebasing: $0[0..<received])) }
            case CURLE_AGAIN:
                if let problem = wait(for: Int16(POLLIN), until: deadline) { return .failure(Failure(detail: "no reply from the SMTP server: \(problem)")) }
            default:
                return .failure(Failure(detail: "reading from the SMTP server failed: \(String(cString: curl_easy_strerror(result)))"))
            }
        }
    }

    /// Waits until the socket is ready for `events`; a problem when the deadline passed first.
    private func wait(for events: Int16, until deadline: ContinuousClock.Instant) -> String? {
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return "timed out after \(configuration.timeout)" }
            var poll = pollfd(fd: socket, events: events, revents: 0)
            let milliseconds = Int32(min(left.seconds * 1000 + 1, Double(Int32.max)))
            let ready = Glibc.poll(&poll, 1, milliseconds)
            if ready > 0 { return nil }
            if ready < 0, errno != EINTR { return "poll failed: errno \(errno)" }
        }
    }
}
