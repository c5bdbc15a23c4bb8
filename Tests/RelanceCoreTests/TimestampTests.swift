import Foundation
import Testing

@testable import RelanceCore

@Suite struct TimestampTests {
    /// Foundation's formatter, used here only as an independent oracle.
    static func reference(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        let fraction = ISO8601DateFormatter()
        fraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return plain.date(from: text) ?? fraction.date(from: text)
    }

    @Test(arguments: [
        "2026-11-30T09:00:00+01:00", "2026-11-30T08:00:00Z", "2024-02-29T23:59:59-09:30", "1999-12-31T00:00:00+05:45",
        "2026-03-29T02:30:00+14:00", "2026-11-30T08:00:00.5Z", "2026-11-30T08:00:00.123Z",
    ])
    func parsesWhatFoundationParses(_ text: String) throws {
        let parsed = try #require(Timestamp.parse(text))
        let expected = try #require(Self.reference(text))
        #expect(abs(parsed.timeIntervalSince(expected)) < 0.001)
    }

    @Test func keepsNineFractionDigits() throws {
        let parsed = try #require(Timestamp.parse("2026-11-30T08:00:00.123456789Z"))
        #expect(abs(parsed.timeIntervalSince1970 - 1_796_025_600.123456789) < 1e-6)
    }

    /// The poison pill: ICU's `\d` matched any Unicode digit, then `Int(...)!` crashed the process.
    @Test(arguments: [
        "2026-11-29T١٠:00:00Z", "٢٠٢٦-11-29T10:00:00Z", "2026-١١-29T10:00:00Z", "2026-11-٢٩T10:00:00Z", "2026-11-29T10:٠٠:00Z",
        "2026-11-29T10:00:٠٠Z", "2026-11-29T10:00:00+٠١:00", "2026-11-29T10:00:00.٥Z", "２０２６-11-29T10:00:00Z", "2026-11-29T१०:00:00Z",
    ])
    func unicodeDigitsAreNotDigits(_ text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test(arguments: [
        "", "2026-11-30", "2026-11-30T09:00Z", "2026-11-30T09:00:00", "2026-11-30 09:00:00Z", "2026-11-30t09:00:00z", "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z", "2026-11-31T00:00:00Z", "2026-11-30T24:00:00Z", "2026-11-30T23:60:00Z", "2026-11-30T23:59:60Z",
        "2026-11-30T09:00:00+1:00", "2026-11-30T09:00:00+24:00", "2026-11-30T09:00:00.Z", "2026-11-30T09:00:00.1234567890Z",
        "1899-12-31T00:00:00Z", "+2026-11-30T09:00:00Z", "2026-11-30T09:00:00Z ", " 2026-11-30T09:00:00Z", "2026-11-30T09:00:00+01:00\n",
        "99999-11-30T09:00:00Z",
    ])
    func rejectsWhatIsNotRFC3339(_ text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test func formatsLikeFoundationInEveryZone() throws {
        var generator = SystemRandomNumberGenerator()
        let zones = ["UTC", "Europe/Paris", "America/Martinique", "Asia/Kathmandu", "Australia/Sydney", "Pacific/Chatham", "America/St_Johns"]
        for _ in 0..<2000 {
            let date = Date(timeIntervalSince1970: Double(Int.random(in: 0..<4_102_444_800, using: &generator)))
            let zone = try #require(TimeZone(identifier: zones.randomElement(using: &generator) ?? "UTC"))
            let oracle = ISO8601DateFormatter()
            oracle.formatOptions = [.withInternetDateTime]
            oracle.timeZone = zone
            #expect(Timestamp.format(date, in: zone) == oracle.string(from: date))
            #expect(Timestamp.parse(Timestamp.format(date, in: zone)) == date)
        }
    }

    /// Log lines carry milliseconds, as Foundation's formatter did (it was built for every line).
    @Test func formatsMillisecondsLikeFoundation() {
        var rng = SplitMix(seed: 5)
        let oracle = ISO8601DateFormatter()
        oracle.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for _ in 0..<2000 {
            let date = Date(timeIntervalSince1970: Double(rng.next() % 4_102_444_800_000) / 1000)
            #expect(Timestamp.formatMilliseconds(date) == oracle.string(from: date), "\(date.timeIntervalSince1970)")
        }
        #expect(Timestamp.formatMilliseconds(Date(timeIntervalSince1970: -0.0005)) == "1969-12-31T23:59:59.999Z")
    }

    @Test func formatTruncatesFractionsAndHandlesDatesBefore1970() {
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0.999)) == "1970-01-01T00:00:00Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59Z")
    }

    @Test func recordWithUnicodeDigitsIsQuarantinedNotCrashed() {
        let found = issues(record(["not_before": "2026-11-29T١٠:00:00Z"]))
        #expect(found.map(\.field) == ["not_before"])
    }
}

/// What decoders let through silently, refused by the parser (as refusals, not syntax errors).
@Suite struct JSONRefusalTests {
    static func parse(_ json: String) -> JSONParseError? {
        do {
            _ = try JSONParser.parse(Array(json.utf8))
            return nil
        } catch { return error }
    }

    @Test(arguments: [
        (#"{"id": "A", "id": "B"}"#, "the key 'id' appears twice in one object"),
        (#"{"a": {"x": 1}, "b": {"x": 2, "x": 3}}"#, "the key 'x' appears twice in one object"),
        (#"{"amount": "10.00", "\u0061mount": "1000.00"}"#, "the key 'amount' appears twice in one object"),
        (#"{"k\"": 1, "k\u0022": 2}"#, "the key 'k\"' appears twice in one object"),
        (String(repeating: "[", count: 40) + String(repeating: "]", count: 40), "nested deeper than 32 levels"),
    ])
    func refused(_ json: String, _ reason: String) {
        let error = Self.parse(json)
        #expect(error?.reason == reason)
        #expect(error?.isRefusal == true)
    }

    @Test(arguments: [
        #"{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]}"#, #"{"a": "{\"a\": 1, \"a\": 2}"}"#, #"["a", "a"]"#, #"{"x": ["id", "id"]}"#,
    ])
    func allowed(_ json: String) {
        #expect(Self.parse(json) == nil)
    }

    @Test(arguments: [#"{"a": "unterminated"#, ""])
    func aSyntaxErrorIsNotARefusal(_ json: String) {
        #expect(Self.parse(json)?.isRefusal == false)
    }

    @Test func aRecordWithADuplicateKeyOrAnAbsurdDateIsRefused() {
        let duplicate = String(decoding: record(), as: UTF8.self).replacingOccurrences(of: #""id":"F2026-0042-R2""#, with: #""id":"F2026-0042-R2","id":"X""#)
        #expect(issues(Data(duplicate.utf8)).map(\.reason).first?.contains("appears twice") == true, "\(duplicate.prefix(80))")
        #expect(issues(record(["not_before": "9999-12-31T00:00:00Z"])).map(\.field) == ["not_before"])
        #expect(issues(record(invoice: ["due_on": "9999-12-31"])).map(\.field) == ["invoices[0].due_on"])
    }
}
