import Foundation
import HTTPTypes
import Hummingbird
import RelanceCore
import RelanceStore

/// A gateway's callback as it arrived, before anything in it is trusted.
public struct WebhookRequest: Sendable {
    public let path: String
    public let query: String?
    public let headers: HTTPFields
    public let body: Data
    /// The `Content-Type`, lower-cased, without parameters ("" when there is none).
    public let contentType: String
    /// The body's form pairs, decoded once (a provider's `verify` and `parse` both read them).
    private let form: Form

    private enum Form: Sendable {
        case notAForm
        case malformed
        case pairs([(String, String)])
    }

    public init(path: String, query: String?, headers: HTTPFields, body: Data) {
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        contentType = Self.mediaType(headers[.contentType])
        if contentType == "application/x-www-form-urlencoded" {
            form = FormEncoding.pairs(body).map(Form.pairs) ?? .malformed
        } else {
            form = .notAForm
        }
    }

    /// `Text/HTML ; charset=x` → `text/html`.
    static func mediaType(_ value: String?) -> String {
        guard let value else { return "" }
        let isSpace = { (b: UInt8) in b == 0x20 || b == 0x09 }
        var media = value.utf8.prefix { $0 != UInt8(ascii: ";") }
        while let first = media.first, isSpace(first) { media = media.dropFirst() }
        while let last = media.last, isSpace(last) { media = media.dropLast() }
        return String(Substring(media)).lowercased()
    }

    public func header(_ name: String) -> String? { HTTPField.Name(name).flatMap { headers[$0] } }

    /// The URL the gateway signed: the public base URL and this request's path and query.
    public func publicURL(base: String?) throws -> String {
        guard let base else { throw HTTPError(.forbidden, message: "webhooks.public_base_url is not configured: signatures cannot be checked") }
        return base + path + (query.map { "?" + $0 } ?? "")
    }

    /// The form pairs of the body (refused unless it is a form).
    func formBody() throws -> [(String, String)] {
        switch form {
        case .notAForm: throw HTTPError(.unsupportedMediaType, message: "expected a form")
        case .malformed: throw HTTPError(.badRequest, message: "malformed form encoding")
        case .pairs(let pairs): return pairs
        }
    }

    /// The pairs of the query string.
    func queryPairs() throws -> [(String, String)] { try Self.wellFormed(FormEncoding.pairs(query ?? "")) }

    /// The body as a JSON object's plain values (strings, numbers, booleans; null and nested values are left out).
    func jsonObject() throws -> [String: String] {
        guard contentType == "application/json" else { throw HTTPError(.unsupportedMediaType, message: "expected JSON") }
        let value: JSONValue
        do { value = try JSONParser.parse(body) } catch {
            throw HTTPError(.badRequest, message: error.isRefusal ? error.recordReason : "malformed JSON: an object is expected")
        }
        guard case .object(let object) = value else { throw HTTPError(.badRequest, message: "malformed JSON: an object is expected") }
        var fields: [String: String] = [:]
        for (key, value) in object {
            switch value {
            case .string(let s): fields[key] = s
            case .number(let n): fields[key] = "\(n)"
            case .bool(let b): fields[key] = b ? "true" : "false"
            case .null, .array, .object: continue  // nothing a callback needs is nested
            }
        }
        return fields
    }

    /// The decoded pairs, or a 400 when an escape was malformed.
    static func wellFormed(_ pairs: [(String, String)]?) throws -> [(String, String)] {
        guard let pairs else { throw HTTPError(.badRequest, message: "malformed form encoding") }
        return pairs
    }
}

/// What a verified callback reports.
public enum WebhookEvent: Sendable, Equatable {
    /// A delivery status, applied through the ledger.
    case status(StatusCallback)
    /// A STOP reply from this number (E.164).
    case optOut(number: String)
    /// An email provider's unsubscription of this address.
    case emailOptOut(address: String)
    /// An email bounce a provider reported, its delivery named (by its Message-ID or a verified token).
    case bounce(BounceNotice)
    /// Nothing to do (an inbound message that is not a STOP).
    case ignored(String)
}

/// One gateway's callback endpoint, `POST /webhooks/<name>`: first `verify` that the request is
/// authentic (signature or token, over the raw request), then `parse` what it reports. Each
/// refusal is an `HTTPError`: 403 for what is not authentic, 400 or 415 for what cannot be read.
public protocol WebhookProvider: Sendable {
    var name: String { get }
    func verify(_ request: WebhookRequest, now: Date) throws
    func parse(_ request: WebhookRequest) throws -> WebhookEvent
    /// An id the gateway sends again when it retries (Standard Webhooks' `webhook-id`): a replay is
    /// answered without a second effect. Recorded in the transaction that applies the status.
    func replayID(_ request: WebhookRequest) -> String?
}

extension WebhookProvider {
    public func replayID(_ request: WebhookRequest) -> String? { nil }
}
