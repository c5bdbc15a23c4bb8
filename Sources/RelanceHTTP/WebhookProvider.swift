import Foundation
import HTTPTypes
import Hummingbird
import RelanceCore
import RelanceStore

/// A gateway's callback as it arrived, before anything in it is trusted.
public struct WebhookRequest: Sendable {
    public var path: String
    public var query: String?
    public var headers: HTTPFields
    public var body: Data

    public init(path: String, query: String?, headers: HTTPFields, body: Data) {
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The `Content-Type`, lower-cased, without parameters.
    public var contentType: String {
        guard let value = headers[.contentType] else { return "" }
        let media = value.utf8.prefix { $0 != UInt8(ascii: ";") }
        let isSpace = { (b: UInt8) in b == 0x20 || b == 0x09 }
        return String(decoding: media.drop(while: isSpace).reversed().drop(while: isSpace).reversed(), as: UTF8.self).lowercased()
    }

    public func header(_ name: String) -> String? { HTTPField.Name(name).flatMap { headers[$0] } }

    /// The URL the gateway signed: the public base URL and this request's path and query.
    public func publicURL(base: String?) throws -> String {
        guard let base else { throw HTTPError(.forbidden, message: "webhooks.public_base_url is not configured: signatures cannot be checked") }
        return base + path + (query.map { "?" + $0 } ?? "")
    }

    /// The form pairs of the body (refused unless it is a form).
    func formBody() throws -> [(String, String)] {
        guard contentType == "application/x-www-form-urlencoded" else { throw HTTPError(.unsupportedMediaType, message: "expected a form") }
        return try Self.wellFormed(FormEncoding.pairs(body))
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
