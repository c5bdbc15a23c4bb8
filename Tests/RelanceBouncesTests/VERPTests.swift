import Foundation
import RelanceCore
import Testing

@testable import RelanceBounces

@Suite struct VERPTests {
    let verp = VERP(domain: "Bounce.Example.FR", secret: "a-secret-of-32-characters-long!!")

    @Test func aReturnPathNamesItsDeliveryAndVerifies() throws {
        let path = verp.returnPath(reminderID: "F2026-0042-R2")
        #expect(path.hasPrefix("bounces+") && path.hasSuffix("@bounce.example.fr"))
        let local = path.split(separator: "@")[0]
        #expect(local.count <= 64, "a usual id keeps the local part within RFC 5321's 64 octets")
        #expect(local.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "+" || $0 == "-") })
        #expect(try verp.verify(path).get() == DeliveryKey(reminderID: "F2026-0042-R2", channel: .email))
        // An MTA that upper-cases, or the header form, or in angle brackets.
        #expect(try verp.verify(path.uppercased()).get().reminderID == "F2026-0042-R2")
        #expect(try verp.verify(verp.token(reminderID: "F2026-0042-R2")).get().reminderID == "F2026-0042-R2")
        #expect(try verp.verify("<\(path)>").get().reminderID == "F2026-0042-R2")
        // Ids with any UTF-8 and case survive: base32 carries the bytes, not the letters.
        for id in ["a", "A", "Facture/été 2026 #3", String(repeating: "Z", count: 128)] {
            #expect(try verp.verify(verp.returnPath(reminderID: id)).get().reminderID == id)
        }
    }

    @Test func forgedOrAlteredTokensAreRefused() {
        let token = verp.token(reminderID: "R-1")
        let other = VERP(domain: "bounce.example.fr", secret: "another-secret-of-32-characters!")
        // Signed with another key.
        #expect(verp.verify(other.returnPath(reminderID: "R-1")) == .failure(.forged(other.token(reminderID: "R-1"))))
        // The id swapped for another's, the MAC kept.
        let mac = token.split(separator: "-")[1]
        let swapped = verp.token(reminderID: "R-2").split(separator: "-")[0] + "-" + mac
        #expect(verp.verify("bounces+\(swapped)@bounce.example.fr") == .failure(.forged(String(swapped))))
        // Every single character changed, one at a time, fails.
        for i in token.indices where token[i] != "-" {
            var altered = token
            altered.replaceSubrange(i...i, with: token[i] == "a" ? "b" : "a")
            #expect(throws: VERP.Rejection.self) { try verp.verify(altered).get() }
        }
        // Truncated, padded, empty.
        #expect(throws: VERP.Rejection.self) { try verp.verify(String(token.dropLast())).get() }
        #expect(throws: VERP.Rejection.self) { try verp.verify(token + "a").get() }
        #expect(verp.verify("") == .failure(.notOurs))
        // Another domain's or another sender's bounce address is not ours, not a forgery.
        #expect(verp.verify("bounces+\(token)@elsewhere.example") == .failure(.notOurs))
        #expect(verp.verify("newsletter-bounces@bounce.example.fr") == .failure(.notOurs))
        #expect(verp.verify("bounces+zz!!@bounce.example.fr") == .failure(.forged("zz!!")))
    }

    @Test func base32RoundTripsAndRejectsNonCanonicalText() {
        var rng = SystemRandomNumberGenerator()
        for length in 0..<40 {
            let bytes = Data((0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) })
            let text = Base32.encode(bytes)
            #expect(Base32.decode(Substring(text)) == bytes)
            #expect(Base32.decode(Substring(text.uppercased())) == bytes)
        }
        // RFC 4648 test vectors (lower case, no padding).
        #expect(Base32.encode(Data("foobar".utf8)) == "mzxw6ytboi")
        #expect(Base32.encode(Data("f".utf8)) == "my")
        #expect(Base32.decode("mz") == nil, "non-zero trailing bits: not the encoding of anything")
        #expect(Base32.decode("m1") == nil)
    }
}
