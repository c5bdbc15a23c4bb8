import CCurl
import Foundation
import Synchronization

/// A libcurl failure: the `CURLcode`, curl's error buffer, and the protocol reply code if any.
public struct CurlError: Error, CustomStringConvertible, Sendable {
    public var code: Int
    public var message: String
    /// The whole request body was sent before the failure, and no answer came: the peer may have
    /// acted on it.
    public var afterRequestSent: Bool

    public init(code: Int, message: String, afterRequestSent: Bool = false) {
        self.code = code
        self.message = message
        self.afterRequestSent = afterRequestSent
    }

    public var description: String { "curl error \(code): \(message)" }
}

/// `curl_global_init`, exactly once per process.
public enum CurlGlobal {
    private static let initialised: Bool = {
        curl_global_init(CCurl_GLOBAL_DEFAULT) == CURLE_OK
    }()

    public static func ensureInitialised() { _ = initialised }

    public static var version: String {
        guard let info = curl_version_info(CCurl_VERSION_NOW) else { return "unknown" }
        return String(cString: info.pointee.version)
    }
}

/// Owns one `CURL *` easy handle. Not thread-safe: use from one thread at a time (the SMTP pool
/// gives each handle its own serial queue). `deinit` frees the handle and its lists.
final class CurlEasy {
    let handle: UnsafeMutableRawPointer
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    private var lists: [UnsafeMutablePointer<curl_slist>] = []

    init() throws {
        CurlGlobal.ensureInitialised()
        guard let h = curl_easy_init() else { throw CurlError(code: -1, message: "curl_easy_init failed") }
        handle = h
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        try check(CCurl_easy_setopt_ptr(handle, CURLOPT_ERRORBUFFER, errorBuffer), "setopt ERRORBUFFER")
    }

    deinit {
        curl_easy_cleanup(handle)
        for list in lists { curl_slist_free_all(list) }
        errorBuffer.deallocate()
    }

    /// Turns a `CURLcode` into a Swift error, the one place that does.
    func check(_ code: CURLcode, _ what: String) throws {
        guard code == CURLE_OK else {
            throw CurlError(code: Int(code.rawValue), message: "\(what): \(String(cString: curl_easy_strerror(code)))")
        }
    }

    func set(_ option: CURLoption, _ value: Int) throws {
        try check(CCurl_easy_setopt_long(handle, option, value), "setopt \(option.rawValue)")
    }

    func set(_ option: CURLoption, _ value: String) throws {
        // libcurl copies string options (since 7.17).
        try check(value.withCString { CCurl_easy_setopt_string(handle, option, $0) }, "setopt \(option.rawValue)")
    }

    func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer?) throws {
        try check(CCurl_easy_setopt_ptr(handle, option, pointer), "setopt \(option.rawValue)")
    }

    /// Sets a string list option; the list lives until the next call for the same purpose or deinit.
    func set(_ option: CURLoption, list values: [String]) throws {
        var list: UnsafeMutablePointer<curl_slist>?
        for value in values { list = value.withCString { curl_slist_append(list, $0) } }
        if let list { lists.append(list) }
        try check(CCurl_easy_setopt_slist(handle, option, list), "setopt \(option.rawValue)")
    }

    func releaseLists() {
        for list in lists { curl_slist_free_all(list) }
        lists.removeAll()
    }

    func clearError() { errorBuffer[0] = 0 }

    var errorText: String { String(cString: errorBuffer) }

    func responseCode() -> Int {
        var code: Int = 0
        guard CCurl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK else { return 0 }
        return code
    }

    /// Bytes of the request body (or of the SMTP message) sent by the last transfer.
    func uploadedBytes() -> Int {
        var bytes: curl_off_t = 0
        guard CCurl_easy_getinfo_off_t(handle, CURLINFO_SIZE_UPLOAD_T, &bytes) == CURLE_OK else { return 0 }
        return Int(bytes)
    }

    /// Blocking: call only from a dedicated thread, never from the cooperative pool.
    func perform() -> CURLcode { curl_easy_perform(handle) }
}

/// The lines a server sent during one transfer (its replies only, never what we sent: credentials
/// pass the other way), the last 64, for error messages. libcurl exposes them only through its
/// debug callback; the SMTP and IMAP transfers' states inherit this.
class ServerReplies {
    var replies: [String] = []
}

extension CurlEasy {
    /// Collects the server's reply lines into `replies` (kept alive by the caller for the handle's life).
    func collectReplies(into replies: ServerReplies) throws {
        try check(CCurl_easy_setopt_debug_callback(handle, collectServerReplies), "setopt DEBUGFUNCTION")
        try set(CURLOPT_DEBUGDATA, pointer: Unmanaged.passUnretained(replies).toOpaque())
        try set(CURLOPT_VERBOSE, 1)
    }
}

private func collectServerReplies(
    handle: UnsafeMutableRawPointer?, type: curl_infotype, data: UnsafeMutablePointer<CChar>?, size: Int, userdata: UnsafeMutableRawPointer?
) -> Int32 {
    guard type == CURLINFO_HEADER_IN, let data, let userdata else { return 0 }
    let state = Unmanaged<ServerReplies>.fromOpaque(userdata).takeUnretainedValue()
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    for line in text.split(whereSeparator: \.isNewline) where !line.isEmpty {
        if state.replies.count > 64 { state.replies.removeFirst() }
        state.replies.append(String(line.prefix(512)))
    }
    return 0
}
