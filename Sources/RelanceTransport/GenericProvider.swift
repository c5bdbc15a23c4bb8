import Foundation
import Mustache
import RelanceCore

/// Any HTTP SMS gateway, described by configuration: method, URL, headers and a Mustache body
/// whose values are escaped for JSON or form encoding, and a JSON pointer to the message id.
public struct GenericProvider: SMSProvider {
    let method: String
    let url: MustacheTemplate
    let headers: [(String, MustacheTemplate)]
    let body: MustacheTemplate
    let contentType: String
    let messageIDPointer: String
    let callbackURL: String?

    public var name: String { "generic" }

    /// What describes the gateway (`sms.generic` in the configuration).
    public struct Configuration: Sendable {
        public var method: String
        public var url: String
        public var headers: [String: String]
        public var body: String
        /// Escape values for a JSON body (true) or a form body (false).
        public var json: Bool
        public var messageIDPointer: String
        public init(method: String, url: String, headers: [String: String], body: String, json: Bool, messageIDPointer: String) {
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
            self.json = json
            self.messageIDPointer = messageIDPointer
        }
    }

    /// A template of the configuration that does not parse.
    public struct TemplateError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(configuration: Configuration, callbackURL: String?) throws {
        Self.registerContentTypes()
        let pragma = configuration.json ? "{{% CONTENT_TYPE: RELANCE_JSON}}" : "{{% CONTENT_TYPE: RELANCE_FORM}}"
        func parse(_ text: String, _ what: String, pragma: String) throws -> MustacheTemplate {
            do { return try MustacheTemplate(string: pragma + text) } catch {
                throw TemplateError(description: "sms.generic.\(what): invalid template: \(error)")
            }
        }
        method = configuration.method.uppercased()
        url = try parse(configuration.url, "url", pragma: "{{% CONTENT_TYPE: RELANCE_FORM}}")
        headers = try configuration.headers.sorted { $0.key < $1.key }.map {
            ($0.key, try parse($0.value, "headers.\($0.key)", pragma: "{{% CONTENT_TYPE: TEXT}}"))
        }
        body = try parse(configuration.body, "body", pragma: pragma)
        contentType = configuration.json ? "application/json" : "application/x-www-form-urlencoded"
        messageIDPointer = configuration.messageIDPointer
        self.callbackURL = callbackURL
    }

    static func registerContentTypes() {
        MustacheContentTypes.register(JSONEscaping(), named: "RELANCE_JSON")
        MustacheContentTypes.register(FormEscaping(), named: "RELANCE_FORM")
    }

    struct JSONEscaping: MustacheContentType {
        /// The inside of a JSON string: the template supplies the quotes.
        func escapeText(_ text: String) -> String {
            let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
            return String(String(decoding: data, as: UTF8.self).dropFirst(2).dropLast(2))
        }
    }

    struct FormEscaping: MustacheContentType {
        func escapeText(_ text: String) -> String { FormEncoding.encode(text) }
    }

    func values(_ message: SMSMessage) -> [String: Any] {
        [
            "to": message.to, "to_digits": message.toDigits, "from": message.from, "text": message.text, "reference": message.reference,
            "encoding": message.analysis.encoding.rawValue, "unicode": message.analysis.encoding == .ucs2, "segments": message.analysis.segments,
            "callback_url": callbackURL ?? "", "has_callback_url": callbackURL != nil,
        ]
    }

    public func request(for message: SMSMessage) throws -> HTTPClient.Request {
        let values = values(message)
        var headers: [String: String] = ["Content-Type": contentType, "Accept": "application/json"]
        for (name, template) in self.headers { headers[name] = template.render(values) }
        return HTTPClient.Request(method: method, url: url.render(values), headers: headers, body: Data(body.render(values).utf8))
    }

    public func accepted(_ response: HTTPClient.Response) -> SendOutcome {
        if messageIDPointer.isEmpty { return .sent(providerID: nil, code: response.status, detail: "generic gateway accepted") }
        guard let json = try? JSONSerialization.jsonObject(with: response.body), let id = JSONPointer.resolve(messageIDPointer, in: json) else {
            return .permanent(
                code: response.status,
                detail:
                    "generic gateway accepted the request but \(messageIDPointer) is not in its answer (not resent): \(SMSGateway.firstBytes(response.body))")
        }
        return .sent(providerID: id, code: response.status, detail: "generic gateway accepted")
    }

    public func errorDetail(_ response: HTTPClient.Response) -> (code: String?, message: String?) {
        guard let json = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] else { return (nil, nil) }
        let code = json["code"].map { "\($0)" } ?? json["error_code"].map { "\($0)" }
        let message = (json["message"] ?? json["error"] ?? json["detail"]).map { "\($0)" }
        return (code, message)
    }
}

/// RFC 6901 JSON pointers, enough to find a message id.
public enum JSONPointer {
    public static func resolve(_ pointer: String, in json: Any) -> String? {
        var current: Any = json
        for raw in pointer.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            let token = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if let dict = current as? [String: Any], let next = dict[token] {
                current = next
            } else if let array = current as? [Any], let index = Int(token), array.indices.contains(index) {
                current = array[index]
            } else {
                return nil
            }
        }
        switch current {
        case let s as String: return s
        case let n as NSNumber: return n.stringValue
        default: return nil
        }
    }
}
