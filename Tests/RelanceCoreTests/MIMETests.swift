import Foundation
import Testing

@testable import RelanceCore

@Suite struct MIMETests {
    func message(subject: String = "Relance – facture F2026-0042 : 1 234,50 €", name: String = "Élodie Martin", attachments: [MailAttachment] = [])
        -> MailMessage
    {
        MailMessage(
            from: Mailbox(name: "Exemple SAS", address: "relances@example.fr"), to: Mailbox(name: name, address: "elodie@example.fr"),
            subject: subject, text: "Bonjour,\nLigne très longue " + String(repeating: "é", count: 120) + "\n.point en début de ligne\n",
            html: "<p>Bonjour</p>", attachments: attachments, messageID: "relance.F1.email@example.fr", date: Date(timeIntervalSince1970: 0))
    }

    func lines(_ data: Data) -> [String] { String(decoding: data, as: UTF8.self).components(separatedBy: "\r\n") }

    @Test func requiredHeadersAndCRLF() throws {
        let data = try MIME.compose(message(), boundarySeed: "seed")
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.hasPrefix("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"))
        for header in ["From: Exemple SAS <relances@example.fr>", "Message-ID: <relance.F1.email@example.fr>", "MIME-Version: 1.0"] {
            #expect(text.contains(header + "\r\n"))
        }
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "bare LF")
        #expect(text.contains("Content-Type: multipart/alternative;"))
        let plain = try #require(text.range(of: "text/plain"))
        let html = try #require(text.range(of: "text/html"))
        #expect(plain.lowerBound < html.lowerBound, "text/plain must come before text/html")
    }

    @Test func linesStayShort() throws {
        let data = try MIME.compose(message(subject: String(repeating: "Relance très importante ", count: 10)), boundarySeed: "seed")
        for line in lines(data) { #expect(line.utf8.count <= 78, "\(line)") }
    }

    @Test func encodedWordsAreShortAndDecodable() {
        let words = MIME.encodedWords(String(repeating: "é€", count: 60), firstLineBudget: 66)
        for word in words {
            #expect(word.count <= 75)
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="))
        }
        let decoded = words.map { w -> String in
            let b64 = String(w.dropFirst(10).dropLast(2))
            return String(decoding: Data(base64Encoded: b64)!, as: UTF8.self)
        }.joined()
        #expect(decoded == String(repeating: "é€", count: 60))
    }

    @Test func headerInjectionIsImpossible() {
        #expect(throws: MIMEError.self) { try MIME.compose(message(name: "Mallory\r\nBcc: x@example.org"), boundarySeed: "s") }
        #expect(throws: MIMEError.self) { try MIME.compose(message(subject: "Hi\nBcc: x@example.org"), boundarySeed: "s") }
        var m = message()
        m.to = Mailbox(name: nil, address: "a@example.org\r\nBcc: x@example.org")
        #expect(throws: MIMEError.self) { try MIME.compose(m, boundarySeed: "s") }
    }

    @Test func quotedPrintable() {
        let qp = MIME.quotedPrintable("café = 1 234,50\u{00A0}€ \n.fin")
        #expect(qp == "caf=C3=A9 =3D 1 234,50=C2=A0=E2=82=AC=20\r\n=2Efin")
        let long = MIME.quotedPrintable(String(repeating: "a", count: 200))
        for line in long.components(separatedBy: "\r\n") { #expect(line.count <= 76) }
        #expect(long.replacingOccurrences(of: "=\r\n", with: "") == String(repeating: "a", count: 200))
    }

    /// Any text, encoded: lines of at most 76 octets, printable ASCII only, no line that starts
    /// with a dot (SMTP's end of data) or ends with a space or a tab, and it decodes to the text
    /// (its line breaks, CR, LF or CRLF, become CRLF on the wire).
    @Test(arguments: 0..<8) func quotedPrintableRoundTrips(seed: UInt64) {
        var rng = SplitMix(seed: seed)
        let pieces = ["a", "Z", " ", "\t", "=", ".", "\n", "\r\n", "\r", "é", "€", "\u{00A0}", "😀", "~", "0", "<", "\u{7F}"]
        for _ in 0..<200 {
            let count = Int(rng.next() % 300)
            let text = (0..<count).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
            let encoded = MIME.quotedPrintable(text)
            for line in encoded.components(separatedBy: "\r\n") {
                #expect(line.utf8.count <= 76, "\(text.debugDescription)")
                #expect(!line.hasPrefix("."), "\(text.debugDescription)")
                #expect(!(line.hasSuffix(" ") || line.hasSuffix("\t")), "\(text.debugDescription)")
                #expect(line.utf8.allSatisfy { ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x09 }, "\(text.debugDescription)")
            }
            // The reader gives hard line breaks back as LF.
            let expected = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            #expect(MIMEReader.decodeQuotedPrintable(encoded) == Data(expected.utf8), "\(text.debugDescription)")
        }
    }

    /// An ASCII subject that holds "=?" would read as an RFC 2047 encoded word: it is encoded.
    @Test func anASCIISubjectThatLooksEncodedIsEncoded() throws {
        #expect(!MIME.encodedHeader("Subject", "Relance =?UTF-8?B?x?=").hasPrefix("Subject: Relance =?UTF-8?B?x?="))
        #expect(MIME.encodedHeader("Subject", "Relance = ? 1") == "Subject: Relance = ? 1\r\n")
    }

    @Test(arguments: [
        ("elodie@example.fr", nil), ("a.b+c@sub.example.fr", nil), ("a@b@example.fr", "must contain exactly one '@'"),
        ("a..b@example.fr", "local part 'a..b' is not a dot-atom of ASCII characters"), ("é@example.fr", "local part 'é' is not a dot-atom of ASCII characters"),
        ("a@example", "domain 'example' has no dot"), ("a@example..fr", "domain 'example..fr' is not a valid host name (use its A-label form for IDNs)"),
        ("a@bad-.example.fr", "domain 'bad-.example.fr' is not a valid host name (use its A-label form for IDNs)"),
        ("a@exa mple.fr", "domain 'exa mple.fr' is not a valid host name (use its A-label form for IDNs)"),
    ] as [(String, String?)])
    func emailAddressProblems(address: String, problem: String?) {
        #expect(EmailAddress.problem(address) == problem)
    }

    @Test func attachmentsMakeMultipartMixed() throws {
        let pdf = Data("%PDF-1.4 test".utf8)
        let data = try MIME.compose(message(attachments: [MailAttachment(filename: "F2026-0042.pdf", data: pdf)]), boundarySeed: "s")
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("Content-Type: multipart/mixed;"))
        #expect(text.contains("filename=\"F2026-0042.pdf\""))
        #expect(text.contains(pdf.base64EncodedString()))
    }

    @Test func rfc5322Dates() {
        #expect(MIME.rfc5322Date(Date(timeIntervalSince1970: 0)) == "Thu, 01 Jan 1970 00:00:00 +0000")
        #expect(MIME.rfc5322Date(Date(timeIntervalSince1970: 1_795_948_388.7)) == "Sun, 29 Nov 2026 10:33:08 +0000")
        #expect(MIME.rfc5322Date(Date(timeIntervalSince1970: 951_782_400)) == "Tue, 29 Feb 2000 00:00:00 +0000")
        #expect(MIME.rfc5322Date(Date(timeIntervalSince1970: -1)) == "Wed, 31 Dec 1969 23:59:59 +0000")
    }

    @Test func nonASCIIFileNameUsesRFC2231() {
        #expect(MIME.parameter("filename", "facture é.pdf") == "filename*=utf-8''facture%20%C3%A9.pdf")
    }

    @Test func displayNames() {
        #expect(MIME.phrase("Paul Durand") == "Paul Durand")
        #expect(MIME.phrase("Dupont, \"Fils\"") == "\"Dupont, \\\"Fils\\\"\"")
        #expect(MIME.phrase("Élodie").hasPrefix("=?UTF-8?B?"))
    }

    @Test func messageIDIsStableAndSafe() {
        let id = MIME.messageID(reminderID: "F 2026/42<x>", channel: "email", domain: "example.fr")
        #expect(id == "relance.F=202026=2F42=3Cx=3E.email@example.fr")
        #expect(MIME.messageID(reminderID: "F 2026/42<x>", channel: "email", domain: "example.fr") == id)
    }

    /// The byte search the secret scrubber and the header checks rely on: every position, partial
    /// matches that restart inside themselves, the empty needle, the end of the text.
    @Test func byteSearchFindsOccurrencesAnywhere() {
        #expect("abcabd".utf8.containsBytes(of: "abd".utf8))
        #expect("aaab".utf8.containsBytes(of: "aab".utf8))
        #expect("tok-secret".utf8.containsBytes(of: "secret".utf8))
        #expect("secret".utf8.containsBytes(of: "secret".utf8))
        #expect(!"abcab".utf8.containsBytes(of: "abd".utf8))
        #expect(!"secre".utf8.containsBytes(of: "secret".utf8))
        #expect(!"".utf8.containsBytes(of: "a".utf8))
        #expect("x".utf8.containsBytes(of: "".utf8))
        #expect("é-tok".utf8.containsBytes(of: "tok".utf8))
    }
}
