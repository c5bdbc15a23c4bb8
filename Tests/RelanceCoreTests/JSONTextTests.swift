import Foundation
import Testing

@testable import RelanceCore

/// `JSONText.stringObject` reads back exactly what `JSONText.object` writes (the ledger's stored
/// movements), and refuses anything else rather than guess.
@Suite struct JSONTextTests {
    @Test func roundTripsEveryString() {
        var rng = SplitMix(seed: 99)
        let alphabet: [String] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{1F}", "é", "€", "𝄞", "😀", "\u{2028}", ":", ",", "{", "}"]
        for _ in 0..<2_000 {
            var fields: [String: String] = [:]
            for _ in 0..<Int(rng.next() % 6) {
                let key = (0..<Int(rng.next() % 5)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
                let value = (0..<Int(rng.next() % 12)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
                fields[key] = value
            }
            let text = JSONText.object(fields)
            #expect(JSONText.stringObject(text) == fields, "\(text)")
        }
        #expect(JSONText.stringObject(#"{"type":"payment","amount":"50000","paid_on":"2026-10-01"}"#) == ["type": "payment", "amount": "50000", "paid_on": "2026-10-01"])
        #expect(JSONText.stringObject(#"{"a":"\ud834\udd1e"}"#) == ["a": "𝄞"], "a surrogate pair")
    }

    @Test func refusesWhatTheWriterNeverWrites() {
        for text in [
            "", "{", "}", "[]", #"{"a":1}"#, #"{"a":"b" }"#, #"{ "a":"b"}"#, #"{"a":"b",}"#, #"{"a":"b"}x"#, #"{"a":"\x"}"#, #"{"a":"\ud834"}"#,
            #"{"a":"\udd1e"}"#, "{\"a\":\"b\nc\"}", #"{"a":"b"#, #"{"a":null}"#, #"{"a":"\u12"}"#,
        ] {
            #expect(JSONText.stringObject(text) == nil, "\(text.debugDescription)")
        }
        #expect(JSONText.stringObject("{}") == [:])
    }
}

@Suite struct FixedPointTests {
    @Test func matchesPrintfHalfAwayFromZero() {
        #expect(FixedPoint.text(0.1234, decimals: 3) == "0.123")
        #expect(FixedPoint.text(0.0005, decimals: 3) == "0.001")
        #expect(FixedPoint.text(-1.5, decimals: 0) == "-2" && FixedPoint.text(-0.0004, decimals: 3) == "0.000")
        #expect(FixedPoint.text(1234.5, decimals: 2) == "1234.50" && FixedPoint.text(-0.8, decimals: 2) == "-0.80")
        #expect(FixedPoint.text(.nan, decimals: 2) == "nan")
        var rng = SplitMix(seed: 3)
        for _ in 0..<1_000 {
            let x = Double(Int64(bitPattern: rng.next()) % 10_000_000) / 1_000
            // printf rounds half to even on the binary value; away from exact halves they agree.
            if abs((abs(x) * 100).truncatingRemainder(dividingBy: 1) - 0.5) > 1e-6 {
                #expect(FixedPoint.text(x, decimals: 2) == String(format: "%.2f", x), "\(x)")
            }
        }
    }
}
