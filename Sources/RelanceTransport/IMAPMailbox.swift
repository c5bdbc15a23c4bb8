import CCurl
import Foundation
import Synchronization

/// An IMAP mailbox through libcurl's IMAP support (`email.bounce.imap`): list, fetch, move. One
/// easy handle, its connection kept alive between calls, used only on its own serial queue (never
/// on the cooperative pool).
///
/// Reading a message with libcurl's `FETCH BODY[]` sets `\Seen`. Callers that leave a message
/// where it is call `restoreUnseen` for it, so that only what they recognised is touched.
public final class IMAPMailbox: @unchecked Sendable {
    // @unchecked: `easy` and `buffer` are only used on `queue`, a serial queue, one job at a time.
    public struct Configuration: Sendable {
        public var url: String
        public var username: String
        public var password: String
        /// `imap://` without TLS is refused unless this is false (a loopback server, a test).
        public var requireTLS: Bool
        public var caFile: String?
        public var timeout: Duration

        public init(url: String, username: String, password: String, requireTLS: Bool = true, caFile: String? = nil, timeout: Duration = .seconds(60)) {
            self.url = url
            self.username = username
            self.password = password
            self.requireTLS = requireTLS
            self.caFile = caFile
            self.timeout = timeout
        }
    }

    private let queue = DispatchQueue(label: "relance.imap")
    private let easy: CurlEasy
    private let buffer = IMAPBuffer()
    private let base: String

    public init(_ configuration: Configuration) throws {
        easy = try CurlEasy()
        var base = configuration.url
        while base.hasSuffix("/") { base.removeLast() }
        self.base = base
        try easy.set(CURLOPT_NOSIGNAL, 1)
        if base.lowercased().hasPrefix("imaps://") || configuration.requireTLS { try easy.set(CURLOPT_USE_SSL, CCurl_USESSL_ALL) }
        if let ca = configuration.caFile { try easy.set(CURLOPT_CAINFO, ca) }
        try easy.set(CURLOPT_USERNAME, configuration.username)
        try easy.set(CURLOPT_PASSWORD, configuration.password)
        try easy.set(CURLOPT_CONNECTTIMEOUT_MS, 10_000)
        try easy.set(CURLOPT_TIMEOUT_MS, Int(configuration.timeout.seconds * 1000))
        try easy.set(CURLOPT_SERVER_RESPONSE_TIMEOUT, max(1, Int(configuration.timeout.seconds.rounded(.up))))
        let opaque = Unmanaged.passUnretained(buffer).toOpaque()
        try easy.check(CCurl_easy_setopt_write_callback(easy.handle, imapWriteCallback), "setopt WRITEFUNCTION")
        try easy.set(CURLOPT_WRITEDATA, pointer: opaque)
        // Untagged replies of custom commands (`* SEARCH …`, `* NO …`) reach the write callback;
        // tagged ones (`A004 NO [ALREADYEXISTS]`) only the debug callback.
        try easy.collectReplies(into: buffer)
    }

    /// The UIDs in `folder` (all of them, or only those without `\Seen`).
    public func uids(in folder: String, unseenOnly: Bool = false) async throws -> [Int] {
        let text = try await run(url: mailboxURL(folder), custom: unseenOnly ? "UID SEARCH UNSEEN" : "UID SEARCH ALL")
        return Self.searchResult(text)
    }

    /// The whole message `uid` of `folder` (libcurl: `UID FETCH uid BODY[]`, which sets `\Seen`).
    public func fetch(uid: Int, in folder: String, maxBytes: Int = 10 << 20) async throws -> Data {
        try await run(url: mailboxURL(folder) + ";UID=\(uid)", custom: nil, limit: maxBytes)
    }

    /// Clears `\Seen` again on a message that was unseen before it was fetched.
    public func restoreUnseen(uid: Int, in folder: String) async throws {
        _ = try await run(url: mailboxURL(folder), custom: "UID STORE \(uid) -FLAGS.SILENT (\\Seen)")
    }

    /// Moves `uid` from `folder` to `destination` (RFC 6851 MOVE; else COPY, flag `\Deleted` and
    /// expunge that one message with UIDPLUS's `UID EXPUNGE`).
    public func move(uid: Int, from folder: String, to destination: String) async throws {
        let target = Self.quoted(destination)
        do {
            _ = try await run(url: mailboxURL(folder), custom: "UID MOVE \(uid) \(target)")
        } catch {
            _ = try await run(url: mailboxURL(folder), custom: "UID COPY \(uid) \(target)")
            _ = try await run(url: mailboxURL(folder), custom: "UID STORE \(uid) +FLAGS.SILENT (\\Deleted)")
            _ = try await run(url: mailboxURL(folder), custom: "UID EXPUNGE \(uid)")
        }
    }

    /// Creates `folder` unless it exists: a refused `CREATE` is fine when the server says
    /// `[ALREADYEXISTS]` (RFC 5530) or, for a server without that code, when the folder can be
    /// selected; any other refusal is an error.
    public func create(_ folder: String) async throws {
        do {
            _ = try await run(url: base + "/", custom: "CREATE \(Self.quoted(folder))")
        } catch let error as CurlError {
            if error.message.uppercased().contains("[ALREADYEXISTS]") { return }
            if (try? await run(url: mailboxURL(folder), custom: "NOOP")) != nil { return }
            throw error
        }
    }

    func mailboxURL(_ folder: String) -> String {
        base + "/" + (folder.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: ";?#"))) ?? folder)
    }

    /// An IMAP quoted string (folder names are checked by the configuration: no quotes, backslashes or line breaks).
    static func quoted(_ text: String) -> String { "\"" + text + "\"" }

    /// The numbers of `* SEARCH 1 2 3` lines.
    static func searchResult(_ text: String) -> [Int] {
        text.split(whereSeparator: \.isNewline).flatMap { line -> [Int] in
            let words = line.split(separator: " ")
            guard words.count >= 2, words[0] == "*", words[1].uppercased() == "SEARCH" else { return [] }
            return words.dropFirst(2).compactMap { Int($0) }
        }
    }

    /// One request, blocking, on the handle's queue.
    private func run(url: String, custom: String?) async throws -> String {
        String(decoding: try await run(url: url, custom: custom, limit: 1 << 20), as: UTF8.self)
    }

    private func run(url: String, custom: String?, limit: Int) async throws -> Data {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { [self] in
                buffer.reset()
                buffer.limit = limit
                easy.clearError()
                do {
                    try easy.set(CURLOPT_URL, url)
                    if let custom {
                        try easy.set(CURLOPT_CUSTOMREQUEST, custom)
                    } else {
                        try easy.set(CURLOPT_CUSTOMREQUEST, pointer: nil)
                    }
                } catch {
                    continuation.resume(throwing: error)
                    return
                }
                let result = easy.perform()
                guard result == CURLE_OK || (result == CURLE_WRITE_ERROR && buffer.truncated) else {
                    let reply = buffer.replies.last(where: { $0.contains(" NO ") || $0.contains(" BAD ") }) ?? ""
                    let text = easy.errorText.isEmpty ? String(cString: curl_easy_strerror(result)) : easy.errorText
                    continuation.resume(throwing: CurlError(code: Int(result.rawValue), message: reply.isEmpty ? text : "\(text): \(reply)"))
                    return
                }
                continuation.resume(returning: buffer.data)
            }
        }
    }
}

/// What the server sent during one request, reached from libcurl's C callbacks.
final class IMAPBuffer: ServerReplies {
    var data = Data()
    var limit = Int.max
    var truncated = false

    func reset() {
        data.removeAll(keepingCapacity: false)
        truncated = false
        replies.removeAll(keepingCapacity: true)
    }
}

private func imapWriteCallback(data: UnsafeMutablePointer<CChar>?, size: Int, count: Int, userdata: UnsafeMutableRawPointer?) -> Int {
    guard let data, let userdata else { return 0 }
    let buffer = Unmanaged<IMAPBuffer>.fromOpaque(userdata).takeUnretainedValue()
    let n = size * count
    let room = buffer.limit - buffer.data.count
    if n > room {
        // Past the limit: keep the start (the report and the returned headers come first), stop the transfer.
        buffer.data.append(UnsafeBufferPointer(start: UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: max(0, room)))
        buffer.truncated = true
        return 0
    }
    buffer.data.append(UnsafeBufferPointer(start: UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: n))
    return n
}
