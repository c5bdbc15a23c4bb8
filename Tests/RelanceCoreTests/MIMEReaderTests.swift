import Foundation
import Testing

@testable import RelanceCore

/// The preview's decoded view reads back what `MIME.compose` wrote: a round trip over awkward
/// names, subjects, texts and file names.
@Suite struct MIMEReaderTests {
    static let samples: [(name: String, subject: String, text: String, file: String)] = [
        ("Élodie Martin", "Relance : facture F2026-0042 échue", "Bonjour Élodie,\nvous nous devez 1 234,50 €.\n.\nligne=avec=égal", "facture été.pdf"),
        ("O'Brien \"Jr\"", "Plain ASCII subject that is long enough to be folded over more than one header line, surely", "ascii only", "a.pdf"),
        ("李小龙", "請付款 — 期限 2026-12-05 🙂", "多字节文本\r\nsecond line\rthird", "發票.pdf"),
        ("Zoë", "=?UTF-8?B?bm90IGEgd29yZA==?= stays as written", "=41 is not decoded twice", "x.pdf"),
        ("A", String(repeating: "é", count: 200), String(repeating: "ça ", count: 400), "long-\(String(repeating: "n", count: 80)).pdf"),
    ]

    @Test(arguments: 0..<samples.count)
    func whatComposeWritesReadsBack(_ index: Int) throws {
        let sample = Self.samples[index]
        let html =
            "<html><head><style>p{color:red}</style></head><body><p>Bonjour&nbsp;\(sample.name),</p><p>1&#8239;234,50&#x20AC; &amp; more</p></body></html>"
        let pdf = Data("%PDF-1.4 \(index)".utf8)
        let message = MailMessage(
            from: Mailbox(name: "Exemple SAS", address: "relances@example.fr"), to: Mailbox(name: sample.name, address: "d@example.org"),
            replyTo: Mailbox(name: nil, address: "compta@example.fr"), subject: sample.subject, text: sample.text, html: html,
            attachments: [MailAttachment(filename: sample.file, data: pdf)], messageID: "relance.T.email@example.fr", date: Date(timeIntervalSince1970: 0))
        let view = MIMEReader.read(try MIME.compose(message, boundarySeed: "seed"))
        #expect(view.header("Subject") == sample.subject)
        #expect(
            view.header("To")?.contains(sample.name.replacingOccurrences(of: "\"", with: "\\\"")) == true || view.header("To")?.contains(sample.name) == true)
        #expect(view.header("Reply-To") == "compta@example.fr")
        let expectedText = sample.text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        #expect(view.text?.replacingOccurrences(of: "\r\n", with: "\n").trimmingCharacters(in: .newlines) == expectedText)
        #expect(view.attachments == [MIMEReader.Attachment(filename: sample.file, contentType: "application/pdf", size: pdf.count)])
        let htmlText = MIMEReader.htmlAsText(try #require(view.html))
        #expect(htmlText == "Bonjour\u{00A0}\(sample.name),\n\n1\u{202F}234,50€ & more", "paragraphs keep a blank line between them")
    }

    @Test func renderShowsDecodedHeadersAndParts() throws {
        let message = MailMessage(
            from: Mailbox(name: "Exemple SAS", address: "relances@example.fr"), to: Mailbox(name: "Élodie", address: "e@example.fr"),
            subject: "Échéance dépassée", text: "Bonjour Élodie", messageID: "m@example.fr", date: Date(timeIntervalSince1970: 0))
        let rendered = MIMEReader.render(MIMEReader.read(try MIME.compose(message, boundarySeed: "s")))
        #expect(rendered.contains("Subject: Échéance dépassée"))
        #expect(rendered.contains("To: Élodie <e@example.fr>"))
        #expect(rendered.contains("--- text ---\nBonjour Élodie"))
        #expect(!rendered.contains("=C3"), "no quoted-printable left")
    }

    @Test func malformedInputIsShownNotDropped() {
        #expect(MIMEReader.decodeWords("=?UTF-8?B?###?= tail") == "=?UTF-8?B?###?= tail")
        #expect(MIMEReader.decodeQuotedPrintable("a=ZZb=\n c") == Data("a=ZZb c".utf8))
        #expect(MIMEReader.decodeWords("=?UTF-8?Q?caf=C3=A9_cr=C3=A8me?=") == "café crème")
        #expect(MIMEReader.decodeWords("=?ISO-8859-1?Q?caf=E9?= =?UTF-8?B?w6k=?=") == "caféé")
        let view = MIMEReader.read(Data("Subject: x\r\n\r\nno structure at all".utf8))
        #expect(view.text == "no structure at all")
    }
}
