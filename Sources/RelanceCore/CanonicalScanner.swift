import Foundation

/// Reads a reminder's canonical record (`Reminder.canonicalJSON()`) straight into a `Reminder`, in
/// one pass over its octets, without building a tree of JSON values first: the due walk decodes one
/// record for every delivery it hands out.
///
/// It accepts exactly the layout `canonicalJSON()` writes (keys in that order, no spaces, the
/// writer's escapes) and returns nil for anything else — a record an earlier version wrote with
/// `JSONEncoder`, or one that is not a reminder — which `Reminder.fromCanonicalJSON` then reads
/// with the general parser, and rejects with its error if it must. It never decides that a record
/// is wrong; it only declines.
struct CanonicalScanner {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var at = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    static func reminder(_ text: String) -> Reminder? {
        var text = text
        return text.withUTF8 { bytes in
            var scanner = CanonicalScanner(bytes)
            guard let reminder = scanner.reminder(), scanner.at == bytes.count else { return nil }
            return reminder
        }
    }

    private mutating func reminder() -> Reminder? {
        guard take("{"), key("attachments"), let attachments = strings(), take(","),
            key("channels"), let channels = channelList(), take(","),
            key("debtor"), let debtor = debtor(), take(","),
            let expiresAt = optionalMember("expires_at", { $0.instant() }),
            key("fallback"), let fallback = channelList(), take(","),
            key("id"), let id = string(), take(","),
            key("invoices"), let invoices = invoices(), take(","),
            let notBefore = optionalMember("not_before", { $0.instant() }),
            let paymentURL = optionalMember("payment_url", { $0.string() }),
            key("stage"), let stage = string(), take(","), key("vars"), let vars = vars(), take("}")
        else { return nil }
        return Reminder(
            id: id, stage: stage, channels: channels, notBefore: notBefore, expiresAt: expiresAt, fallback: fallback, debtor: debtor,
            invoices: invoices, paymentURL: paymentURL, attachments: attachments, vars: vars)
    }

    private mutating func debtor() -> Debtor? {
        guard take("{"), key("country"), let country = string(), take(","), let email = optionalMember("email", { $0.string() }),
            key("id"), let id = string(), take(","),
            key("kind"), let kindName = string(), let kind = DebtorKind(rawValue: kindName), take(","),
            key("locale"), let locale = string(), take(","),
            key("name"), let name = string(), take(","), let phone = optionalMember("phone", { $0.string() }),
            key("timezone"), let timezone = string(), take("}")
        else { return nil }
        return Debtor(id: id, name: name, email: email, phone: phone, country: country, locale: locale, timezone: timezone, kind: kind)
    }

    /// A member the writer leaves out when it has no value: `.some(nil)` when absent, `.some(value)`
    /// for `"name":value,`, nil when it is there but not as the writer writes it.
    private mutating func optionalMember<T>(_ name: StaticString, _ read: (inout CanonicalScanner) -> T?) -> T?? {
        guard key(name) else { return .some(nil) }
        guard let value = read(&self), take(",") else { return nil }
        return .some(value)
    }

    private mutating func invoices() -> [Invoice]? {
        guard take("[") else { return nil }
        var invoices: [Invoice] = []
        if take("]") { return invoices }
        repeat {
            guard take("{"), key("amount"), let amount = string(), take(","),
                key("currency"), let currency = string(), take(","),
                key("due_on"), let dueOn = date(), take(","),
                key("issued_on"), let issuedOn = date(), take(","),
                key("number"), let number = string(), take("}")
            else { return nil }
            invoices.append(Invoice(number: number, amount: amount, currency: currency, issuedOn: issuedOn, dueOn: dueOn))
        } while take(",")
        return take("]") ? invoices : nil
    }

    private mutating func vars() -> [String: VarValue]? {
        guard take("{") else { return nil }
        var vars: [String: VarValue] = [:]
        if take("}") { return vars }
        repeat {
            guard let name = string(), take(":") else { return nil }
            let value: VarValue
            if let text = string() {
                value = .string(text)
            } else if literal("true") {
                value = .bool(true)
            } else if literal("false") {
                value = .bool(false)
            } else {
                return nil
            }
            // The writer never repeats a name: a record that does is not its output.
            guard vars.updateValue(value, forKey: name) == nil else { return nil }
        } while take(",")
        return take("}") ? vars : nil
    }

    private mutating func strings() -> [String]? {
        guard take("[") else { return nil }
        var items: [String] = []
        if take("]") { return items }
        repeat {
            guard let item = string() else { return nil }
            items.append(item)
        } while take(",")
        return take("]") ? items : nil
    }

    private mutating func channelList() -> [Channel]? {
        guard let names = strings() else { return nil }
        var channels: [Channel] = []
        for name in names {
            guard let channel = Channel(rawValue: name) else { return nil }
            channels.append(channel)
        }
        return channels
    }

    private mutating func instant() -> Date? { string().flatMap(Timestamp.parse) }

    private mutating func date() -> CivilDate? { string().flatMap(CivilDate.init) }

    /// A string with the writer's escapes (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, `\u00XX`).
    private mutating func string() -> String? {
        guard take("\"") else { return nil }
        let start = at
        // The common case: no escape, one copy.
        while at < bytes.count, bytes[at] != UInt8(ascii: "\""), bytes[at] != UInt8(ascii: "\\"), bytes[at] >= 0x20 { at += 1 }
        // A control character is always escaped in JSON.
        guard at < bytes.count, bytes[at] >= 0x20 else { return nil }
        if bytes[at] == UInt8(ascii: "\"") {
            defer { at += 1 }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
        }
        var out = Array(bytes[start..<at])
        while at < bytes.count {
            let byte = bytes[at]
            at += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard at < bytes.count else { return nil }
                let escape = bytes[at]
                at += 1
                if let plain = JSONParser.unescaped(escape) {
                    out.append(plain)
                } else {
                    // Only what the writer produces for `\u`: a control character, \u0000–\u001f.
                    guard escape == UInt8(ascii: "u"), at + 4 <= bytes.count, bytes[at] == UInt8(ascii: "0"), bytes[at + 1] == UInt8(ascii: "0"),
                        let high = ASCIIDigits.hexValue(bytes[at + 2]), let low = ASCIIDigits.hexValue(bytes[at + 3]), high < 2
                    else { return nil }
                    out.append(high << 4 | low)
                    at += 4
                }
            default:
                guard byte >= 0x20 else { return nil }
                out.append(byte)
            }
        }
        return nil
    }

    /// `"name":`, consumed when it is next.
    private mutating func key(_ name: StaticString) -> Bool {
        let count = name.utf8CodeUnitCount
        guard at + count + 3 <= bytes.count, bytes[at] == UInt8(ascii: "\""), bytes[at + count + 1] == UInt8(ascii: "\""),
            bytes[at + count + 2] == UInt8(ascii: ":")
        else { return false }
        let name = UnsafeBufferPointer(start: name.utf8Start, count: count)
        for i in 0..<count where bytes[at + 1 + i] != name[i] { return false }
        at += count + 3
        return true
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard at + count <= bytes.count else { return false }
        let word = UnsafeBufferPointer(start: word.utf8Start, count: count)
        for i in 0..<count where bytes[at + i] != word[i] { return false }
        at += count
        return true
    }

    /// One punctuation octet, consumed when it is next.
    private mutating func take(_ character: Unicode.Scalar) -> Bool {
        guard at < bytes.count, bytes[at] == UInt8(character.value) else { return false }
        at += 1
        return true
    }
}
