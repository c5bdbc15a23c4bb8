import Foundation

/// The canonical JSON form of a reminder: what the ledger stores (one per reminder) and reads back
/// for every delivery it hands out. Written and read by hand, as the generic `Codable` path was
/// the largest cost of intake and of the due walk. Keys are sorted, optional values left out
/// when absent, dates written as RFC 3339 instants; any reader of JSON can read it.
extension Reminder {
    public func canonicalJSON() -> String {
        var w = CanonicalWriter()
        w.open("{")
        w.key("attachments")
        w.strings(attachments)
        w.key("channels")
        w.strings(channels.map(\.rawValue))
        w.key("debtor")
        w.open("{")
        w.key("country")
        w.string(debtor.country)
        if let email = debtor.email {
            w.key("email")
            w.string(email)
        }
        w.key("id")
        w.string(debtor.id)
        w.key("kind")
        w.string(debtor.kind.rawValue)
        w.key("locale")
        w.string(debtor.locale)
        w.key("name")
        w.string(debtor.name)
        if let phone = debtor.phone {
            w.key("phone")
            w.string(phone)
        }
        w.key("timezone")
        w.string(debtor.timezone)
        w.close("}")
        if let expiresAt {
            w.key("expires_at")
            w.string(Timestamp.format(expiresAt))
        }
        w.key("fallback")
        w.strings(fallback.map(\.rawValue))
        w.key("id")
        w.string(id)
        w.key("invoices")
        w.open("[")
        for invoice in invoices {
            w.element()
            w.open("{")
            w.key("amount")
            w.string(invoice.amount)
            w.key("currency")
            w.string(invoice.currency)
            w.key("due_on")
            w.string(invoice.dueOn.description)
            w.key("issued_on")
            w.string(invoice.issuedOn.description)
            w.key("number")
            w.string(invoice.number)
            w.close("}")
        }
        w.close("]")
        if let notBefore {
            w.key("not_before")
            w.string(Timestamp.format(notBefore))
        }
        if let paymentURL {
            w.key("payment_url")
            w.string(paymentURL)
        }
        w.key("stage")
        w.string(stage)
        w.key("vars")
        w.open("{")
        for name in vars.keys.sorted() {
            w.key(name)
            switch vars[name] {
            case .string(let text)?, .number(let text)?: w.string(text)
            case .bool(let flag)?: w.raw(flag ? "true" : "false")
            case nil: w.raw("null")
            }
        }
        w.close("}")
        w.close("}")
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// Reads the canonical form back (also the form earlier versions wrote with `JSONEncoder`).
    public static func fromCanonicalJSON(_ text: String) throws -> Reminder {
        // The layout this version writes, in one pass; anything else through the general parser.
        if let reminder = CanonicalScanner.reminder(text) { return reminder }
        var text = text
        let value = try text.withUTF8 { try JSONParser.parse($0) }
        var reader = CanonicalReader()
        return try reader.reminder(value)
    }
}

/// Small JSON texts written by hand (the ledger's raw callback fields).
public enum JSONText {
    /// A JSON string literal, escaped: `"a\"b"`.
    public static func string(_ text: String) -> String {
        var w = CanonicalWriter()
        w.string(text)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// An object of strings, keys sorted: `{"a":"1","b":"2"}`.
    public static func object(_ fields: [String: String]) -> String {
        var w = CanonicalWriter()
        w.open("{")
        for key in fields.keys.sorted() {
            w.key(key)
            w.string(fields[key] ?? "")
        }
        w.close("}")
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// Reads back an object of strings as `object(_:)` writes it, without building JSON values
    /// (`JSONParser.stringObject`); nil for anything else (the caller then uses the general
    /// parser). The ledger stores every receivables movement this way, and reading a million of
    /// them through the general parser was a fifth of `relance score`.
    public static func stringObject(_ text: String) -> [String: String]? {
        JSONParser.stringObject(validatedUTF8: text)
    }
}

/// Why a stored record cannot be read back.
public struct CanonicalRecordError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

struct CanonicalReader {
    func object(_ value: JSONValue?, _ path: String) throws -> [String: JSONValue] {
        guard case .object(let o)? = value else { throw CanonicalRecordError(description: "\(path): expected an object") }
        return o
    }

    func string(_ value: JSONValue?, _ path: String) throws -> String {
        guard case .string(let s)? = value else { throw CanonicalRecordError(description: "\(path): expected a string") }
        return s
    }

    func optionalString(_ value: JSONValue?, _ path: String) throws -> String? {
        switch value {
        case nil, .null?: nil
        default: try string(value, path)
        }
    }

    func strings(_ value: JSONValue?, _ path: String) throws -> [String] {
        switch value {
        case nil, .null?: return []
        case .array(let items)?: return try items.map { try string($0, path) }
        default: throw CanonicalRecordError(description: "\(path): expected an array")
        }
    }

    func channels(_ value: JSONValue?, _ path: String) throws -> [Channel] {
        try strings(value, path).map { name in
            guard let channel = Channel(rawValue: name) else { throw CanonicalRecordError(description: "\(path): unknown channel \(name)") }
            return channel
        }
    }

    func instant(_ value: JSONValue?, _ path: String) throws -> Date? {
        guard let text = try optionalString(value, path) else { return nil }
        guard let date = Timestamp.parse(text) else { throw CanonicalRecordError(description: "\(path): not an instant: \(text)") }
        return date
    }

    func date(_ value: JSONValue?, _ path: String) throws -> CivilDate {
        let text = try string(value, path)
        guard let date = CivilDate(text) else { throw CanonicalRecordError(description: "\(path): not a date: \(text)") }
        return date
    }

    mutating func reminder(_ value: JSONValue) throws -> Reminder {
        let root = try object(value, "record")
        let d = try object(root["debtor"], "debtor")
        guard let kind = DebtorKind(rawValue: try string(d["kind"], "debtor.kind")) else {
            throw CanonicalRecordError(description: "debtor.kind: unknown kind")
        }
        let debtor = Debtor(
            id: try string(d["id"], "debtor.id"), name: try string(d["name"], "debtor.name"), email: try optionalString(d["email"], "debtor.email"),
            phone: try optionalString(d["phone"], "debtor.phone"), country: try string(d["country"], "debtor.country"),
            locale: try string(d["locale"], "debtor.locale"), timezone: try string(d["timezone"], "debtor.timezone"), kind: kind)
        guard case .array(let rawInvoices)? = root["invoices"] else { throw CanonicalRecordError(description: "invoices: expected an array") }
        let invoices = try rawInvoices.map { raw in
            let i = try object(raw, "invoices[]")
            return Invoice(
                number: try string(i["number"], "invoices[].number"), amount: try string(i["amount"], "invoices[].amount"),
                currency: try string(i["currency"], "invoices[].currency"), issuedOn: try date(i["issued_on"], "invoices[].issued_on"),
                dueOn: try date(i["due_on"], "invoices[].due_on"))
        }
        var vars: [String: VarValue] = [:]
        let rawVars = root["vars"] == nil ? [:] : try object(root["vars"], "vars")
        for (name, raw) in rawVars {
            switch raw {
            case .string(let text): vars[name] = .string(text)
            case .bool(let flag): vars[name] = .bool(flag)
            case .number(let n): vars[name] = .number("\(n)")
            default: throw CanonicalRecordError(description: "vars.\(name): expected a string, a number or a boolean")
            }
        }
        return Reminder(
            id: try string(root["id"], "id"), stage: try string(root["stage"], "stage"), channels: try channels(root["channels"], "channels"),
            notBefore: try instant(root["not_before"], "not_before"), expiresAt: try instant(root["expires_at"], "expires_at"),
            fallback: try channels(root["fallback"], "fallback"), debtor: debtor, invoices: invoices,
            paymentURL: try optionalString(root["payment_url"], "payment_url"), attachments: try strings(root["attachments"], "attachments"),
            vars: vars)
    }
}

/// A compact JSON writer for the canonical form (no spaces; `"`, `\` and control characters
/// escaped, everything else written as UTF-8).
struct CanonicalWriter {
    var bytes: [UInt8] = []
    /// Whether the innermost open container already holds a member.
    var hasMember: [Bool] = []

    init() { bytes.reserveCapacity(768) }

    mutating func open(_ bracket: Unicode.Scalar) {
        bytes.append(UInt8(bracket.value))
        hasMember.append(false)
    }

    mutating func close(_ bracket: Unicode.Scalar) {
        bytes.append(UInt8(bracket.value))
        hasMember.removeLast()
    }

    /// Before a member or an element: the comma if one came before.
    mutating func element() {
        if hasMember[hasMember.count - 1] { bytes.append(UInt8(ascii: ",")) }
        hasMember[hasMember.count - 1] = true
    }

    mutating func key(_ name: String) {
        element()
        string(name)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func raw(_ text: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func strings(_ items: [String]) {
        open("[")
        for item in items {
            element()
            string(item)
        }
        close("]")
    }

    static let hex = Array("0123456789abcdef".utf8)

    mutating func escape(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
        case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
        case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
        case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
        case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
        case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
        case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
        default:
            bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
            bytes.append(Self.hex[Int(byte >> 4)])
            bytes.append(Self.hex[Int(byte & 0xF)])
        }
    }

    mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            // Runs of bytes that need no escape are copied whole.
            var run = 0
            for (i, byte) in utf8.enumerated() where byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[run..<i]))
                run = i + 1
                escape(byte)
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[run...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// A reminder with its canonical record, encoded once where its spool file is parsed (several
/// files at a time) rather than in the ledger's single writer.
public struct EncodedReminder: Sendable {
    public let reminder: Reminder
    /// `reminder.canonicalJSON()`.
    public let record: String

    public init(_ reminder: Reminder) {
        self.reminder = reminder
        self.record = reminder.canonicalJSON()
    }
}
