import Foundation
import RelanceCore
import RelanceStore
import RelanceTransport
import Synchronization
import Testing

/// `relance serve` against a real SMTP server (aiosmtpd), messages checked with Python's strict MIME parser.
@Suite(.serialized) struct SMTPIntegrationTests {
    @Test func sendsWellFormedMessagesThroughSMTP() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        try sandbox.writeConfig(smtpPort: server.port)
        let pdf = try sandbox.writePDF("F2026-0042.pdf")
        try sandbox.dropLines(
            "batch.jsonl",
            [
                Records.reminder(
                    "FR-1", stage: "final_notice", email: "elodie@example.fr", name: "Élodie Martin", kind: "business",
                    extra: ["attachments": [pdf], "payment_url": "https://pay.example.fr/F2026-0042"]),
                Records.reminder(
                    "EN-1", stage: "reminder_1", email: "james@example.co.uk", name: "James O'Connor", locale: "en-GB", amount: "99.90", currency: "GBP"),
            ])
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(server.messages.count == 2)

        var byRecipient: [String: [String: Any]] = [:]
        for path in server.messages {
            let mail = try await inspectMail(path, in: sandbox)
            byRecipient[(mail["to_addresses"] as! [String])[0]] = mail
        }
        let fr = try #require(byRecipient["elodie@example.fr"])
        #expect(fr["subject"] as? String == "Mise en demeure de payer – Exemple SAS – 1\u{202F}234,50\u{00A0}€")
        #expect(fr["from"] as? String == "Exemple SAS <relances@example.fr>")
        #expect(fr["to"] as? String == "Élodie Martin <elodie@example.fr>")
        #expect(fr["mime_version"] as? String == "1.0")
        #expect(fr["message_id"] as? String == "<relance.FR-1.email@example.fr>")
        #expect((fr["date"] as? String)?.isEmpty == false)
        #expect(fr["content_type"] as? String == "multipart/mixed")
        #expect(fr["bare_lf"] as? Bool == false)
        #expect((fr["max_line_octets"] as! Int) <= 998)
        let parts = fr["parts"] as! [[String: Any]]
        #expect(parts.map { $0["type"] as! String } == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html"])
        let plain = parts[2]["text"] as! String
        let html = parts[3]["text"] as! String
        for part in parts[2...] { #expect((part["max_encoded_line"] as! Int) <= 76) }
        #expect(plain.contains("mise en demeure"))
        #expect(plain.contains("INV-FR-1"))
        #expect(plain.contains("1\u{202F}234,50\u{00A0}€"))
        #expect(plain.contains("40,00\u{00A0}€"), "business debtors get the recovery indemnity")
        #expect(html.contains("<td style=\"padding:6px 12px;text-align:right\">1\u{202F}234,50\u{00A0}€</td>"))
        let attachments = fr["attachments"] as! [[String: Any]]
        #expect(attachments.count == 1)
        #expect(attachments.first?["filename"] as? String == "F2026-0042.pdf")
        #expect(attachments.first?["type"] as? String == "application/pdf")
        #expect(attachments.first?["starts_pdf"] as? Bool == true)

        let en = try #require(byRecipient["james@example.co.uk"])
        #expect(en["subject"] as? String == "Exemple SAS – reminder: invoice INV-EN-1 awaiting payment")
        #expect((en["parts"] as! [[String: Any]]).map { $0["type"] as! String } == ["multipart/alternative", "text/plain", "text/html"])
        #expect(((en["parts"] as! [[String: Any]])[1]["text"] as! String).contains("£99.90"))

        let ledger = try sandbox.ledger()
        let all = try await receipts(ledger)
        #expect(all.count == 2)
        #expect(all.allSatisfy { $0.outcome == "sent" && $0.code == 250 && $0.status == "sent" && ($0.detail ?? "").contains("queued as") })
        #expect(sandbox.files("done") == ["batch.jsonl"])
    }

    /// 30 messages sent at once over 3 connections, kept open and reused, each delivered once;
    /// two refused recipients among them are refused for good and cost only their connection
    /// (closed after a refused envelope, whose state is unknown). Against a relay that offers
    /// PIPELINING (the envelope in one write) and one that does not (a command at a time).
    @Test(arguments: [true, false]) func aFewKeptOpenConnectionsCarryManyMessages(pipelining: Bool) async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox, arguments: pipelining ? [] : ["--no-pipelining"])
        let transport = try SMTPTransport(
            configuration: SMTPConfiguration(url: "smtp://127.0.0.1:\(server.port)", startTLS: .none, connections: 3, timeout: .seconds(20)))
        let recipients = (0..<30).map { [7, 19].contains($0) ? "reject-\($0)@example.org" : "d\($0)@example.org" }
        let outcomes = await withTaskGroup(of: (String, SendOutcome).self) { group in
            for (i, recipient) in recipients.enumerated() {
                group.addTask {
                    (recipient, await transport.send(from: "relances@example.fr", to: recipient, message: Data("Subject: \(i)\r\n\r\nmessage \(i)\r\n.\r\n".utf8)))
                }
            }
            return await group.reduce(into: [String: SendOutcome]()) { $0[$1.0] = $1.1 }
        }
        let sent = outcomes.filter { if case .sent = $0.value { true } else { false } }
        #expect(sent.count == 28, "\(outcomes.filter { if case .sent = $0.value { false } else { true } })")
        for refused in ["reject-7@example.org", "reject-19@example.org"] {
            guard case .permanent(550, let detail) = outcomes[refused] else {
                Issue.record("\(refused): \(String(describing: outcomes[refused]))")
                continue
            }
            #expect(detail.contains("User unknown"), "\(detail)")
        }
        func header(_ name: String, _ text: String) -> String? {
            text.components(separatedBy: "\r\n").first { $0.hasPrefix(name + ": ") }.map { String($0.dropFirst(name.count + 2)) }
        }
        let received = try server.messages.map { try String(contentsOfFile: $0, encoding: .utf8) }
        #expect(Set(received.compactMap { header("X-Envelope-To", $0) }).count == 28 && received.count == 28, "each message once")
        // A body line of a lone dot arrived as itself (dot-stuffed on the way, unstuffed by the relay).
        #expect(received.allSatisfy { $0.hasSuffix("\r\n.\r\n") }, "\(received.first ?? "")")
        let peers = Set(received.compactMap { header("X-Peer", $0) })
        #expect((1...5).contains(peers.count), "at most 3 connections, each reused, and one more after each refusal: \(peers.sorted())")
    }

    /// A relay closes a connection left idle (Postfix after 300 s): the next message goes over a
    /// new one, without an error.
    @Test func aConnectionTheRelayClosedWhileIdleIsReplaced() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox, arguments: ["--idle-timeout", "0.3"])
        let transport = try SMTPTransport(
            configuration: SMTPConfiguration(url: "smtp://127.0.0.1:\(server.port)", startTLS: .none, connections: 1, timeout: .seconds(20)))
        let message = Data("Subject: x\r\n\r\nx\r\n".utf8)
        guard case .sent = await transport.send(from: "relances@example.fr", to: "a@example.org", message: message) else {
            Issue.record("first message not sent")
            return
        }
        try await eventually("the relay to close the idle connection") {
            ((try? FileManager.default.contentsOfDirectory(atPath: server.out)) ?? []).contains { $0.hasPrefix("closed-") }
        }
        let second = await transport.send(from: "relances@example.fr", to: "b@example.org", message: message)
        guard case .sent = second else {
            Issue.record("second message: \(second)")
            return
        }
        #expect(server.messages.count == 2)
    }

    /// Each connection waits for its relay on its own: a message whose reply does not come holds
    /// its connection, not the others. (libcurl's multi interface waits for the reply to the end of
    /// DATA in a blocking call, so SMTP does not go through `CurlMultiLoop`: one slow reply there
    /// would hold every connection.)
    @Test func aReplyThatDoesNotComeHoldsOnlyItsConnection() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        let transport = try SMTPTransport(
            configuration: SMTPConfiguration(url: "smtp://127.0.0.1:\(server.port)", startTLS: .none, connections: 3, timeout: .seconds(10)))
        let first = Finished()
        let hung = Task {
            let outcome = await transport.send(from: "relances@example.fr", to: "hang-after-data-1@example.org", message: Data("Subject: 1\r\n\r\none\r\n".utf8))
            first.set()
            return outcome
        }
        try await eventually("the relay to hold the first message") {
            ((try? FileManager.default.contentsOfDirectory(atPath: server.out)) ?? []).contains { $0.hasSuffix(".received-no-reply") }
        }
        var outcomes: [SendOutcome] = []
        for i in 0..<10 {
            outcomes.append(await transport.send(from: "relances@example.fr", to: "d\(i)@example.org", message: Data("Subject: \(i)\r\n\r\nmessage \(i)\r\n".utf8)))
        }
        #expect(outcomes.allSatisfy { if case .sent = $0 { true } else { false } }, "\(outcomes)")
        #expect(server.messages.count == 10)
        #expect(!first.isSet, "the first message still waits for its reply")
        // Its time runs out: sent whole and never answered, it is in doubt.
        guard case .inDoubt = await hung.value else {
            Issue.record("a message sent whole and never answered must be in doubt")
            return
        }
    }

    @Test func startTLSWithAuthFromCredentials() async throws {
        let sandbox = try Sandbox()
        let (cert, key) = try await selfSignedCertificate(in: sandbox)
        let server = try await SMTPServer(sandbox: sandbox, arguments: ["--cert", cert, "--key", key, "--auth", "relance:s3cr3t-pw"])
        // One connection: the five messages go over it one after the other, after one STARTTLS
        // and one AUTH.
        try sandbox.writeConfig(smtpPort: server.port, concurrency: 1, connections: 1)
        try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
            .replacingOccurrences(of: "starttls: none,", with: "starttls: required, ca_file: \"\(cert)\", username: relance,")
            .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        let credentials = sandbox.root + "/credentials"
        try FileManager.default.createDirectory(atPath: credentials, withIntermediateDirectories: true)
        try "s3cr3t-pw\n".write(toFile: credentials + "/email-smtp-password", atomically: true, encoding: .utf8)
        try sandbox.dropLines("one.jsonl", (1...5).map { Records.reminder("TLS-\($0)", email: "tls\($0)@example.org") })
        let run = try await sandbox.relance(["serve", "--once"], environment: ["CREDENTIALS_DIRECTORY": credentials])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try await statuses(try sandbox.ledger()) == Dictionary(uniqueKeysWithValues: (1...5).map { ("TLS-\($0)/email", "sent") }))
        let messages = try server.messages.map { try String(contentsOfFile: $0, encoding: .utf8) }
        #expect(messages.count == 5)
        #expect(messages.allSatisfy { $0.contains("X-Auth-User: relance\r\n") }, "authenticated over STARTTLS")
        let peers = Set(messages.compactMap { $0.components(separatedBy: "\r\n").first { $0.hasPrefix("X-Peer: ") } })
        #expect(peers.count == 1, "one TLS connection carried them all: \(peers.sorted())")
        #expect(!run.stderr.contains("s3cr3t-pw"))

        // A wrong password is our problem, not the debtor's: retried later, never a bounce.
        try "wrong\n".write(toFile: credentials + "/email-smtp-password", atomically: true, encoding: .utf8)
        try sandbox.dropLines("two.jsonl", [Records.reminder("TLS-6", email: "tls6@example.org")])
        _ = try await sandbox.relance(["serve", "--once"], environment: ["CREDENTIALS_DIRECTORY": credentials])
        let second = try await receipts(try sandbox.ledger(), reminderID: "TLS-6")
        #expect(second.map(\.outcome) == ["transient"])
        #expect(second.first?.status == "pending")
        #expect(server.messages.count == 5)
    }

    @Test func implicitTLS() async throws {
        let sandbox = try Sandbox()
        let (cert, key) = try await selfSignedCertificate(in: sandbox)
        let server = try await SMTPServer(sandbox: sandbox, arguments: ["--cert", cert, "--key", key, "--implicit-tls"])
        try sandbox.writeConfig(smtpPort: server.port)
        try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
            .replacingOccurrences(of: "smtp://127.0.0.1", with: "smtps://127.0.0.1")
            .replacingOccurrences(of: "starttls: none,", with: "starttls: none, ca_file: \"\(cert)\",")
            .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        try sandbox.dropLines("one.jsonl", [Records.reminder("TLS-3", email: "tls3@example.org")])
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try await statuses(try sandbox.ledger()) == ["TLS-3/email": "sent"])
        #expect(server.messages.count == 1)
    }

    @Test func untrustedCertificateIsRefused() async throws {
        let sandbox = try Sandbox()
        let (cert, key) = try await selfSignedCertificate(in: sandbox)
        let server = try await SMTPServer(sandbox: sandbox, arguments: ["--cert", cert, "--key", key])
        try sandbox.writeConfig(smtpPort: server.port)
        try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
            .replacingOccurrences(of: "starttls: none,", with: "starttls: required,")
            .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        try sandbox.dropLines("one.jsonl", [Records.reminder("TLS-4", email: "tls4@example.org")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let attempts = try await receipts(try sandbox.ledger(), reminderID: "TLS-4")
        #expect(attempts.map(\.outcome) == ["transient"], "a self-signed certificate not in ca_file is refused, and retried later")
        #expect(server.messages.isEmpty)
    }

    @Test func transientFailureIsRetriedAfterBackoff() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        try sandbox.writeConfig(smtpPort: server.port, retryFirst: "1s")
        try sandbox.dropLines("one.jsonl", [Records.reminder("T-1", email: "tempfail-once-t1@example.org")])
        let daemon = try sandbox.start(["serve"])
        try await eventually("the retried delivery to be sent") {
            guard let ledger = try? sandbox.ledger() else { return false }
            return (try? await statuses(ledger))?["T-1/email"] == "sent"
        }
        let ledger = try sandbox.ledger()
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 0, "graceful stop: \(daemon.stderr)")
        let attempts = try await receipts(ledger, reminderID: "T-1")
        #expect(attempts.map(\.outcome) == ["transient", "sent"])
        #expect(attempts.first?.code == 451)
        #expect(attempts.first?.detail?.contains("451 4.3.0") == true)
        let gap = attempts[1].startedAt.timeIntervalSince(attempts[0].finishedAt!)
        #expect(gap >= 0.9, "the retry waits delivery.retry.first (1 s), waited \(gap) s")
        #expect(server.messages.count == 1)
    }

    @Test func sigtermLetsInFlightSendsFinish() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox, slow: 1.5)
        try sandbox.writeConfig(smtpPort: server.port, concurrency: 2, connections: 2)
        try sandbox.dropLines("two.jsonl", (0..<6).map { Records.reminder("G-\($0)", email: "slow-g\($0)@example.org") })
        let daemon = try sandbox.start(["serve"])
        try await eventually("a send to be in flight") {
            guard let ledger = try? sandbox.ledger() else { return false }
            return (try? await statuses(ledger))?.values.contains("sending") == true
        }
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 0, "\(daemon.stderr)")
        let final = try await statuses(try sandbox.ledger())
        #expect(!final.values.contains("sending"), "in-flight sends finished and were committed: \(final)")
        #expect(!final.values.contains("unknown"))
        let sent = final.filter { $0.value == "sent" }.count
        #expect(sent >= 1 && sent < 6, "it stopped claiming: \(final)")
        #expect(server.messages.count == sent)
    }

    @Test func sigtermUnderLoadDrainsWithZeroLoss() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox, slow: 0.1)
        try sandbox.writeConfig(smtpPort: server.port, concurrency: 8, connections: 8)
        let count = 400
        try sandbox.dropLines("load.jsonl", (0..<count).map { Records.reminder("L-\($0)", email: "slow-l\($0)@example.org") })
        let daemon = try sandbox.start(["serve"])
        try await eventually("the batch to be under way") { server.messages.count >= 40 }
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 0, "a drained stop exits 0: \(daemon.stderr)")
        let stopped = try await statuses(try sandbox.ledger())
        #expect(!stopped.values.contains("sending") && !stopped.values.contains("unknown"), "every in-flight send finished and was committed")
        let sentAtStop = stopped.filter { $0.value == "sent" }.count
        #expect(sentAtStop == server.messages.count, "the ledger and the server agree at the stop")
        #expect(sentAtStop < count, "it stopped claiming")
        // The rest goes out at the next start; nothing lost, nothing twice.
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let final = try await statuses(try sandbox.ledger())
        #expect(final.count == count && final.values.allSatisfy { $0 == "sent" }, "\(final.filter { $0.value != "sent" })")
        #expect(try recipients(of: server).values.allSatisfy { $0 == 1 })
        #expect(try recipients(of: server).count == count)
    }

    @Test func drainTimeoutLeavesStuckSendsInDoubt() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox, slow: 30)
        try sandbox.writeConfig(smtpPort: server.port, concurrency: 2, connections: 2, delivery: "drain_timeout: 1s")
        try sandbox.dropLines("two.jsonl", [Records.reminder("D-1", email: "slow-d1@example.org"), Records.reminder("D-2", email: "slow-d2@example.org")])
        let daemon = try sandbox.start(["serve"])
        try await eventually("both sends to be in flight") {
            guard let ledger = try? sandbox.ledger() else { return false }
            return (try? await statuses(ledger))?.values.filter { $0 == "sending" }.count == 2
        }
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 1, "a stop past the drain bound is reported as a failure")
        #expect(daemon.stderr.contains("drain timeout"), "\(daemon.stderr)")
        #expect(daemon.stderr.contains("D-1/email,D-2/email"), "the log names the deliveries left in doubt")
        // At the next start they are in doubt, held for an operator, not resent.
        let next = try await sandbox.relance(["serve", "--once"])
        #expect(next.status == 0)
        let final = try await statuses(try sandbox.ledger())
        #expect(final == ["D-1/email": "unknown", "D-2/email": "unknown"])
    }

    @Test func permanentFailureIsRecordedWithTheReplyCode() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        try sandbox.writeConfig(smtpPort: server.port)
        try sandbox.dropLines("one.jsonl", [Records.reminder("P-1", email: "reject-p1@example.org"), Records.reminder("OK-1", email: "ok@example.org")])
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0)
        let ledger = try sandbox.ledger()
        #expect(try await statuses(ledger) == ["P-1/email": "failed", "OK-1/email": "sent"])
        let rejected = try await receipts(ledger, reminderID: "P-1")
        #expect(rejected.count == 1, "a permanent failure is not retried")
        #expect(rejected.first?.code == 550)
        #expect(rejected.first?.outcome == "permanent")
        #expect(rejected.first?.detail?.contains("User unknown") == true, "\(rejected.first?.detail ?? "")")
        #expect(server.messages.count == 1)
        // The CLI shows it too.
        let csv = try await sandbox.relance(["receipts", "--status", "failed", "--format", "csv"])
        #expect(csv.status == 0)
        #expect(csv.stdout.contains("P-1,email,1,smtp,reject-p1@example.org,permanent,550,failed"))
        #expect(!csv.stdout.contains("OK-1"))
    }

    @Test func killedMidRunNothingLostNothingSentTwice() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox, slow: 0.15)
        try sandbox.writeConfig(smtpPort: server.port, concurrency: 4, connections: 4)
        let count = 60
        try sandbox.dropLines("many.jsonl", (0..<count).map { Records.reminder("K-\($0)", email: "slow-k\($0)@example.org") })
        let first = try sandbox.start(["serve"])
        try await eventually("some messages to be delivered") { server.messages.count >= 12 }
        first.signal(SIGKILL)
        _ = try await first.wait()
        let second = try await sandbox.relance(["serve", "--once"])
        #expect(second.status == 0, "\(second.stderr)")

        let ledger = try sandbox.ledger()
        let final = try await statuses(ledger)
        #expect(final.count == count, "every reminder is accounted for")
        let sent = final.filter { $0.value == "sent" }.map(\.key)
        let unknown = final.filter { $0.value == "unknown" }.map(\.key)
        #expect(sent.count + unknown.count == count, "only sent or in doubt: \(final.filter { $0.value != "sent" && $0.value != "unknown" })")
        #expect(unknown.count <= 4, "at most one in-doubt delivery per in-flight send")

        let perRecipient = try recipients(of: server)
        #expect(perRecipient.values.allSatisfy { $0 == 1 }, "nothing is sent twice: \(perRecipient.filter { $0.value > 1 })")
        for key in sent {
            let id = key.split(separator: "/")[0].dropFirst(2)
            #expect(perRecipient["slow-k\(id)@example.org"] == 1, "\(key) is sent and was received once")
        }
        for key in unknown {
            let events = try await ledger.events(reminderID: String(key.split(separator: "/")[0]))
            #expect(events.last?.reason.contains("in doubt") == true, "every unknown is explained")
        }
    }
}

/// How many messages the server received for each envelope recipient.
func recipients(of server: SMTPServer) throws -> [String: Int] {
    var perRecipient: [String: Int] = [:]
    for path in server.messages {
        let head = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\r\n").first { $0.hasPrefix("X-Envelope-To: ") }!
        perRecipient[String(head.dropFirst("X-Envelope-To: ".count)), default: 0] += 1
    }
    return perRecipient
}

/// Set once, read from anywhere.
final class Finished: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}
