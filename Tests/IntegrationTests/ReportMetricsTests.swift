import Foundation
import RelanceCore
import RelanceTransport
import Testing

/// The business gauges on `/metrics`, the Grafana dashboard that reads them, and one truth
/// between `relance status`, `relance receipts` and `relance report`.
@Suite struct ReportMetricsTests {
    /// A ledger with receivables, a committed plan sent through the outbox, a cancelled spool
    /// reminder and one waiting; then the daemon with its webhook server, which sends one more
    /// (a reminder_2 from the spool, so that the send metrics are its own).
    static func liveLedger() async throws -> (sandbox: Sandbox, daemon: Child, base: String) {
        let sandbox = try Sandbox()
        let port = WebhookIntegrationTests.freePort()
        try sandbox.writeConfig(listen: "127.0.0.1:\(port)")
        let feed = sandbox.root + "/feed.jsonl"
        try ReceivablesCLITests.feed.write(toFile: feed, atomically: true, encoding: .utf8)
        _ = try await sandbox.relance(["import", feed])
        #expect(try await sandbox.relance(["plan", "--commit", "--as-of", Timestamp.format(Date())]).status == 0)
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let later = Timestamp.format(Date().addingTimeInterval(86_400 * 3))
        try sandbox.dropLines("spool.jsonl", [Records.reminder("S-1"), Records.reminder("S-2", extra: ["not_before": later])])
        #expect(try await sandbox.relance(["cancel", "--reminder", "S-1", "--reason", "paid"]).status == 0)
        let daemon = try sandbox.start(["serve"])
        try await eventually("the webhook server") { daemon.stderr.contains("webhook server listening") }
        try sandbox.dropLines("more.jsonl", [Records.reminder("S-3", stage: "reminder_2")])
        try await eventually("the daemon's send") { ((try? FileManager.default.contentsOfDirectory(atPath: sandbox.maildir + "/new")) ?? []).count == 2 }
        return (sandbox, daemon, "http://127.0.0.1:\(port)")
    }

    @Test func theDashboardReadsMetricsTheDaemonExposes() async throws {
        let (sandbox, daemon, base) = try await Self.liveLedger()
        defer { daemon.signal(SIGTERM) }
        let client = try HTTPClient(configuration: .init(connections: 1))
        func scrape() async throws -> String { String(decoding: try await client.execute(HTTPClient.Request(method: "GET", url: base + "/metrics")).get().body, as: UTF8.self) }
        // The gauges computed at start may predate the send: the stage count is awaited too.
        try await eventually("the business gauges") { try await scrape().contains("relance_report_timestamp_seconds") }
        let metrics = try await scrape()
        let exposed = Set(metrics.split(separator: "\n").compactMap { line -> String? in
            guard !line.hasPrefix("#"), let name = line.split(whereSeparator: { $0 == "{" || $0 == " " }).first else { return nil }
            return String(name)
        })
        let dashboard = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Package.root + "/contrib/grafana/relance.json"))) as? [String: Any])
        let exprs = ((dashboard["panels"] as? [[String: Any]]) ?? []).flatMap { ($0["targets"] as? [[String: Any]]) ?? [] }.compactMap { $0["expr"] as? String }
        #expect(exprs.count >= 10)
        let used = Set(exprs.flatMap { expr in
            expr.matches(of: /relance_[a-z_]+/).map { String($0.output) }
        })
        #expect(used.count >= 9)
        for name in used.sorted() {
            #expect(exposed.contains(name), "the dashboard reads \(name), which /metrics does not have: \(exposed.sorted())")
        }

        // The gauges say what the report says, today.
        let report = try await sandbox.relance(["report", "--format", "json"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any])
        let eur = try #require((json["currencies"] as? [[String: Any]])?.first)
        let overdue = try #require(Double(eur["overdue"] as? String ?? ""))
        #expect(metrics.contains(#"relance_receivables{currency="EUR",kind="overdue"} \#(Self.prometheus(overdue))"#), "\(metrics.split(separator: "\n").filter { $0.hasPrefix("relance_receivables") })")
        #expect(metrics.contains(#"relance_stage_reminders{stage="reminder_1"} 1"#))
    }

    /// Prometheus' rendering of a gauge value.
    static func prometheus(_ value: Double) -> String { value == value.rounded() ? String(format: "%.1f", value) : "\(value)" }

    @Test func statusReceiptsAndTheReportAgreeOnEveryCount() async throws {
        let (sandbox, daemon, _) = try await Self.liveLedger()
        daemon.signal(SIGTERM)
        _ = try await daemon.wait()
        // relance status: "  channel<TAB>status<TAB>count" lines.
        let status = try await sandbox.relance(["status"]).stdout
        var fromStatus: [String: Int] = [:]
        for line in status.split(separator: "\n") where line.hasPrefix("  ") {
            let cells = line.trimmingCharacters(in: .whitespaces).split(separator: "\t")
            if cells.count == 3, let n = Int(cells[2]) { fromStatus["\(cells[0]) \(cells[1])"] = n }
        }
        // relance receipts: one line per attempt and one per delivery without any; a delivery's status on each.
        let receipts = try await sandbox.relance(["receipts", "--format", "json"]).stdout
        var deliveries: [String: String] = [:]
        for line in receipts.split(separator: "\n") {
            let row = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            deliveries["\(row["reminder_id"] ?? "") \(row["channel"] ?? "")"] = "\(row["channel"] ?? "") \(row["status"] ?? "")"
        }
        var fromReceipts: [String: Int] = [:]
        for key in deliveries.values { fromReceipts[key, default: 0] += 1 }
        // relance report: deliveries per channel and status at the end of today.
        let report = try await sandbox.relance(["report", "--format", "json"]).stdout
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.utf8)) as? [String: Any])
        var fromReport: [String: Int] = [:]
        for channel in (json["channels"] as? [[String: Any]]) ?? [] {
            for (s, n) in (channel["statuses"] as? [String: Int]) ?? [:] { fromReport["\(channel["channel"] ?? "") \(s)"] = n }
        }
        #expect(fromStatus == ["email sent": 2, "email cancelled": 1, "email pending": 1], "\(status)")
        #expect(fromReceipts == fromStatus, "\(receipts)")
        #expect(fromReport == fromStatus, "\(report)")
    }
}
