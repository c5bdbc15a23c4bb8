import Foundation
import RelanceDispatch
import RelanceStore
import Synchronization
import RelanceCore
import RelanceTestSupport
import Testing

/// `relance score` through the binary, on a receivables feed imported as JSON lines (debtors,
/// invoices, payments allocated to them, disputes): fit, score, backtest, explain, and the errors.
@Suite struct ScoreCLITests {
    /// Two years of a small business's receivables: 60 customers, each with its own habit, a
    /// fifth of the invoices disputed (a disputed invoice is mostly paid late).
    static func feed() throws -> Data {
        var rng = SplitMix64(seed: 11)
        var lines: [[String: Any]] = []
        let start = CivilDate(year: 2024, month: 1, day: 1).dayNumber
        var n = 0
        for c in 0..<60 {
            let id = String(format: "C%03d", c)
            lines.append([
                "type": "debtor", "id": id, "name": "Client \(c)", "email": "c\(c)@example.com", "country": "FR", "locale": "fr-FR",
                "timezone": "Europe/Paris", "kind": c % 3 == 0 ? "consumer" : "business",
            ])
            let habit = [0, 0, 0, 0.1, 0.3, 0.6, 0.9][Int(rng.uniform() * 7)]
            var day = start + Int(rng.uniform() * 30)
            while day < start + 700 {
                n += 1
                let number = String(format: "F%05d", n)
                let due = day + 30
                let disputed = rng.uniform() < 0.2
                let late = rng.uniform() < (disputed ? 0.85 : habit)
                let paid = late ? due + 1 + Int(rng.uniform() * 40) : day + Int(rng.uniform() * 30)
                let amount = String(format: "%.2f", 50 + rng.uniform() * 950)
                lines.append([
                    "type": "invoice", "number": number, "debtor": id, "issued_on": CivilDate(dayNumber: day).description,
                    "due_on": CivilDate(dayNumber: due).description, "amount": amount, "currency": "EUR",
                ])
                if disputed {
                    lines.append([
                        "type": "dispute", "id": "D" + number, "invoice": number, "opened_on": CivilDate(dayNumber: day).description,
                        "closed_on": CivilDate(dayNumber: paid).description, "reason": "contested",
                    ])
                }
                if paid < start + 720 {
                    lines.append([
                        "type": "payment", "id": "P" + number, "debtor": id, "amount": amount, "currency": "EUR", "paid_on": CivilDate(dayNumber: paid).description,
                        "invoice": number,
                    ])
                }
                day += 10 + Int(rng.uniform() * 30)
            }
        }
        var data = Data()
        for line in lines {
            data.append(try JSONSerialization.data(withJSONObject: line))
            data.append(UInt8(ascii: "\n"))
        }
        return data
    }

    @Test func fitScoreBacktestAndExplain() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let file = sandbox.root + "/feed.jsonl"
        try Self.feed().write(to: URL(fileURLWithPath: file))
        #expect(try await sandbox.relance(["import", file]).status == 0)

        let none = try await sandbox.relance(["score", "--as-of", "2025-12-01"])
        #expect(none.status == 1 && none.stderr.contains("no risk model yet: fit one with relance score --train"), "\(none.stderr)")
        let early = try await sandbox.relance(["score", "--train", "--as-of", "2024-01-15"])
        #expect(early.status == 1 && early.stderr.contains("only 0 invoices with a known outcome"), "\(early.stderr)")

        let train = try await sandbox.relance(["score", "--train", "--as-of", "2025-06-01"])
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("risk models fitted as of 2025-06-01 on "), "\(train.stdout)")
        #expect(train.stdout.contains("disputed\t+"), "a dispute known on the issue date raises the odds: \(train.stdout)")

        let table = try await sandbox.relance(["score", "--as-of", "2025-12-01"])
        #expect(table.status == 0, "\(table.stderr)")
        let rows = table.stdout.split(separator: "\n")
        #expect(rows.first == "DEBTOR\tINVOICE\tISSUED_ON\tDUE_ON\tAMOUNT\tP_LATE\tEXPECTED_PAYMENT\tWEIGHS_MOST")
        #expect(rows.count > 10, "open items on 2025-12-01")
        let probabilities = rows.dropFirst().compactMap { Double($0.split(separator: "\t")[5]) }
        #expect(probabilities == probabilities.sorted(by: >), "riskiest first")
        #expect(rows.dropFirst().allSatisfy { $0.split(separator: "\t").count == 8 && $0.contains(": ") }, "three features that weigh most")

        let json = try await sandbox.relance(["score", "--as-of", "2025-12-01", "--debtor", "C005", "--format", "json"])
        let objects = json.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(!objects.isEmpty && objects.allSatisfy { $0["debtor"] as? String == "C005" && ($0["weighs_most"] as? [String])?.count == 3 })

        let backtest = try await sandbox.relance(["score", "--backtest", "--from", "2025-03-01", "--as-of", "2025-12-20", "--format", "csv"])
        #expect(backtest.status == 0, "\(backtest.stderr)")
        let lines = backtest.stdout.split(separator: "\n")
        #expect(lines.first == "invoice,debtor,issued_on,p_late,expected_days_to_pay")
        #expect(lines.dropFirst().allSatisfy { ($0.split(separator: ",")[2]) >= "2025-03-01" })
        let auc = backtest.stderr.split(separator: " ").firstIndex(of: "AUC").flatMap { Double(backtest.stderr.split(separator: " ")[$0 + 1].trimmingCharacters(in: .punctuationCharacters)) }
        #expect((auc ?? 0) > 0.8, "\(backtest.stderr)")
        #expect(backtest.stderr.contains("calibration per decile"))

        // The report: a risk column in the top debtors and the "to call first" list, from the model in force.
        let report = try await sandbox.relance(["report", "--as-of", "2025-12-01", "--format", "json"])
        let reportJSON = try #require(try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any])
        let eur = try #require((reportJSON["currencies"] as? [[String: Any]])?.first)
        let calls = try #require(eur["call_first"] as? [[String: Any]])
        #expect(!calls.isEmpty && calls.allSatisfy { ($0["risk"] as? Double).map { (0...100).contains($0) } == true })
        let atRisk = calls.compactMap { ($0["at_risk"] as? String).flatMap(Double.init) }
        #expect(atRisk == atRisk.sorted(by: >), "most money expected late first")
        #expect((eur["top_debtors"] as? [[String: Any]])?.allSatisfy { $0["risk"] is Double } == true)
        let html = try await sandbox.relance(["report", "--as-of", "2025-12-01", "--format", "html", "--locale", "en"])
        #expect(html.stdout.contains("To call first (money expected late)") && html.stdout.contains("<th class=\"n\">Risk of paying late</th>"))

        let explain = try await sandbox.relance(["score", "--explain", "--debtor", "C005", "--as-of", "2025-12-01"])
        #expect(explain.status == 0 && explain.stdout.contains("P(paid late) = ") && explain.stdout.contains("share_paid_late = "), "\(explain.stdout)")
        #expect(explain.stdout.contains("never skips, delays or rewords a step"))

        for bad in [["score", "--backtest"], ["score", "--explain"], ["score", "--train", "--backtest", "--from", "2025-01-01"], ["score", "--from", "2025-01-01"]] {
            #expect(try await sandbox.relance(bad).status == 2, "\(bad)")
        }
    }

    /// After a refit, each debtor with open items has the band of its riskiest one, and the
    /// dispatcher takes due work riskiest band first within a priority: reminders due at the same
    /// instant go high band, unscored (the middle band), low band, whatever their ids say.
    @Test func dueWorkIsOrderedByRiskAfterARefit() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let file = sandbox.root + "/feed.jsonl"
        try Self.feed().write(to: URL(fileURLWithPath: file))
        #expect(try await sandbox.relance(["import", file]).status == 0)
        let train = try await sandbox.relance(["score", "--train", "--as-of", "2025-06-01"])
        #expect(train.status == 0, "\(train.stderr)")

        // The bands kept are those of the open items today, under the model in force.
        let ledger = try sandbox.ledger()
        let model = try #require(try await ledger.latestScoreModel()?.model)
        let items = try await ScoreRun.openItems(ledger, debtor: nil, model: model, on: CivilDate(Date(), in: TimeZone(identifier: "Europe/Paris") ?? .gmt))
        var expected: [String: Int] = [:]
        for item in items { expected[item.debtor] = max(expected[item.debtor] ?? 0, item.score.band) }
        #expect(!expected.isEmpty && train.stdout.contains("risk bands: \(expected.count) debtors with open items"), "\(train.stdout)")
        for debtor in (0..<60).map({ String(format: "C%03d", $0) }) {
            #expect(try await ledger.riskBand(debtorID: debtor) == expected[debtor], "\(debtor)")
        }
        let high = try #require(expected.filter { $0.value > Ledger.unscoredBand }.keys.sorted().first, "a debtor in a high band")
        let low = try #require(expected.filter { $0.value < Ledger.unscoredBand }.keys.sorted().first, "a debtor in a low band")

        // Three reminders in one file (due at the same instant), their ids in the opposite order.
        func reminder(_ id: String, debtor: String) -> [String: Any] {
            Records.reminder(id, extra: ["debtor": Records.debtor(debtor)])
        }
        try sandbox.dropLines("due.jsonl", [reminder("R1", debtor: low), reminder("R2", debtor: "NEW-CUSTOMER"), reminder("R3", debtor: high)])
        #expect(try await sandbox.relance(["pause", "--all", "--reason", "ordering test"]).status == 0)
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(try await sandbox.relance(["resume", "--all"]).status == 0)
        let dry = try await sandbox.relance(["serve", "--dry-run"])
        let order = dry.stdout.split(separator: "\n").filter { $0.hasPrefix("would send") }.compactMap { $0.split(separator: " ").dropFirst(2).first }
        #expect(order == ["R3/email", "R2/email", "R1/email"], "\(dry.stdout)")
    }

    /// The daemon refits on `score.schedule` and keeps the models; `relance score` then uses them.
    @Test func theDaemonRefitsOnItsSchedule() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig(extra: "score: { schedule: \"every 1m\" }")
        let file = sandbox.root + "/feed.jsonl"
        try Self.feed().write(to: URL(fileURLWithPath: file))
        #expect(try await sandbox.relance(["import", file]).status == 0)
        let daemon = try sandbox.start(["serve"])
        try await eventually("the scheduled refit", timeout: .seconds(150)) { daemon.stderr.contains("risk models refitted") }
        #expect(daemon.stderr.contains("relance.score.examples="))
        let scored = try await sandbox.relance(["score"])
        #expect(scored.status == 0 && scored.stdout.hasPrefix("DEBTOR\tINVOICE"), "\(scored.stderr)")
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 0)
    }

    /// The snapshots of the whole ledger, read from one cursor per table merged by debtor, equal
    /// those read debtor by debtor: invoices with instalments, payments, disputes, plan steps.
    @Test func mergedSnapshotsEqualThoseReadOneDebtorAtATime() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let file = sandbox.root + "/feed.jsonl"
        var feed = try Self.feed()
        feed.append(
            Data(
                (#"{"type":"invoice","number":"INST-1","debtor":"C002","issued_on":"2025-01-10","amount":"300.00","currency":"EUR","instalments":[{"due_on":"2025-02-10","amount":"100.00"},{"due_on":"2025-03-10","amount":"200.00"}]}"#
                    + "\n" + #"{"type":"promise","id":"PR-1","debtor":"C003","until":"2026-01-31"}"# + "\n").utf8))
        try feed.write(to: URL(fileURLWithPath: file))
        #expect(try await sandbox.relance(["import", file]).status == 0)
        #expect(try await sandbox.relance(["plan", "--commit", "--as-of", "2025-12-15T09:00:00+01:00"]).status == 0)
        let ledger = try Ledger(path: sandbox.ledgerPath)
        let merged = Mutex<[DebtorSnapshot]>([])
        try await ledger.forEachDebtorSnapshot(debtor: nil) { snapshot in merged.withLock { $0.append(snapshot) } }
        let all = merged.withLock { $0 }
        #expect(all.count == 60)
        #expect(all.contains { !$0.taken.isEmpty } && all.contains { $0.invoices.contains { !$0.instalments.isEmpty } })
        for snapshot in all {
            let one = Mutex<DebtorSnapshot?>(nil)
            try await ledger.forEachDebtorSnapshot(debtor: snapshot.debtor.debtor.id) { s in one.withLock { $0 = s } }
            let single = try #require(one.withLock { $0 })
            #expect(single.debtor == snapshot.debtor)
            #expect(single.invoices == snapshot.invoices)
            #expect(single.movements == snapshot.movements)
            #expect(single.taken == snapshot.taken, "\(snapshot.debtor.debtor.id)")
        }
    }
}
