import Foundation
import Testing

@testable import RelanceConfig
@testable import RelanceDaemon
@testable import RelanceDispatch
@testable import RelanceHTTP
@testable import RelanceSpool

@Suite struct ConfigurationTests {
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
