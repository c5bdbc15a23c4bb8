import Foundation
import RelanceCore
import Testing

@testable import RelanceTransport

@Suite struct SMTPReplyParserTests {
    func parse(_ chunks: [String]) throws -> [SMTPReply] {
        var parser = SMTPReplyParser()
        var replies: [SMTPReply] = []
        for chunk in chunks {
            Array(chunk.utf8).withUnsafeBytes { parser.append($0) }
            while let reply = try parser.next() { replies.append(reply) }
        }
        #expect(parser.isEmpty)
        return replies
    }

    @Test func repliesSplitAnywhereAreReadWhole() throws {
        let text = "250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n354 End data with <CR><LF>.<CR><LF>\r\n550 5.1.1 User unknown\r\n"
        let whole = try parse([text])
        #expect(whole == [
            SMTPReply(code: 250, lines: ["mx.example.org", "PIPELINING", "8BITMIME"]),
            SMTPReply(code: 354, lines: ["End data with <CR><LF>.<CR><LF>"]),
            SMTPReply(code: 550, lines: ["5.1.1 User unknown"]),
        ])
        // Every split of the same octets, one octet at a time included, reads the same replies.
        for cut in 1..<text.utf8.count {
            let bytes = Array(text.utf8)
            #expect(try parse([String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]) == whole)
        }
        #expect(try parse(text.map { String($0) }) == whole)
    }

    @Test func aBareCodeAndBareLineFeedsAreReplies() throws {
        #expect(try parse(["250\n", "221 bye\n"]) == [SMTPReply(code: 250, lines: [""]), SMTPReply(code: 221, lines: ["bye"])])
    }

    @Test func garbageIsAnErrorNotAReply() {
        for bad in ["hello\r\n", "25 x\r\n", "250x\r\n", "2a0 x\r\n", "250-a\r\n251 b\r\n"] {
            var parser = SMTPReplyParser()
            Array(bad.utf8).withUnsafeBytes { parser.append($0) }
            #expect(throws: SMTPReplyParser.Failure.self, "\(bad.debugDescription)") {
                while try parser.next() != nil {}
            }
        }
    }

    @Test func endlessLinesAndRepliesAreBounded() {
        var parser = SMTPReplyParser()
        Array(String(repeating: "2", count: SMTPReplyParser.maxLine + 1).utf8).withUnsafeBytes { parser.append($0) }
        #expect(throws: SMTPReplyParser.Failure.tooLong) { _ = try parser.next() }

        var many = SMTPReplyParser()
        Array(String(repeating: "250-more\r\n", count: SMTPReplyParser.maxLines + 1).utf8).withUnsafeBytes { many.append($0) }
        #expect(throws: SMTPReplyParser.Failure.tooLong) { while try many.next() != nil {} }
    }
}

@Suite struct SMTPTransactionTests {
    let message = Data("Subject: x\r\n\r\n.hidden\r\nline\r\n..two".utf8)

    func reply(_ code: Int, _ text: String = "ok") -> SMTPReply { SMTPReply(code: code, lines: [text]) }

    func string(_ step: SMTPTransaction.Step) -> String? {
        guard case .send(let bytes) = step else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func pipelinedTheEnvelopeGoesInOneWriteAndTheContentAfterItsReplies() {
        var t = SMTPTransaction(from: "relances@example.fr", to: "a@example.org", message: message, pipelining: true)
        #expect(string(t.start()) == "MAIL FROM:<relances@example.fr>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n")
        #expect(t.sent() == .receive)
        #expect(t.receive(reply(250)) == .receive)
        #expect(t.receive(reply(250)) == .receive)
        #expect(!t.contentSent)
        // Dot-stuffed, the last line ended, then the terminator.
        #expect(string(t.receive(reply(354))) == "Subject: x\r\n\r\n..hidden\r\nline\r\n...two\r\n.\r\n")
        #expect(!t.contentSent, "handed over, not yet written")
        #expect(t.sent() == .receive)
        #expect(t.contentSent)
        #expect(t.receive(reply(250, "2.0.0 Ok: queued as 4F2")) == .done(.sent(providerID: nil, code: 250, detail: "250 2.0.0 Ok: queued as 4F2"), keepConnection: true))
    }

    @Test func withoutPipeliningEachCommandWaitsForItsReply() {
        var t = SMTPTransaction(from: "f@example.fr", to: "a@example.org", message: message, pipelining: false)
        #expect(string(t.start()) == "MAIL FROM:<f@example.fr>\r\n")
        #expect(t.sent() == .receive)
        #expect(string(t.receive(reply(250))) == "RCPT TO:<a@example.org>\r\n")
        #expect(t.sent() == .receive)
        #expect(string(t.receive(reply(251))) == "DATA\r\n")
        #expect(t.sent() == .receive)
        #expect(string(t.receive(reply(354)))?.hasSuffix("\r\n.\r\n") == true)
        #expect(t.sent() == .receive)
        guard case .done(.sent, true) = t.receive(reply(250)) else { Issue.record("not sent"); return }
    }

    @Test func aRefusedRecipientIsPermanentAndNoContentGoesOut() {
        for pipelining in [true, false] {
            var t = SMTPTransaction(from: "f@example.fr", to: "x@example.org", message: message, pipelining: pipelining)
            _ = t.start()
            _ = t.sent()
            var step = t.receive(reply(250))
            if !pipelining { _ = t.sent() }
            step = t.receive(reply(550, "5.1.1 User unknown"))
            if pipelining {
                #expect(step == .receive)
                step = t.receive(reply(554, "5.5.1 No valid recipients"))
            }
            #expect(step == .done(.permanent(code: 550, detail: "550 5.1.1 User unknown"), keepConnection: false), "pipelining \(pipelining)")
            #expect(!t.contentSent)
        }
    }

    @Test func aServerThatAcceptsDataAfterRefusingEveryRecipientGetsAnEmptyContent() {
        var t = SMTPTransaction(from: "f@example.fr", to: "x@example.org", message: message, pipelining: true)
        _ = t.start()
        _ = t.sent()
        _ = t.receive(reply(250))
        _ = t.receive(reply(450, "4.2.0 Greylisted"))
        #expect(string(t.receive(reply(354))) == ".\r\n")
        _ = t.sent()
        #expect(t.receive(reply(554)) == .done(.transient(code: 450, detail: "450 4.2.0 Greylisted", retryAfter: nil), keepConnection: false))
    }

    @Test func theContentsReplyDecides() {
        for (code, expected) in [
            (452, SendOutcome.transient(code: 452, detail: "452 full", retryAfter: nil)),
            (554, .permanent(code: 554, detail: "554 full")),
            (421, .transient(code: 421, detail: "421 full", retryAfter: nil)),
        ] {
            var t = SMTPTransaction(from: "f@example.fr", to: "a@example.org", message: message, pipelining: true)
            _ = t.start()
            _ = t.sent()
            _ = t.receive(reply(250))
            _ = t.receive(reply(250))
            _ = t.receive(reply(354))
            _ = t.sent()
            // After a refused content the session goes on, unless the server is closing it (421).
            #expect(t.receive(reply(code, "full")) == .done(expected, keepConnection: code != 421))
        }
    }

    @Test func aLostConnectionIsInDoubtOnlyOnceTheWholeContentWentOut() {
        var t = SMTPTransaction(from: "f@example.fr", to: "a@example.org", message: message, pipelining: true)
        _ = t.start()
        _ = t.sent()
        #expect(t.connectionLost("closed") == .transient(code: nil, detail: "closed", retryAfter: nil))
        _ = t.receive(reply(250))
        _ = t.receive(reply(250))
        _ = t.receive(reply(354))
        #expect(t.connectionLost("closed") == .transient(code: nil, detail: "closed", retryAfter: nil), "content not yet written")
        _ = t.sent()
        #expect(t.connectionLost("closed") == .inDoubt(detail: "no reply after the whole message was sent: closed"))
    }

    @Test func dotStuffingDecodesBackToTheMessage() {
        // What a server does with DATA (RFC 5321 §4.5.2): strip one leading dot, stop at ".".
        func receive(_ content: [UInt8]) -> String {
            var lines = String(decoding: content, as: UTF8.self).components(separatedBy: "\r\n")
            #expect(lines.removeLast() == "")
            #expect(lines.removeLast() == ".")
            return lines.map { $0.hasPrefix(".") ? String($0.dropFirst()) : $0 }.joined(separator: "\r\n") + "\r\n"
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let lines = (0..<Int.random(in: 1...6, using: &generator)).map { _ in
                String((0..<Int.random(in: 0...5, using: &generator)).map { _ in [".", "a", " ", "é"].randomElement(using: &generator)! })
            }
            let text = lines.joined(separator: "\r\n") + "\r\n"
            #expect(receive(SMTPTransaction.content(of: Data(text.utf8))) == text)
        }
        #expect(SMTPTransaction.content(of: Data()) == Array(".\r\n".utf8))
    }

    @Test func pipeliningIsReadFromTheLastEHLOReply() {
        let plain = ["220 mx ESMTP", "250-mx", "250-PIPELINING", "250 8BITMIME"]
        #expect(SMTPTransaction.capability("PIPELINING", in: plain))
        #expect(!SMTPTransaction.capability("PIPELINING", in: ["220 mx ESMTP", "250-mx", "250 8BITMIME"]))
        #expect(!SMTPTransaction.capability("PIPELINING", in: ["220 mx ESMTP", "250 mx"]))
        // The greeting's own text and the host line are not capabilities.
        #expect(!SMTPTransaction.capability("PIPELINING", in: ["220 PIPELINING", "250-PIPELINING", "250 SIZE"]))
        // After STARTTLS, the second EHLO's reply counts, and AUTH's replies after it do not end it.
        let tls = ["220 mx ESMTP", "250-mx", "250-PIPELINING", "250 STARTTLS", "220 2.0.0 Ready to start TLS", "250-mx", "250 AUTH PLAIN", "235 ok"]
        #expect(!SMTPTransaction.capability("PIPELINING", in: tls))
        let tlsPipelining = ["220 mx ESMTP", "250-mx", "250 STARTTLS", "220 go ahead", "250-mx", "250-pipelining", "250 AUTH PLAIN", "235 ok"]
        #expect(SMTPTransaction.capability("PIPELINING", in: tlsPipelining))
    }
}
