import Crypto
import Foundation
import RelanceCore

/// The return path of an email (VERP, DESIGN.md "Bounces and reconciliation"):
/// `bounces+<token>@<domain>`, where the token names the delivery and is authenticated with an
/// HMAC-SHA256 under `email.bounce.secret`, so a forged bounce cannot mark a message bounced.
/// The same token goes in the `X-Relance-Delivery` header, for servers that rewrite the envelope.
///
/// Token: the reminder id in base32 (RFC 4648 alphabet, lower case, no padding), `-`, then the
/// first 80 bits of the MAC in base32. Base32 survives MTAs that lower-case local parts; `-` is
/// not in its alphabet. A reminder id of up to 28 bytes keeps the local part within RFC 5321's
/// 64 octets; longer ids give longer ones, which Postfix and most relays accept.
public struct VERP: Sendable {
    public let domain: String
    let key: SymmetricKey

    public static let header = "X-Relance-Delivery"
    static let prefix = "bounces+"
    static let macBytes = 10

    public init(domain: String, secret: String) {
        self.domain = domain.lowercased()
        self.key = SymmetricKey(data: Data(secret.utf8))
    }

    /// The token of an email delivery of `reminderID`.
    public func token(reminderID: String) -> String {
        Base32.encode(Data(reminderID.utf8)) + "-" + Base32.encode(mac(reminderID))
    }

    /// The envelope sender of an email delivery of `reminderID`.
    public func returnPath(reminderID: String) -> String {
        Self.prefix + token(reminderID: reminderID) + "@" + domain
    }

    /// Why a reference was not accepted.
    public enum Rejection: Error, Sendable, Hashable, CustomStringConvertible {
        /// Not a token of ours at all (another sender's bounce address, a malformed header).
        case notOurs
        /// Shaped like one but its MAC does not verify: forged or altered.
        case forged(String)

        public var description: String {
            switch self {
            case .notOurs: "not a Relance bounce token"
            case .forged(let token): "the token '\(token)' does not verify: forged or altered"
            }
        }
    }

    /// The email delivery a reference names: a VERP address (`bounces+TOKEN@domain`, any case)
    /// or a header value (`TOKEN`).
    public func verify(_ reference: String) -> Result<DeliveryKey, Rejection> {
        var token = reference.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if token.hasPrefix("<") && token.hasSuffix(">") { token = String(token.dropFirst().dropLast()) }
        if let at = token.lastIndex(of: "@") {
            guard token[token.index(after: at)...] == domain, token.hasPrefix(Self.prefix) else { return .failure(.notOurs) }
            token = String(token[token.index(token.startIndex, offsetBy: Self.prefix.count)..<at])
        }
        let parts = token.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let idBytes = Base32.decode(parts[0]), let given = Base32.decode(parts[1]), !idBytes.isEmpty else {
            return reference.contains("@") ? .failure(.forged(token)) : .failure(.notOurs)
        }
        guard let reminderID = String(data: idBytes, encoding: .utf8), given.count == Self.macBytes,
            safeCompare(given, mac(reminderID))
        else { return .failure(.forged(token)) }
        return .success(DeliveryKey(reminderID: reminderID, channel: .email))
    }

    func mac(_ reminderID: String) -> Data {
        var message = Data("relance-verp-v1\u{0}".utf8)
        message.append(contentsOf: reminderID.utf8)
        message.append(contentsOf: "\u{0}email".utf8)
        return Data(HMAC<SHA256>.authenticationCode(for: message, using: key)).prefix(Self.macBytes)
    }

    func safeCompare(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}

/// RFC 4648 base32, lower case, without padding.
enum Base32 {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    static func encode(_ data: Data) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((data.count * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in data {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((buffer >> UInt32(bits)) & 31)])
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Nil for a character outside the alphabet (either case), a length no encoding gives, or
    /// non-zero trailing bits (one text per value: an altered token does not decode the same).
    static func decode(_ text: Substring) -> Data? {
        var out = Data()
        var buffer: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let value: UInt8
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = c - UInt8(ascii: "a")
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = c - UInt8(ascii: "A")
            case UInt8(ascii: "2")...UInt8(ascii: "7"): value = c - UInt8(ascii: "2") + 26
            default: return nil
            }
            buffer = (buffer << 5) | UInt32(value)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
        guard bits < 5, buffer & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
