import Foundation
import Testing

@testable import RelanceCore

/// A valid record, as JSON text, with `patch` applied to its top-level or debtor keys.
func record(_ patch: [String: Any] = [:], debtor debtorPatch: [String: Any?] = [:], invoice invoicePatch: [String: Any] = [:]) -> Data {
    var debtor: [String: Any] = [
        "id": "C-1017", "name": "Élodie Martin", "email": "elodie@example.fr", "phone": "06 12 34 56 78", "country": "FR",
        "locale": "fr-FR", "timezone": "Europe/Paris", "kind": "consumer",
    ]
    for (k, v) in debtorPatch { if let v { debtor[k] = v } else { debtor.removeValue(forKey: k) } }
    var invoice: [String: Any] = ["number": "F2026-0042", "amount": "1234.50", "currency": "EUR", "issued_on": "2026-10-01", "due_on": "2026-10-31"]
    for (k, v) in invoicePatch { invoice[k] = v }
    var root: [String: Any] = [
        "id": "F2026-0042-R2", "stage": "reminder_2", "channels": ["email", "sms"], "not_before": "2026-11-30T09:00:00+01:00",
        "debtor": debtor, "invoices": [invoice],
    ]
    for (k, v) in patch { root[k] = v }
    return try! JSONSerialization.data(withJSONObject: root)
}

let attachmentsRoot = "/srv/invoices"

func validator(inspect: @escaping @Sendable (String) -> AttachmentInspection = { _ in .ok }) -> RecordValidator {
    RecordValidator(rules: RecordRules(attachmentsRoot: attachmentsRoot, maxAttachmentBytes: 1000, inspectAttachment: inspect))
}

func issues(_ data: Data, _ v: RecordValidator = validator()) -> [FieldIssue] {
    if case .failure(let f) = v.validate(data) { return f.issues }
    return []
}

@Suite struct RecordValidationTests {
    @Test func validRecordIsNormalised() throws {
        let reminder = try validator().validate(record()).get()
        #expect(reminder.debtor.phone == "+33612345678")
        #expect(reminder.channels == [.email, .sms])
        #expect(reminder.invoices[0].decimalAmount == Decimal(string: "1234.50"))
        #expect(reminder.notBefore == Date(timeIntervalSince1970: 1_796_025_600))
    }

    @Test func unknownTopLevelKeyIsAnError() {
        let found = issues(record(["chanels": ["email"]]))
        #expect(found.contains { $0.field == "chanels" && $0.reason.contains("unknown key") })
    }

    @Test func unknownKeysAreReportedInNameOrder() {
        let found = issues(record(["zeta": 1, "alpha": 2, "mid": 3], debtor: ["zz": "x", "aa": "y"], invoice: ["tva": "20", "note": "n"]))
        #expect(found.map(\.field) == ["alpha", "mid", "zeta", "debtor.aa", "debtor.zz", "invoices[0].note", "invoices[0].tva"])
    }

    @Test func variableNamesAreASCIILettersDigitsAndUnderscore() throws {
        let found = issues(record(["vars": ["ok_Name9": "x", "bad-key": "y", "été": "z", "a b": "w", "": "v"]]))
        #expect(found.map(\.field).sorted() == ["vars.", "vars.a b", "vars.bad-key", "vars.été"])
        let fine = try validator().validate(record(["vars": ["ok_Name9": "x", "Z_0": 1]])).get()
        #expect(fine.vars["ok_Name9"]?.text == "x" && fine.vars["Z_0"]?.text == "1")
    }

    @Test func unknownDebtorKeyIsAnError() {
        #expect(issues(record(debtor: ["adress": "x"])).map(\.field) == ["debtor.adress"])
    }

    @Test func missingFieldsAreNamed() {
        let data = try! JSONSerialization.data(withJSONObject: ["id": "X"])
        let fields = Set(issues(data).map(\.field))
        #expect(fields.isSuperset(of: ["stage", "channels", "debtor", "invoices"]))
    }

    @Test(arguments: ["elodie", "elodie@", "@example.fr", "a b@example.fr", "elodie@example", "é@example.fr", "x@-bad.example"])
    func badEmailAddress(_ address: String) {
        #expect(issues(record(debtor: ["email": address])).map(\.field) == ["debtor.email"])
    }

    @Test func crlfInNameIsRefused() {
        let found = issues(record(debtor: ["name": "Mallory\r\nBcc: everyone@example.org"]))
        #expect(found.count == 1)
        #expect(found[0].field == "debtor.name")
        #expect(found[0].reason.contains("line break"))
    }

    @Test(arguments: ["\u{0}", "\u{7}", "\u{85}", "\u{2028}", "\u{202E}"])
    func controlCharactersAreRefused(_ c: String) {
        #expect(issues(record(["payment_url": "https://pay.example.fr/x" + c])).map(\.field) == ["payment_url"])
    }

    @Test func invalidUTF8IsRefused() {
        var data = record(["vars": ["note": "PLACEHOLDER"]])
        let range = try! #require(data.range(of: Data("PLACEHOLDER".utf8)))
        data.replaceSubrange(range, with: [0xC3, 0x28])  // a lead byte followed by a non-continuation byte
        #expect(issues(data).first?.reason == "invalid UTF-8")
    }

    @Test(arguments: [
        ("1234,50", "not a positive decimal"), ("1,234.50", "not a positive decimal"), ("12.345", "more decimals"), ("-5.00", "not a positive decimal"),
        ("0", "greater than zero"), ("0.00", "greater than zero"), ("000.0", "greater than zero"), ("1e3", "not a positive decimal"),
    ])
    func badAmounts(_ amount: String, _ reason: String) {
        let found = issues(record(invoice: ["amount": amount]))
        #expect(found.map(\.field) == ["invoices[0].amount"])
        #expect(found.first?.reason.contains(reason) == true)
    }

    @Test func amountAsJSONNumberIsRefused() {
        #expect(issues(record(invoice: ["amount": 1234.5])).first?.reason.contains("decimal string") == true)
    }

    @Test func yenHasNoDecimals() {
        #expect(issues(record(invoice: ["amount": "100.5", "currency": "JPY"])).map(\.field) == ["invoices[0].amount"])
        #expect(issues(record(invoice: ["amount": "100", "currency": "JPY"])).isEmpty)
        #expect(issues(record(invoice: ["amount": "0.01"])).isEmpty && issues(record(invoice: ["amount": "010.00"])).isEmpty)
    }

    @Test(arguments: ["EUROS", "XYZ", "eur"])
    func unknownCurrency(_ code: String) {
        #expect(issues(record(invoice: ["currency": code])).contains { $0.field == "invoices[0].currency" && $0.reason.contains("unknown currency") })
    }

    @Test(arguments: ["2026-02-30", "2026-13-01", "2026-1-1", "yesterday"])
    func impossibleDates(_ date: String) {
        #expect(issues(record(invoice: ["due_on": date])).map(\.field) == ["invoices[0].due_on"])
    }

    @Test func impossibleTimestamp() {
        #expect(issues(record(["not_before": "2026-11-31T09:00:00+01:00"])).map(\.field) == ["not_before"])
        #expect(issues(record(["not_before": "2026-11-30T09:00:00"])).map(\.field) == ["not_before"])
    }

    @Test func unknownTimeZoneAndLocale() {
        #expect(issues(record(debtor: ["timezone": "Europe/Pariss"])).map(\.field) == ["debtor.timezone"])
        #expect(issues(record(debtor: ["locale": "xx-YY"])).map(\.field) == ["debtor.locale"])
    }

    @Test func unknownStage() {
        #expect(issues(record(["stage": "reminder_9"])).map(\.field) == ["stage"])
    }

    @Test func phoneRequiredForSMS() {
        #expect(issues(record(debtor: ["phone": nil])).map(\.field) == ["debtor.phone"])
        #expect(issues(record(["channels": ["email"]], debtor: ["phone": nil])).isEmpty)
    }

    @Test func badPhone() {
        let found = issues(record(debtor: ["phone": "12345"]))
        #expect(found.map(\.field) == ["debtor.phone"])
    }

    @Test func countryComesFromLocaleWhenAbsent() throws {
        let reminder = try validator().validate(record(debtor: ["country": nil, "locale": "fr-BE", "phone": "0470 12 34 56"])).get()
        #expect(reminder.debtor.country == "BE")
        #expect(reminder.debtor.phone == "+32470123456")
    }

    @Test func attachmentOutsideRoot() {
        let found = issues(record(["attachments": ["/etc/passwd.pdf"]]))
        #expect(found.map(\.field) == ["attachments[0]"])
        #expect(found[0].reason.contains("not under spool.attachments_root"))
    }

    @Test func attachmentWithDotDot() {
        #expect(issues(record(["attachments": ["/srv/invoices/../secret.pdf"]])).map(\.field) == ["attachments[0]"])
    }

    @Test func attachmentNotPDF() {
        #expect(issues(record(["attachments": ["/srv/invoices/a.txt"]])).first?.reason.contains("not a .pdf") == true)
        let v = validator(inspect: { _ in .notPDF })
        #expect(issues(record(["attachments": ["/srv/invoices/a.pdf"]]), v).first?.reason.contains("PDF header") == true)
    }

    @Test func attachmentTooLarge() {
        let v = validator(inspect: { _ in .tooLarge(5000) })
        #expect(issues(record(["attachments": ["/srv/invoices/a.pdf"]]), v).first?.reason.contains("over spool.max_attachment_bytes") == true)
    }

    @Test func everyProblemOfALineIsReported() {
        let found = issues(record(["stage": "nope"], debtor: ["email": "bad", "timezone": "Mars/Olympus"], invoice: ["currency": "ZZZ"]))
        #expect(Set(found.map(\.field)) == ["stage", "debtor.email", "debtor.timezone", "invoices[0].currency"])
    }

    @Test func canonicalJSONRoundTrips() throws {
        let reminder = try validator().validate(record(["vars": ["manager": "Paul", "n": 3, "vip": true]])).get()
        let again = try Reminder.fromCanonicalJSON(reminder.canonicalJSON())
        #expect(again == reminder)
        #expect(again.canonicalJSON() == reminder.canonicalJSON())
    }
}

@Suite struct PhoneNumberTests {
    @Test(arguments: [
        ("06 12 34 56 78", "FR", "+33612345678"), ("+33 6 12 34 56 78", "FR", "+33612345678"), ("0033612345678", "FR", "+33612345678"),
        ("01.45.67.89.10", "FR", "+33145678910"), ("0470 12 34 56", "BE", "+32470123456"), ("079 123 45 67", "CH", "+41791234567"),
        ("0151 23456789", "DE", "+4915123456789"), ("612 34 56 78", "ES", "+34612345678"), ("347 123 4567", "IT", "+393471234567"),
        ("06 12345678", "NL", "+31612345678"), ("912 345 678", "PT", "+351912345678"), ("07700 900123", "GB", "+447700900123"),
        ("087 123 4567", "IE", "+353871234567"), ("(212) 555-0123", "US", "+12125550123"), ("1 416 555 0123", "CA", "+14165550123"),
        ("621 123", "LU", "+352621123"),
    ])
    func normalises(_ raw: String, _ country: String, _ expected: String) {
        #expect(PhoneNumber.normalise(raw, country: country) == .success(expected))
    }

    @Test(arguments: [
        ("12345", "FR"), ("06 12 34 56", "FR"), ("+33 6 12", "FR"), ("06-12-34-56-78-99", "FR"), ("06 12 34 56 7a", "FR"), ("+0612345678", "FR"),
        ("0612345678", "ZZ"),
    ])
    func refuses(_ raw: String, _ country: String) {
        #expect(throws: PhoneNumber.Failure.self) { try PhoneNumber.normalise(raw, country: country).get() }
    }

    @Test func frenchMobiles() {
        #expect(PhoneNumber.isFrenchMobile("+33612345678"))
        #expect(PhoneNumber.isFrenchMobile("+33712345678"))
        #expect(!PhoneNumber.isFrenchMobile("+33145678910"))
    }
}

@Suite struct StatusMachineTests {
    @Test func forwardMovesOnly() {
        #expect(DeliveryStatus.pending.canMove(to: .sending))
        #expect(DeliveryStatus.sending.canMove(to: .unknown))
        #expect(DeliveryStatus.sent.canMove(to: .delivered))
        #expect(!DeliveryStatus.delivered.canMove(to: .sent))
        #expect(!DeliveryStatus.sent.canMove(to: .pending))
        #expect(!DeliveryStatus.failed.canMove(to: .pending))
        #expect(!DeliveryStatus.unknown.canMove(to: .sending))
        #expect(!DeliveryStatus.pending.canMove(to: .sent))
    }

    @Test func everyTerminalStatusIsFinal() {
        for from in DeliveryStatus.allCases where from.isTerminal {
            for to in DeliveryStatus.allCases { #expect(!from.canMove(to: to), "\(from) → \(to)") }
        }
    }

    @Test func retryBackoffDoublesUpToMax() {
        let s = RetrySchedule()
        #expect(s.delay(afterFailures: 1) == .seconds(300))
        #expect(s.delay(afterFailures: 2) == .seconds(600))
        #expect(s.delay(afterFailures: 4) == .seconds(2400))
        #expect(s.delay(afterFailures: 5) == .seconds(3600))
        #expect(s.delay(afterFailures: 50) == .seconds(3600))
    }

    @Test func retryJitterSpreadsDelays() {
        let s = RetrySchedule(first: .seconds(100), jitter: 0.1)
        let t = Date(timeIntervalSince1970: 0)
        #expect(s.nextAttempt(afterFailures: 1, now: t, firstAttempt: t, random: 0) == Date(timeIntervalSince1970: 90))
        #expect(s.nextAttempt(afterFailures: 1, now: t, firstAttempt: t, random: 0.5) == Date(timeIntervalSince1970: 100))
        #expect(s.nextAttempt(afterFailures: 1, now: t, firstAttempt: t, random: 0.999_999)!.timeIntervalSince1970 > 109.99)
    }

    @Test func retryStopsAtLifetime() {
        let s = RetrySchedule(first: .seconds(60), max: .seconds(60), lifetime: .seconds(120), jitter: 0)
        let start = Date(timeIntervalSince1970: 0)
        #expect(s.nextAttempt(afterFailures: 1, now: start, firstAttempt: start) == Date(timeIntervalSince1970: 60))
        #expect(s.nextAttempt(afterFailures: 3, now: Date(timeIntervalSince1970: 100), firstAttempt: start) == nil)
    }

    @Test func durationsParse() {
        #expect(Duration(text: "5m") == .seconds(300))
        #expect(Duration(text: "500ms") == .milliseconds(500))
        #expect(Duration(text: "2d") == .seconds(172_800))
        #expect(Duration(text: "1h") == .seconds(3600))
        #expect(Duration(text: "90") == .seconds(90))
        #expect(Duration(text: "soon") == nil)
        #expect(Duration(text: "1.5s") == .milliseconds(1500))
    }

    /// `Double("inf")` passed the old check and `Int64(inf)` trapped: a configuration or an
    /// environment variable could crash the daemon.
    @Test(arguments: ["inf", "infs", "nan", "1e300", "1e3s", "-5m", "+5m", "٥m", "５s", "99999999999999d", "", "s", ".5s", "5.s"])
    func hostileDurationsAreRefused(_ text: String) {
        #expect(Duration(text: text) == nil)
    }
}

@Suite struct MoneyTests {
    @Test func frenchFormatUsesNarrowNoBreakSpaces() {
        let text = Money.format(Decimal(string: "1234.50")!, currency: "EUR", locale: "fr-FR")
        #expect(text == "1\u{202F}234,50\u{00A0}€")
    }

    @Test func englishFormat() {
        #expect(Money.format(Decimal(string: "1234.5")!, currency: "GBP", locale: "en-GB") == "£1,234.50")
    }

    @Test func totalsPerCurrencyAreExact() {
        let invoices =
            ["0.10", "0.20", "0.30"].map {
                Invoice(
                    number: $0, amount: $0, currency: "EUR", issuedOn: CivilDate(year: 2026, month: 1, day: 1), dueOn: CivilDate(year: 2026, month: 2, day: 1))
            } + [
                Invoice(
                    number: "g", amount: "5", currency: "GBP", issuedOn: CivilDate(year: 2026, month: 1, day: 1), dueOn: CivilDate(year: 2026, month: 2, day: 1)
                )
            ]
        let totals = Money.totals(invoices)
        #expect(totals.map(\.currency) == ["EUR", "GBP"])
        #expect(totals[0].amount == Decimal(string: "0.6"))
    }

    @Test func civilDateArithmetic() {
        let d = CivilDate(year: 2024, month: 2, day: 28)
        #expect(d.adding(days: 1) == CivilDate(year: 2024, month: 2, day: 29))
        #expect(d.adding(days: 2) == CivilDate(year: 2024, month: 3, day: 1))
        #expect(CivilDate(dayNumber: 0) == CivilDate(year: 1970, month: 1, day: 1))
        #expect(CivilDate("2023-02-29") == nil)
        #expect(CivilDate("2024-02-29") != nil)
    }
}
