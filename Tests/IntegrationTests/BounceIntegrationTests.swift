import Foundation
import RelanceBounces
import RelanceCore
import RelanceStore
import Testing

/// Bounces end to end (issue 14): a real Postfix accepts each reminder and then bounces it with
/// its own DSN; the DSN comes back to the VERP address, through the pipe or into a Maildir, and
/// the delivery becomes `bounced`, the address is suppressed and the SMS fallback goes out.
@Suite(.serialized) struct BounceIntegrationTests {
    static let secret = "integration-bounce-secret-00001"
    static var bounceSection: String { "{ domain: \(PrivatePostfix.returnDomain), secret: \"\(secret)\" }" }

    /// A reminder to an address Postfix bounces, with an SMS fallback.
    static func bouncing(_ id: String) -> [String: Any] {
        Records.reminder(id, email: "jean.martin@\(PrivatePostfix.bouncingDomain)", extra: ["fallback": ["sms"]])
    }

    /// The ledger exists before the daemon starts, owned by the user the pipe runs as (as the
    /// `relance` user owns it in production); SQLite gives the files a root process creates next
    /// to it (WAL, shared memory) the same owner.
    static func ledgerOwned(by user: (uid: UInt32, gid: UInt32), in sandbox: Sandbox) throws {
        _ = try Ledger(path: sandbox.ledgerPath)
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: sandbox.ledgerPath + suffix) {
            chown(sandbox.ledgerPath + suffix, user.uid, user.gid)
        }
        chmod(sandbox.root, 0o777)
    }

    /// What every way in must end with: bounced, suppressed (reason bounced), the SMS sent, and
    /// the bounce an event of the delivery.
    static func expectBounced(_ id: String, in sandbox: Sandbox, via source: String) async throws {
        try await eventually("\(id): the email bounced and the SMS fallback went out", timeout: .seconds(90)) {
            guard let s = try? await statuses(try sandbox.ledger()) else { return false }
            return s["\(id)/email"] == "bounced" && s["\(id)/sms"] == "sent"
        }
        let list = try await sandbox.relance(["suppress", "--list", "--format", "csv"])
        #expect(list.stdout.contains("jean.martin@\(PrivatePostfix.bouncingDomain),bounced,bounce:\(source),"), "\(list.stdout)")
        let receipts = try await sandbox.relance(["receipts", "--reminder", id])
        #expect(receipts.stdout.contains("hard bounce for jean.martin@\(PrivatePostfix.bouncingDomain) (5.1.1"), "\(receipts.stdout)")
        #expect(jsonLines(sandbox.root + "/outbox/sms.jsonl").count == 1, "one SMS fallback, no more")
    }

    @Test(.enabled(if: PrivatePostfix.available)) func aPostfixDSNThroughThePipeBouncesSuppressesAndFallsBack() async throws {
        let sandbox = try Sandbox()
        let postfix = try await PrivatePostfix(in: sandbox, returning: .pipe(config: sandbox.configPath))
        do {
            try sandbox.writeConfig(smtpPort: postfix.port, bounce: Self.bounceSection)
            try Self.ledgerOwned(by: PrivatePostfix.nobody, in: sandbox)
            try sandbox.dropLines("r.jsonl", [Self.bouncing("B-1")])
            let daemon = try sandbox.start(["serve"])
            try await Self.expectBounced("B-1", in: sandbox, via: "pipe")
            // Postfix's own words: the message was accepted, bounced by the error transport, and the
            // DSN piped to relance bounce, which exited 0.
            #expect(postfix.maillog.contains("status=bounced (mailbox unavailable)"), "\(postfix.maillog.suffix(2000))")
            #expect(postfix.maillog.contains("relay=relance-bounce, delay="), "\(postfix.maillog.suffix(2000))")
            #expect(postfix.maillog.contains("status=sent (delivered via relance-bounce service"), "\(postfix.maillog.suffix(2000))")
            daemon.signal(SIGTERM)
            _ = try await daemon.wait()
        } catch {
            await postfix.stop(in: sandbox)
            throw error
        }
        await postfix.stop(in: sandbox)
    }

    @Test(.enabled(if: PrivatePostfix.available)) func aPostfixDSNIntoAWatchedMaildirDoesTheSame() async throws {
        let sandbox = try Sandbox()
        let postfix = try await PrivatePostfix(in: sandbox, returning: .maildir)
        do {
            try sandbox.writeConfig(
                smtpPort: postfix.port,
                bounce: "{ domain: \(PrivatePostfix.returnDomain), secret: \"\(Self.secret)\", maildir: \"\(postfix.maildir)\" }")
            try sandbox.dropLines("r.jsonl", [Self.bouncing("M-1")])
            let daemon = try sandbox.start(["serve"])
            try await Self.expectBounced("M-1", in: sandbox, via: "maildir")
            let read = (try? FileManager.default.contentsOfDirectory(atPath: postfix.maildir + "/cur")) ?? []
            #expect(read.count == 1 && read[0].hasSuffix(":2,S"), "the DSN was read and marked seen: \(read)")
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: postfix.maildir + "/new")) ?? []).isEmpty)
            daemon.signal(SIGTERM)
            _ = try await daemon.wait()
        } catch {
            await postfix.stop(in: sandbox)
            throw error
        }
        await postfix.stop(in: sandbox)
    }

    /// `relance bounce` by hand: a forged or altered token changes nothing and is logged; an
    /// auto-reply is ignored; both exit 0 (a bounce is never bounced); a real one applies once.
    @Test func thePipeRefusesForgeriesAndIgnoresWhatIsNotABounce() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig(bounce: "{ domain: relances.example.fr, secret: \"\(Self.secret)\" }")
        try sandbox.dropLines("r.jsonl", [Records.reminder("P-1", email: "jean.martin@example.org", extra: ["fallback": ["sms"]])])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let mail = try #require(try FileManager.default.contentsOfDirectory(atPath: sandbox.maildir + "/new").first)
        let sent = try String(contentsOfFile: sandbox.maildir + "/new/" + mail, encoding: .utf8)
        let verp = VERP(domain: "relances.example.fr", secret: Self.secret)
        let token = verp.token(reminderID: "P-1")
        #expect(sent.hasPrefix("Return-Path: <bounces+\(token)@relances.example.fr>\r\n"), "the envelope sender is the VERP address")
        #expect(sent.contains("\r\nX-Relance-Delivery: \(token)\r\n"))

        func dsn(_ token: String, id: String) -> Data {
            Data(
                """
                Message-ID: <\(id)@mx.example.org>
                From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
                To: bounces+\(token)@relances.example.fr
                Subject: Undelivered Mail Returned to Sender
                Content-Type: multipart/report; report-type=delivery-status; boundary="b"

                --b
                Content-Type: message/delivery-status

                Reporting-MTA: dns; mx.example.org

                Final-Recipient: rfc822; jean.martin@example.org
                Action: failed
                Status: 5.1.1

                --b--
                """.utf8)
        }
        let forger = VERP(domain: "relances.example.fr", secret: "somebody-else-s-secret-000000")
        let forged = try await sandbox.relance(["bounce"], stdin: dsn(forger.token(reminderID: "P-1"), id: "f1"))
        #expect(forged.status == 0 && forged.stdout.contains("forged"), "\(forged)")
        #expect(forged.stderr.contains("forged or altered VERP token"), "logged: \(forged.stderr)")
        var altered = Array(token)
        altered[0] = altered[0] == "a" ? "b" : "a"
        #expect(try await sandbox.relance(["bounce"], stdin: dsn(String(altered), id: "f2")).stdout.contains("forged"))
        let vacation = Data("From: jean.martin@example.org\nTo: bounces+\(token)@relances.example.fr\nSubject: Out of office\nAuto-Submitted: auto-replied\n\nBack on Monday.\n".utf8)
        let ignored = try await sandbox.relance(["bounce"], stdin: vacation)
        #expect(ignored.status == 0 && ignored.stdout.contains("ignored: not a bounce (auto_reply)"), "\(ignored)")
        #expect(try await statuses(try sandbox.ledger())["P-1/email"] == "sent", "nothing changed")

        let real = try await sandbox.relance(["bounce"], stdin: dsn(token, id: "r1"))
        #expect(real.status == 0 && real.stdout.contains("P-1/email: bounced; jean.martin@example.org suppressed; fallback: sms"), "\(real)")
        #expect(try await sandbox.relance(["bounce"], stdin: dsn(token, id: "r1")).stdout.contains("already applied"))
        #expect(try await statuses(try sandbox.ledger()) == ["P-1/email": "bounced", "P-1/sms": "pending"])
        let status = try await sandbox.relance(["status"]).stdout
        #expect(status.contains("bounce rate, last 24 h:\n  email\t100.0 %\t(1 bounced or undelivered of 1 sent)"), "\(status)")
    }

    /// Without `email.bounce`, or with a ledger that cannot be written, the MTA is told to try
    /// again later (75), never to bounce the bounce.
    @Test func thePipeDefersWhatItCannotVerifyOrRecord() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let unconfigured = try await sandbox.relance(["bounce"], stdin: Data("Subject: x\n\nx\n".utf8))
        #expect(unconfigured.status == 75 && unconfigured.stderr.contains("email.bounce is not configured"), "\(unconfigured)")
        try "email: { bounce: { domain: \"\" } }\n".write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        let broken = try await sandbox.relance(["bounce"], stdin: Data())
        #expect(broken.status == 75 && broken.stderr.contains("email.bounce.domain"), "\(broken)")
    }
}

/// The IMAP way in, against a private Dovecot serving the Maildir a private Postfix delivers the
/// DSNs to.
@Suite(.serialized) struct BounceIMAPIntegrationTests {
    /// A message that is not ours, already in the mailbox: it must stay exactly as it was.
    static func stranger(_ subject: String) -> String {
        "From: jean.martin@example.org\nTo: bounces@relances.test\nSubject: \(subject)\nMessage-ID: <\(UUID().uuidString)@example.org>\n\nBonjour, j'ai payé hier.\n"
    }

    @Test(.enabled(if: PrivatePostfix.available && PrivateDovecot.available)) func aPostfixDSNReadOverIMAPIsAppliedAndMovedTheRestUntouched()
        async throws
    {
        let sandbox = try Sandbox()
        let postfix = try await PrivatePostfix(in: sandbox, returning: .maildir)
        let box = postfix.maildir
        let nobody = PrivatePostfix.nobody
        for sub in ["", "/new", "/cur", "/tmp"] {
            try FileManager.default.createDirectory(atPath: box + sub, withIntermediateDirectories: true)
            chown(box + sub, nobody.uid, nobody.gid)
        }
        // A debtor's reply (unread) and a read one: neither is a bounce.
        try Self.stranger("Re: votre relance").write(toFile: box + "/new/1000.reply.test", atomically: true, encoding: .utf8)
        try Self.stranger("Question").write(toFile: box + "/cur/1001.read.test:2,S", atomically: true, encoding: .utf8)
        for file in ["/new/1000.reply.test", "/cur/1001.read.test:2,S"] { chown(box + file, nobody.uid, nobody.gid) }
        let dovecot = try await PrivateDovecot(in: sandbox, maildir: box)
        do {
            try sandbox.writeConfig(
                smtpPort: postfix.port,
                bounce: """
                    { domain: \(PrivatePostfix.returnDomain), secret: "\(BounceIntegrationTests.secret)", imap: { url: "imap://127.0.0.1:\(dovecot.port)", \
                    starttls: none, username: \(PrivateDovecot.username), password: \(PrivateDovecot.password), every: 5s } }
                    """)
            try sandbox.dropLines("r.jsonl", [BounceIntegrationTests.bouncing("I-1")])
            let daemon = try sandbox.start(["serve"])
            try await BounceIntegrationTests.expectBounced("I-1", in: sandbox, via: "imap")
            // Moved to Processed (Maildir++ folder .Processed), and only it.
            try await eventually("the DSN to be in Processed") {
                let processed = ((try? FileManager.default.contentsOfDirectory(atPath: box + "/.Processed/cur")) ?? [])
                    + ((try? FileManager.default.contentsOfDirectory(atPath: box + "/.Processed/new")) ?? [])
                return processed.count == 1
            }
            let inbox = ((try? FileManager.default.contentsOfDirectory(atPath: box + "/cur")) ?? []) + ((try? FileManager.default.contentsOfDirectory(atPath: box + "/new")) ?? [])
            #expect(inbox.count == 2, "the two strangers stay in INBOX: \(inbox)")
            // Maildir flags follow ":2,"; S is \Seen.
            func flags(_ prefix: String) -> String? {
                inbox.first { $0.hasPrefix(prefix) }.map { $0.components(separatedBy: ":2,").dropFirst().first ?? "" }
            }
            #expect(flags("1000.reply.test").map { !$0.contains("S") } == true, "the unread reply is still unread: \(inbox)")
            #expect(flags("1001.read.test").map { $0.contains("S") } == true, "the read one is still read: \(inbox)")
            daemon.signal(SIGTERM)
            _ = try await daemon.wait()
        } catch {
            await dovecot.stop()
            await postfix.stop(in: sandbox)
            throw error
        }
        await dovecot.stop()
        await postfix.stop(in: sandbox)
    }
}
