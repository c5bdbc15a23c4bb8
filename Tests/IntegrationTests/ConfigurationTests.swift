import Foundation
import Testing

@testable import RelanceConfig
@testable import RelanceDaemon
@testable import RelanceDispatch
@testable import RelanceHTTP
@testable import RelanceSpool

@Suite struct ConfigurationTests {
    @Test func shippedExampleIsValid() throws {
        let (config, _) = try ConfigurationLoader.load(file: Package.root + "/config/relance.example.yaml", environment: [:])
        #expect(config.email.transport == .smtp)
        #expect(config.email.smtp.starttls == .required)
        #expect(config.queue("urgent").priority == 10)
        #expect(config.queue("bulk").share == 0.5)
        #expect(config.queue("default").priority == 0)
        #expect(config.delivery.retry.schedule.first == .seconds(300))
        #expect(config.delivery.retry.schedule.lifetime == .seconds(172_800))
    }

    @Test func defaultsWhenEmpty() throws {
        let (config, _) = try ConfigurationLoader.load(file: nil, yaml: "", environment: [:])
        #expect(config.email.transport == .outbox)
        #expect(config.store.path == "/var/lib/relance/ledger.sqlite")
        #expect(config.delivery.inDoubt == .hold)
        #expect(config.stages == ["pre_due", "reminder_1", "reminder_2", "final_notice"])
    }

    @Test(arguments: [
        ("email: { transprot: smtp }", "email.transprot"),
        ("spool: { rot: /x }", "spool.rot"),
        ("webhooks: { lisen: x }", "webhooks.lisen"),
        ("delivery: { retry: { firts: 1s } }", "delivery.retry.firts"),
        ("queues: { urgent: { priorty: 1 } }", "queues.urgent.priorty"),
    ])
    func unknownKeysAreRefusedWithTheirPath(_ yaml: String, _ path: String) {
        #expect {
            try ConfigurationLoader.load(file: nil, yaml: yaml, environment: [:])
        } throws: { error in
            "\(error)".contains("unknown key '\(path)'")
        }
    }

    @Test(arguments: [
        "email: { transport: smpt }", "delivery: { retry: { first: soon } }", "email: { smtp: { url: \"http://x\" } }",
        "email: { from: \"no address\" }", "defaults: { timezone: Mars/Base }", "delivery: { in_doubt: maybe }",
        "sms: { provider: twilio }", "log: { level: loud }",
    ])
    func badValuesAreRefused(_ yaml: String) {
        #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(file: nil, yaml: yaml, environment: [:]) }
    }

    @Test func environmentAndCredentialsOverrideTheFile() throws {
        let dir = NSTemporaryDirectory() + "relance-creds-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "s3cret-from-file\n".write(toFile: dir + "/email-smtp-password", atomically: true, encoding: .utf8)
        let (config, provenance) = try ConfigurationLoader.load(
            file: nil, yaml: "email: { smtp: { url: \"smtp://a:25\", connections: 2 } }",
            environment: ["RELANCE_EMAIL_SMTP_URL": "smtps://relay.example.fr:465", "RELANCE_EMAIL_SMTP_CONNECTIONS": "6", "CREDENTIALS_DIRECTORY": dir])
        #expect(config.email.smtp.url == "smtps://relay.example.fr:465")
        #expect(config.email.smtp.connections == 6)
        #expect(config.email.smtp.password == "s3cret-from-file")
        #expect(provenance.credentials == ["email-smtp-password"])
        #expect(provenance.environment.sorted() == ["RELANCE_EMAIL_SMTP_CONNECTIONS", "RELANCE_EMAIL_SMTP_URL"])
    }

    @Test func secretsNeverReachTheLog() async throws {
        let sandbox = try Sandbox()
        let credentials = sandbox.root + "/credentials"
        try FileManager.default.createDirectory(atPath: credentials, withIntermediateDirectories: true)
        try "pa55-very-secret".write(toFile: credentials + "/email-smtp-password", atomically: true, encoding: .utf8)
        try sandbox.writeConfig(smtpPort: 9, retryFirst: "1h")  // nothing listens on port 9: a logged transient failure
        try sandbox.dropLines("one.jsonl", [Records.reminder("S-1")])
        let run = try await sandbox.relance(
            ["serve", "--once"], environment: ["CREDENTIALS_DIRECTORY": credentials, "RELANCE_EMAIL_SMTP_USERNAME": "relance-user"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("credentials loaded"))
        #expect(run.stderr.contains("transient failure"))
        #expect(!run.stderr.contains("pa55-very-secret"))
        let csv = try await sandbox.relance(["receipts", "--format", "json"])
        #expect(!csv.stdout.contains("pa55-very-secret"))
        #expect(csv.stdout.contains("\"outcome\":\"transient\""))
    }
}
