import Foundation
import Testing

@testable import RelanceCore

/// The hand-written codecs of the hot path (JSON parsing, the canonical record, form encoding,
/// amounts) against the Foundation code they replace, on fixed cases and on random inputs.
@Suite struct JSONParserTests {
    static func parse(_ text: String) -> Result<JSONValue, JSONParseError> {
        do { return .success(try JSONParser.parse(Array(text.utf8))) } catch { return .failure(error) }
    }

    @Test(arguments: [
        (#"{"a": 1,}"#, "expected a key in quotes"),
        (#"[1, 2,]"#, "unexpected character ']'"),
        (#"{"a" 1}"#, "expected ':' after the key 'a'"),
        (#"{"a": 01}"#, "a number must not start with 0"),
        (#"{"a": 1.}"#, "a number needs digits after its decimal point"),
        (#"{"a": -}"#, "a number needs digits"),
        (#"{"a": 1e}"#, "a number needs digits in its exponent"),
        (#"{"a": tru}"#, "unexpected character, expected true"),
        (#"{"a": "x"} {"#, "unexpected text after the JSON value"),
        (#"{"a": "\x"}"#, "unknown escape '\\x' in a string"),
        (#"{"a": "\u12"}"#, "\\u must be followed by four hexadecimal digits"),
        (#"{"a": "\uD800"}"#, "a high surrogate (\\uD800) without its low half"),
        (#"{"a": "\uDC00"}"#, "a low surrogate (\\uDC00) without its high half"),
        ("{\"a\": \"tab\there\"}", "a control character (U+0009) must be escaped in a string"),
        (#"{"a": "open"#, "a string is not closed"),
        (#"{"a": NaN}"#, "unexpected character 'N'"),
        ("", "unexpected end of text"),
    ])
    func refusesWithAReason(_ text: String, _ reason: String) {
        guard case .failure(let error) = Self.parse(text) else {
            Issue.record("accepted: \(text)")
            return
        }
        #expect(error.reason == reason, "\(text)")
    }

    @Test func aRefusalIsToldApartFromASyntaxError() throws {
        guard case .failure(let duplicate) = Self.parse(#"{"k": 1, "k": 2}"#), case .failure(let syntax) = Self.parse(#"{"k": }"#) else {
            Issue.record("accepted")
            return
        }
        #expect(duplicate.recordReason == "the key 'k' appears twice in one object (byte 10)")
        #expect(syntax.recordReason == "not valid JSON: unexpected character '}' at byte 7")
    }

    @Test func thirtyTwoLevelsAreEnough() {
        let text = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
        #expect((try? Self.parse(text).get()) != nil)
    }

    @Test func escapesAndSurrogatePairsDecode() throws {
        let value = try Self.parse(#"{"s": "a\"b\\c\/d\n\t\u00e9\uD83D\uDE00€"}"#).get()
        #expect(value == .object(["s": .string("a\"b\\c/d\n\té😀€")]))
    }

    /// Random documents: what JSONSerialization reads, the parser reads the same; what it refuses
    /// (cut or corrupted text), the parser refuses too.
    @Test func agreesWithJSONSerialization() throws {
        var rng = SplitMix(seed: 11)
        for round in 0..<2000 {
            let value = Self.randomValue(&rng, depth: 0)
            let data = try JSONSerialization.data(withJSONObject: ["v": value], options: [.fragmentsAllowed])
            var bytes = Array(data)
            let corrupt = round % 2 == 1
            if corrupt, !bytes.isEmpty {
                let at = Int(rng.next() % UInt64(bytes.count))
                let replacements = Array("{}[],:\"\\ 0a-".utf8)
                bytes[at] = replacements[Int(rng.next() % UInt64(replacements.count))]
            }
            let foundation = try? JSONSerialization.jsonObject(with: Data(bytes), options: [])
            let ours = try? JSONParser.parse(bytes)
            if corrupt {
                // Corrupted text may still be valid JSON; both must then agree it is.
                if foundation == nil, let ours {
                    Issue.record("accepted what JSONSerialization refuses: \(String(decoding: bytes, as: UTF8.self)) → \(ours)")
                }
                continue
            }
            #expect(ours != nil, "\(String(decoding: bytes, as: UTF8.self))")
            if let ours, let foundation { #expect(Self.same(ours, foundation), "\(String(decoding: bytes, as: UTF8.self))") }
        }
    }

    /// Keeping a few members of an object: the same members as the whole parse, and on cut or
    /// corrupted text the same verdict, except that a value not kept is not checked for UTF-8.
    @Test func keepingSomeMembersAgreesWithTheWholeParse() throws {
        var rng = SplitMix(seed: 12)
        for round in 0..<3000 {
            var object: [String: Any] = [:]
            for _ in 0..<Int(rng.next() % 6) { object[Self.randomString(&rng)] = Self.randomValue(&rng, depth: 1) }
            var bytes = Array(try JSONSerialization.data(withJSONObject: object, options: []))
            if round % 2 == 1, !bytes.isEmpty {
                let at = Int(rng.next() % UInt64(bytes.count))
                let replacements = Array("{}[],:\"\\ 0a-".utf8)
                bytes[at] = replacements[Int(rng.next() % UInt64(replacements.count))]
            }
            let keys = Set(object.keys.filter { _ in rng.next() % 2 == 0 } + ["absent"])
            let whole = Result { () throws(JSONParseError) in try JSONParser.parse(bytes) }
            let kept = try? JSONParser.object(bytes, keeping: keys)
            let text = String(decoding: bytes, as: UTF8.self)
            switch whole {
            case .success(.object(let members)):
                #expect(kept == members.filter { keys.contains($0.key) }, "\(text)")
            case .success:
                #expect(kept == nil, "not an object: \(text)")
            case .failure(let error) where error.reason == "a string is not valid UTF-8" || error.isRefusal:
                // A value not kept is not checked for UTF-8 nor for a key twice in it.
                continue
            case .failure:
                #expect(kept == nil, "accepted what the whole parse refuses: \(text)")
            }
        }
        // What is refused either way: a key twice (kept or not), text after the object, nesting.
        #expect(throws: JSONParseError.self) { try JSONParser.object(Array(#"{"a": 1, "a": 2}"#.utf8), keeping: []) }
        #expect(throws: JSONParseError.self) { try JSONParser.object(Array(#"{"a": 1} x"#.utf8), keeping: ["a"]) }
        #expect(throws: JSONParseError.self) { try JSONParser.object(Array(#"{"a": [1,]}"#.utf8), keeping: []) }
        let deep = "{\"a\": " + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "}"
        #expect(throws: JSONParseError.self) { try JSONParser.object(Array(deep.utf8), keeping: []) }
        // A value not kept may hold text that is not UTF-8: the kept ones are still read.
        let lenient = try JSONParser.object(Array(#"{"sid": "SM1", "body": ""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8), keeping: ["sid"])
        #expect(lenient == ["sid": .string("SM1")])
    }

    static func randomString(_ rng: inout SplitMix) -> String {
        let pool: [Character] = ["a", "b", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{01}", "é", "€", "😀", "\u{2028}"]
        return String((0..<Int(rng.next() % 8)).map { _ in pool[Int(rng.next() % UInt64(pool.count))] })
    }

    static func randomValue(_ rng: inout SplitMix, depth: Int) -> Any {
        switch rng.next() % (depth > 3 ? 4 : 6) {
        case 0: return randomString(&rng)
        case 1: return Int(rng.next() % 100_000) - 50_000
        case 2: return rng.next() % 2 == 0
        case 3: return NSNull()
        case 4: return (0..<Int(rng.next() % 4)).map { _ in randomValue(&rng, depth: depth + 1) }
        default:
            var object: [String: Any] = [:]
            for _ in 0..<Int(rng.next() % 4) { object[randomString(&rng)] = randomValue(&rng, depth: depth + 1) }
            return object
        }
    }

    static func same(_ ours: JSONValue, _ theirs: Any) -> Bool {
        switch ours {
        case .null: return theirs is NSNull
        case .bool(let b): return (theirs as? Bool) == b
        case .number(let n): return (theirs as? NSNumber).map { Decimal(string: $0.stringValue) == n } ?? false
        case .string(let s): return (theirs as? String) == s
        case .array(let items):
            guard let other = theirs as? [Any], other.count == items.count else { return false }
            return zip(items, other).allSatisfy { same($0, $1) }
        case .object(let members):
            guard let other = theirs as? [String: Any], other.count == members.count else { return false }
            return members.allSatisfy { key, value in other[key].map { same(value, $0) } ?? false }
        }
    }
}

@Suite struct CanonicalRecordTests {
    static func reminder(_ rng: inout SplitMix) -> Reminder {
        let text = { (rng: inout SplitMix) in JSONParserTests.randomString(&rng) }
        var vars: [String: VarValue] = [:]
        for _ in 0..<Int(rng.next() % 3) { vars[text(&rng)] = rng.next() % 2 == 0 ? .string(text(&rng)) : .bool(rng.next() % 2 == 0) }
        let invoices = (0..<(1 + Int(rng.next() % 3))).map { i in
            Invoice(
                number: "F-\(i)\(text(&rng))", amount: "\(rng.next() % 10_000).\(rng.next() % 90 + 10)", currency: "EUR",
                issuedOn: CivilDate(year: 2026, month: 1 + Int(rng.next() % 12), day: 1 + Int(rng.next() % 28)),
                dueOn: CivilDate(year: 2026, month: 1 + Int(rng.next() % 12), day: 1 + Int(rng.next() % 28)))
        }
        return Reminder(
            id: "R-\(text(&rng))", stage: "reminder_1", channels: rng.next() % 2 == 0 ? [.email] : [.email, .sms],
            notBefore: rng.next() % 2 == 0 ? nil : Date(timeIntervalSince1970: Double(1_780_000_000 + Int(rng.next() % 1_000_000))),
            expiresAt: rng.next() % 2 == 0 ? nil : Date(timeIntervalSince1970: 1_790_000_000), fallback: rng.next() % 2 == 0 ? [] : [.sms],
            debtor: Debtor(
                id: "D-\(text(&rng))", name: text(&rng), email: rng.next() % 2 == 0 ? nil : "a@example.org", phone: rng.next() % 2 == 0 ? nil : "+33612345678",
                country: "FR", locale: "fr-FR", timezone: "Europe/Paris", kind: rng.next() % 2 == 0 ? .consumer : .business),
            invoices: invoices, paymentURL: rng.next() % 2 == 0 ? nil : "https://pay.example/\(text(&rng))",
            attachments: rng.next() % 2 == 0 ? [] : ["/srv/a.pdf"], vars: vars)
    }

    /// What `JSONEncoder` wrote before the hand-written form (records stored by earlier versions).
    static func encoderForm(_ reminder: Reminder) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(Timestamp.format(date))
        }
        return String(decoding: try encoder.encode(reminder), as: UTF8.self)
    }

    @Test func roundTripsAndReadsWhatJSONEncoderWrote() throws {
        var rng = SplitMix(seed: 5)
        for _ in 0..<500 {
            let reminder = Self.reminder(&rng)
            let canonical = reminder.canonicalJSON()
            #expect(try Reminder.fromCanonicalJSON(canonical) == reminder)
            #expect(try Reminder.fromCanonicalJSON(Self.encoderForm(reminder)) == reminder)
            // Any JSON reader reads it as the same document.
            let ours = try JSONSerialization.jsonObject(with: Data(canonical.utf8)) as? NSDictionary
            let theirs = try JSONSerialization.jsonObject(with: Data(try Self.encoderForm(reminder).utf8)) as? NSDictionary
            #expect(ours == theirs, "\(canonical)")
        }
    }

    /// The general path: the JSON parser, then the reader of its values.
    static func parsed(_ text: String) throws -> Reminder {
        var text = text
        var reader = CanonicalReader()
        return try reader.reminder(try text.withUTF8 { try JSONParser.parse($0) })
    }

    /// The due walk's one-pass reader (`CanonicalScanner`) reads every record this version writes
    /// to the reminder the general parser reads; for anything else — the form earlier versions
    /// wrote, every record with one octet changed, every truncation — it declines or agrees with
    /// the parser, and never accepts what the parser rejects.
    @Test func theOnePassReaderAgreesWithTheParserOrDeclines() throws {
        var rng = SplitMix(seed: 11)
        func check(_ text: String) {
            guard let scanned = CanonicalScanner.reminder(text) else { return }
            #expect((try? Self.parsed(text)) == scanned, "\(text.debugDescription)")
        }
        var declined = 0
        for _ in 0..<300 {
            let reminder = Self.reminder(&rng)
            let canonical = reminder.canonicalJSON()
            #expect(CanonicalScanner.reminder(canonical) == reminder, "\(canonical.debugDescription)")
            check(try Self.encoderForm(reminder))
            let bytes = Array(canonical.utf8)
            for _ in 0..<20 {
                var changed = bytes
                changed[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                let text = String(decoding: changed, as: UTF8.self)
                if CanonicalScanner.reminder(text) == nil { declined += 1 }
                check(text)
            }
            check(String(decoding: bytes.prefix(Int(rng.next() % UInt64(bytes.count))), as: UTF8.self))
        }
        #expect(declined > 1000, "the changed records were mostly read: the mutations do not reach the reader")
    }

    @Test func aDamagedRecordNamesTheField() {
        #expect(throws: CanonicalRecordError.self) { try Reminder.fromCanonicalJSON(#"{"id": "A", "stage": "x", "debtor": {"id": 3}}"#) }
        do {
            _ = try Reminder.fromCanonicalJSON(#"{"id": "A", "stage": "x", "channels": [], "debtor": {"id": 3}, "invoices": []}"#)
        } catch {
            #expect("\(error)".contains("debtor"))
        }
    }
}

@Suite struct FormEncodingTests {
    /// What the Foundation version produced.
    static func foundationEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "-._*")
        return (text.addingPercentEncoding(withAllowedCharacters: allowed) ?? "").replacingOccurrences(of: "%20", with: "+")
    }

    @Test func encodesAsBeforeAndDecodesBack() {
        var rng = SplitMix(seed: 3)
        for _ in 0..<2000 {
            let name = JSONParserTests.randomString(&rng) + "+%&="
            let value = JSONParserTests.randomString(&rng)
            #expect(FormEncoding.encode(value) == Self.foundationEncode(value))
            let body = String(decoding: FormEncoding.body([(name, value), ("b", "")]), as: UTF8.self)
            let pairs = FormEncoding.pairs(body)
            #expect(pairs?.map(\.0) == [name, "b"])
            #expect(pairs?.map(\.1) == [value, ""])
        }
    }

    @Test(arguments: ["a=%", "a=%4", "a=%zz", "a=%FF", "%C3=x"])
    func aMalformedEscapeIsRefused(_ body: String) {
        #expect(FormEncoding.pairs(body) == nil)
    }
}

@Suite struct AmountTests {
    @Test(
        arguments: [
            ("10", "EUR", nil), ("10.5", "EUR", nil), ("10.50", "EUR", nil), ("123456789012345", "EUR", nil), ("500", "JPY", nil),
            ("10.555", "EUR", "has more decimals than EUR allows (2)"), ("10.5", "JPY", "has more decimals than JPY allows (0)"),
            ("10.", "EUR", "is not a positive decimal amount"), (".5", "EUR", "is not a positive decimal amount"),
            ("-1", "EUR", "is not a positive decimal amount"), ("1,5", "EUR", "is not a positive decimal amount"),
            ("1234567890123456", "EUR", "is not a positive decimal amount"), ("١٠", "EUR", "is not a positive decimal amount"),
            ("10.00\n", "EUR", "is not a positive decimal amount"), ("0.00", "EUR", "must be greater than zero"),
        ] as [(String, String, String?)])
    func amounts(_ text: String, _ currency: String, _ problem: String?) {
        let found = Money.amountProblem(text, currency: currency)
        if let problem {
            #expect(found?.contains(problem) == true, "\(text): \(found ?? "accepted")")
        } else {
            #expect(found == nil, "\(text): \(found ?? "")")
        }
    }

    @Test func formatsPerLocaleFromTheMemo() {
        #expect(Money.format(1234.5, currency: "EUR", locale: "en-GB") == "€1,234.50")
        #expect(Money.format(1234.5, currency: "EUR", locale: "en-GB") == "€1,234.50")
        #expect(Money.format(Decimal(string: "1234.5")!, currency: "EUR", locale: "fr-FR") == "1\u{202F}234,50\u{00A0}€")
        #expect(CivilDate(year: 2026, month: 3, day: 7).description == "2026-03-07")
    }
}

@Suite struct MemoTests {
    @Test func buildsOnceAndStartsOverWhenFull() {
        let memo = Memo<Int, String>(limit: 3)
        var builds = 0
        for key in [1, 2, 1, 2, 3] {
            _ = memo.value(key) {
                builds += 1; return "\($0)"
            }
        }
        #expect(builds == 3)
        _ = memo.value(4) {
            builds += 1; return "\($0)"
        }  // full: starts over
        _ = memo.value(1) {
            builds += 1; return "\($0)"
        }
        #expect(builds == 5)
    }
}

@Suite struct TrimmingTests {
    @Test(arguments: [
        "Bonjour", " Bonjour\n", "\n\n\tBonjour, facture F-1 : 12,00\u{00A0}€.\r\n", "\u{00A0}\u{202F}x\u{2028}", "", " \n ", "é", "a b", "\u{3000}全角\u{3000}",
    ])
    func removesWhatFoundationRemoves(_ text: String) {
        #expect(text.trimmingWhitespace() == text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
