import Crypto
import Foundation
import RelanceConfig
import RelanceCore

/// Signature checks of gateway callbacks. Every comparison is constant-time.
public enum WebhookSignatures {
    /// Compares two strings in time independent of where they differ.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }

    /// Twilio: base64(HMAC-SHA1(auth token, URL + every POST parameter as name+value, sorted by name)).
    /// Names are sorted by code point, as Twilio's own libraries sort them (octet order in UTF-8).
    public static func twilio(token: String, url: String, parameters: [(String, String)]) -> String {
        var payload: [UInt8] = []
        payload.reserveCapacity(url.utf8.count + parameters.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count })
        payload += url.utf8
        for (name, value) in parameters.sorted(by: { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }) {
            payload += name.utf8
            payload += value.utf8
        }
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: payload, using: SymmetricKey(data: Data(token.utf8)))
        return Data(mac).base64EncodedString()
    }

    /// Standard Webhooks v1: base64(HMAC-SHA256(base64-decoded secret after `whsec_`, "id.timestamp.body")).
    public static func standardWebhooks(secret: String, id: String, timestamp: String, body: Data) -> String? {
        guard let key = RelanceConfiguration.Webhooks.standardWebhooksKey(secret) else { return nil }
        var payload = Data("\(id).\(timestamp).".utf8)
        payload.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: payload, using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }

    /// Verifies a `webhook-signature` header (space-separated `v1,<base64>` entries) within ±`tolerance`.
    public enum StandardWebhooksResult: Equatable { case valid, badSignature, staleTimestamp, malformed }

    public static func verifyStandardWebhooks(
        secret: String, id: String?, timestamp: String?, signatureHeader: String?, body: Data, now: Date, tolerance: TimeInterval = 300
    ) -> StandardWebhooksResult {
        guard let id, let timestamp, let signatureHeader, let seconds = ASCIIDigits.integer(timestamp) else { return .malformed }
        guard abs(now.timeIntervalSince1970 - TimeInterval(seconds)) <= tolerance else { return .staleTimestamp }
        guard let expected = standardWebhooks(secret: secret, id: id, timestamp: timestamp, body: body) else { return .badSignature }
        let candidates = signatureHeader.split(separator: " ").map(String.init)
        // Check every candidate (no early exit) so timing does not tell which one matched.
        var match = false
        for candidate in candidates { match = constantTimeEqual(candidate, expected) || match }
        return match ? .valid : .badSignature
    }

    public typealias VonageMethod = RelanceConfiguration.SMS.Vonage.SignatureMethod

    /// Vonage signed requests: every parameter but `sig`, sorted, as `&name=value` (with `&` and `=` in
    /// values replaced by `_`); `md5hash` appends the secret and takes MD5; the HMAC methods key
    /// the MAC with the secret. Hex, compared case-insensitively.
    public static func vonage(secret: String, method: VonageMethod, parameters: [String: String]) -> String {
        let canonical = parameters.filter { $0.key != "sig" }.sorted { $0.key < $1.key }.map { name, value in
            "&\(name)=" + value.replacingOccurrences(of: "&", with: "_").replacingOccurrences(of: "=", with: "_")
        }.joined()
        let key = SymmetricKey(data: Data(secret.utf8))
        let bytes: [UInt8]
        switch method {
        case .md5hash: bytes = Array(Insecure.MD5.hash(data: Data((canonical + secret).utf8)))
        case .md5: bytes = Array(HMAC<Insecure.MD5>.authenticationCode(for: Data(canonical.utf8), using: key))
        case .sha1: bytes = Array(HMAC<Insecure.SHA1>.authenticationCode(for: Data(canonical.utf8), using: key))
        case .sha256: bytes = Array(HMAC<SHA256>.authenticationCode(for: Data(canonical.utf8), using: key))
        case .sha512: bytes = Array(HMAC<SHA512>.authenticationCode(for: Data(canonical.utf8), using: key))
        }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// STOP replies: the whole message, trimmed, case- and accent-insensitive.
    public static let optOutKeywords: Set<String> = ["STOP", "STOP SMS", "STOPSMS", "ARRET", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "STOPALL"]

    public static func isOptOut(_ text: String) -> Bool {
        let folded = text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: Locale(identifier: "en_US_POSIX"))
            .trimmingCharacters(in: .whitespacesAndNewlines.union(.punctuationCharacters)).uppercased()
        let collapsed = folded.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return optOutKeywords.contains(collapsed)
    }
}
