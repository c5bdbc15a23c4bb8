import Foundation
import RelanceCore
import RelanceStore
import RelanceTestSupport
import Testing

/// SIGKILL at random moments, restart, again and again; then count at the sinks.
/// `make test` runs 20 kills over 1,000 reminders (2,000 deliveries); `make chaos` more
/// (RELANCE_CHAOS_KILLS, RELANCE_CHAOS_REMINDERS).
@Suite(.serialized) struct ChaosTests {
    @Test func killedAgainAndAgainNothingLostNothingTwice() async throws {
        let env = ProcessInfo.processInfo.environment
        let kills = Int(env["RELANCE_CHAOS_KILLS"] ?? "") ?? 20
        let count = Int(env["RELANCE_CHAOS_REMINDERS"] ?? "") ?? 1000
        let seed = UInt64(env["RELANCE_CHAOS_SEED"] ?? "") ?? UInt64(Date().timeIntervalSince1970)
        var rng = SplitMix64(seed: seed)

        let sandbox = try Sandbox()
        let smtp = try await SMTPServer(sandbox: sandbox)
        let sim = try await GatewaySimulator(sandbox: sandbox)
        let sms = sim.twilioSection
        try sandbox.writeConfig(smtpPort: smtp.port, concurrency: 8, connections: 4, sms: sms)
        // Phones that the simulator accepts (no special suffix).
        let records = (0..<count).map { i -> [String: Any] in
            var r = Records.reminder("X-\(i)", email: "x\(i)@example.org", channels: ["email", "sms"])
            r["debtor"] = Records.debtor("C-X\(i)", email: "x\(i)@example.org").merging(["phone": String(format: "+336%08d", 20_000_000 + i * 10 + 2)]) {
                _, n in n
            }
            return r
        }
        // Two files, so some kills land during intake.
        try sandbox.dropLines("chaos-1.jsonl", Array(records[..<(count / 2)]))
        try sandbox.dropLines("chaos-2.jsonl", Array(records[(count / 2)...]))

        for _ in 0..<kills {
            let daemon = try sandbox.start(["serve"])
            try await Task.sleep(for: .milliseconds(Int64(rng.next() % 500) + 50))
            daemon.signal(SIGKILL)
            _ = try await daemon.wait()
        }
        let last = try await sandbox.relance(["serve", "--once"])
        #expect(last.status == 0, "\(last.stderr.suffix(2000))")

        let ledger = try sandbox.ledger()
        let deliveries = try await ledger.deliveries()
        let byStatus = Dictionary(grouping: deliveries, by: \.status).mapValues(\.count)
        var emailsAtSink: [String: Int] = [:]
        for path in smtp.messages {
            let head = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\r\n").first { $0.hasPrefix("X-Envelope-To: ") }!
            emailsAtSink[String(head.dropFirst("X-Envelope-To: ".count)), default: 0] += 1
        }
        var smsAtSink: [String: Int] = [:]
        for request in sim.requests where request["outcome"] as? String == "accepted" {
            smsAtSink[(request["form"] as? [String: String])?["To"] ?? "?", default: 0] += 1
        }
        let duplicates = emailsAtSink.values.filter { $0 > 1 }.count + smsAtSink.values.filter { $0 > 1 }.count
        var lost = 0
        var unexplained = 0
        for d in deliveries {
            let i = Int(d.reminderID.dropFirst(2))!
            let atSink = d.channel == "email" ? emailsAtSink["x\(i)@example.org"] ?? 0 : smsAtSink[String(format: "+336%08d", 20_000_000 + i * 10 + 2)] ?? 0
            switch d.status {
            case "sent": if atSink != 1 { lost += 1 }
            case "unknown":
                let reason = try await ledger.events(reminderID: d.reminderID).last { $0.channel == d.channel }?.reason ?? ""
                if !reason.contains("in doubt") { unexplained += 1 }
            default: lost += 1
            }
        }
        print(
            "chaos: seed=\(seed) kills=\(kills) reminders=\(count) deliveries=\(deliveries.count) sent=\(byStatus["sent"] ?? 0) unknown=\(byStatus["unknown"] ?? 0) duplicates=\(duplicates) lost=\(lost) unexplained=\(unexplained) emails-at-sink=\(emailsAtSink.count) sms-at-sink=\(smsAtSink.count)"
        )
        #expect(deliveries.count == 2 * count, "every reminder accounted for (seed \(seed))")
        #expect(duplicates == 0, "nothing sent twice (seed \(seed))")
        #expect(lost == 0, "nothing lost: every delivery is sent (and at its sink once) or in doubt (seed \(seed)): \(byStatus)")
        #expect(unexplained == 0, "every unknown is explained (seed \(seed))")
        #expect(sandbox.files("active").allSatisfy { ((try? FileManager.default.contentsOfDirectory(atPath: sandbox.spool + "/active/" + $0)) ?? []).isEmpty })
    }
}

