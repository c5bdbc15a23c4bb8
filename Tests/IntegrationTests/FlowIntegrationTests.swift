import Foundation
import RelanceCore
import RelanceStore
import Testing

@Suite struct FlowIntegrationTests {
    @Test func aFailingRelayIsPausedInsteadOfStormed() async throws {
        let sandbox = try Sandbox()
        // Nothing listens on port 9: every attempt fails transiently.
        try sandbox.writeConfig(smtpPort: 9, extra: "", concurrency: 1)
        try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
            .replacingOccurrences(of: "jitter: 0 } }", with: "jitter: 0 }, breaker: { failures: 2, cooldown: 1h } }")
            .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        #expect(try String(contentsOfFile: sandbox.configPath, encoding: .utf8).contains("breaker: { failures: 2"))
        try sandbox.dropLines("a.jsonl", (0..<6).map { Records.reminder("B-\($0)", email: "b\($0)@example.org") })
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("circuit breaker open"))
        let attempts = try await receipts(try sandbox.ledger())
        #expect(attempts.count == 2, "two failures open the breaker; the other four wait: \(attempts.map(\.reminderID))")
        let deliveries = try await sandbox.ledger().deliveries()
        #expect(deliveries.filter { $0.status == "pending" }.count == 6)
        #expect(deliveries.filter { $0.attempts == 0 }.count == 4)
    }

    @Test func aRateLimitedPassStillSendsEverything() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig(extra: "")
        try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
            .replacingOccurrences(of: "  transport: outbox\n", with: "  transport: outbox\n  rate: 20\n")
            .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        #expect(try String(contentsOfFile: sandbox.configPath, encoding: .utf8).contains("  rate: 20\n"))
        try sandbox.dropLines("a.jsonl", (0..<30).map { Records.reminder("R-\($0)", email: "r\($0)@example.org") })
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try await sandbox.ledger().deliveries().allSatisfy { $0.status == "sent" })
    }
}
