import Foundation
import Testing

@testable import RelanceCore

private func day(_ text: String) -> CivilDate { CivilDate(text)! }

private func eur(_ text: String) -> Int64 { MinorAmount(text, currency: "EUR")!.units }

private func snapshot(_ id: String, _ invoices: [(number: String, issued: String, due: String, amount: String)], _ movements: [ReceivableMovement] = [],
    taken: [ItemID: [TakenStep]] = [:]) -> DebtorSnapshot
{
    DebtorSnapshot(
        debtor: ReceivableDebtor(
            debtor: Debtor(id: id, name: "Client \(id)", email: "\(id)@example.fr", phone: nil, country: "FR", locale: "fr-FR", timezone: "Europe/Paris", kind: .business)),
        invoices: invoices.map {
            ReceivableInvoice(number: $0.number, debtor: id, issuedOn: day($0.issued), dueOn: day($0.due), amount: eur($0.amount), currency: "EUR")
        },
        movements: movements, taken: taken)
}

/// The fixed ledger of the golden figures, as of 2026-03-31, a period of 3 months:
/// windows back from the date are March (31 days), February (28) and January (31), 90 days.
/// Credit sales: December 2,000.00 (B0 and C1–C4), January 3,000.00 (A1), February 6,000.00 (B1),
/// March 9,000.00 (A2 + B2); the period's sales are 18,000.00.
private let ledger: [DebtorSnapshot] = [
    snapshot(
        "A", [("A1", "2026-01-10", "2026-02-09", "3000.00"), ("A2", "2026-03-01", "2026-03-31", "4000.00")],
        [.payment(id: "PA", amount: eur("1000.00"), currency: "EUR", paidOn: day("2026-02-20"), invoice: "A1")],
        taken: [ItemID(invoice: "A1", instalment: nil): [TakenStep(stage: "reminder_1", on: day("2026-02-16"))]]),
    snapshot(
        "B", [("B0", "2025-12-01", "2025-12-31", "1000.00"), ("B1", "2026-02-01", "2026-03-01", "6000.00"), ("B2", "2026-03-15", "2026-04-14", "5000.00")],
        [.dispute(id: "DB", invoice: "B1", openedOn: day("2026-03-10"), closedOn: nil, reason: "quantités")]),
    snapshot(
        "C",
        [
            ("C1", "2025-12-15", "2026-01-29", "100.00"), ("C2", "2025-12-15", "2026-01-30", "200.00"), ("C3", "2025-12-15", "2026-02-28", "300.00"),
            ("C4", "2025-12-15", "2025-12-30", "400.00"),
        ]),
]

private func report(_ snapshots: [DebtorSnapshot] = ledger, asOf: String = "2026-03-31", disputed: ReceivablesReport.Options.Disputed = .included)
    -> ReceivablesReport
{
    var builder = ReportBuilder(options: .init(asOf: day(asOf), months: 3, disputed: disputed))
    for s in snapshots { builder.add(s) }
    return builder.finish()
}

@Suite struct ReportGoldenFigureTests {
    @Test func agingBucketsOnTheirBoundaries() throws {
        let eurFigures = try #require(report().currencies.first)
        // As of 2026-03-31, days past due: A2 0 (due today: not due), B2 -14, B1 30, C3 31, A1 50 (3,000 − 1,000 paid),
        // C2 60, C1 61, B0 90, C4 91.
        let aging = eurFigures.aging.mapValues { [MinorAmount(units: $0.amount, currency: "EUR").text, String($0.count)] }
        #expect(aging[.notDue] == ["9000.00", "2"], "A2 4,000 + B2 5,000")
        #expect(aging[.days1to30] == ["6000.00", "1"], "B1, 30 days")
        #expect(aging[.days31to60] == ["2500.00", "3"], "C3 31 days 300 + A1 50 days 2,000 + C2 60 days 200")
        #expect(aging[.days61to90] == ["1100.00", "2"], "C1 61 days 100 + B0 90 days 1,000")
        #expect(aging[.over90] == ["400.00", "1"], "C4, 91 days")
        #expect(eurFigures.headline.totals == .init(receivables: eur("19000.00"), current: eur("9000.00"), overdue: eur("10000.00"), disputed: eur("6000.00")))
    }

    @Test func simpleAndBestPossibleDSOAndADD() throws {
        let h = try #require(report().currencies.first).headline
        #expect(h.sales == eur("18000.00") && h.days == 90)
        // 19,000 / 18,000 × 90 = 95.0; current 9,000 / 18,000 × 90 = 45.0; ADD = 95 − 45 = 50.
        #expect(ReportFormat.text(h.dsoSimple) == "95.0")
        #expect(ReportFormat.text(h.bestPossibleDSO) == "45.0")
        #expect(ReportFormat.text(h.add) == "50.0")
    }

    @Test func countbackDSOAcrossMonthsOfDifferentSales() throws {
        let h = try #require(report().currencies.first).headline
        // AR 19,000: March's 9,000 counts whole (31 days, 10,000 left), February's 6,000 whole (28, 4,000 left),
        // January's 3,000 whole (31, 1,000 left), then December: 1,000 / 2,000 of 31 days = 15.5.
        // 31 + 28 + 31 + 15.5 = 105.5.
        #expect(ReportFormat.text(h.dsoCountback) == "105.5")
        #expect(!h.countbackBounded)
        // The arithmetic alone, with a month the receivables exactly use up.
        let exact = CollectionMetrics.countbackDSO(receivables: 900, windows: [.init(days: 30, sales: 500), .init(days: 31, sales: 400), .init(days: 30, sales: 100)])
        #expect(exact.days == 61 && !exact.bounded, "500 then 400 use AR up exactly: 30 + 31 days")
        let beyond = CollectionMetrics.countbackDSO(receivables: 900, windows: [.init(days: 30, sales: 100), .init(days: 31, sales: 0)])
        #expect(beyond.days == 61 && beyond.bounded, "more receivables than every window's sales: a lower bound")
    }

    @Test func collectionEffectivenessIndex() throws {
        let f = try #require(report().currencies.first)
        // At the start (2025-12-31): B0 1,000 and C1–C4 1,000 issued, nothing paid: 2,000.
        // (2,000 + 18,000 − 19,000) / (2,000 + 18,000 − 9,000) × 100 = 1,000 / 11,000 × 100 = 9.09…
        #expect(f.start.receivables == eur("2000.00"))
        #expect(ReportFormat.text(f.cei) == "9.1")
    }

    @Test func theDisputedVariantLeavesDisputedItemsOut() throws {
        let f = try #require(report(disputed: .excluded).currencies.first)
        // B1 (6,000, disputed since 2026-03-10) is out: AR 13,000, overdue 4,000, shown apart as disputed.
        #expect(f.headline.totals == .init(receivables: eur("13000.00"), current: eur("9000.00"), overdue: eur("4000.00"), disputed: eur("6000.00")))
        #expect(f.aging[.days1to30] == nil)
        // 13,000 / 18,000 × 90 = 65.0; countback 31 + 4,000 / 6,000 × 28 = 49.67; CEI 7,000 / 11,000 = 63.6.
        #expect(ReportFormat.text(f.headline.dsoSimple) == "65.0")
        #expect(ReportFormat.text(f.headline.dsoCountback) == "49.7")
        #expect(ReportFormat.text(f.cei) == "63.6")
        #expect(ReportFormat.json(report(disputed: .excluded)).contains("variant \\\"excluded\\\""), "the definition names the variant")
    }

    @Test func theTrendTakesEachMonthEnd() throws {
        let f = try #require(report().currencies.first)
        #expect(f.trend.map(\.date.description).first == "2025-04-30" && f.trend.map(\.date.description).last == "2026-03-31")
        #expect(f.trend.count == 12)
        let february = try #require(f.trend.first { $0.date == day("2026-02-28") })
        // Issued by then: A1 (2,000 after the payment of 02-20), B0, B1, C1–C4: 10,000; current B1 and C3 (due that day).
        #expect(february.totals.receivables == eur("10000.00") && february.totals.current == eur("6300.00"))
        // Sales of the 90 days back from 02-28: February 6,000 + January 3,000 + December 2,000 = 11,000; 10,000 / 11,000 × 90 = 81.8.
        #expect(february.sales == eur("11000.00") && ReportFormat.text(february.dsoSimple) == "81.8")
        #expect(f.trend.first?.dsoSimple == nil, "no sales before December: no DSO")
    }

    @Test func topDebtorsByOverdueAmount() throws {
        let top = try #require(report().currencies.first).top
        #expect(top.map(\.id) == ["B", "A", "C"])
        #expect(top[0].overdue == eur("7000.00") && top[0].oldest.invoice == "B0" && top[0].daysOverdue == 90)
        #expect(top[1].stage == "reminder_1" && top[1].lastContact == day("2026-02-16"))
        #expect(top[2].oldest.invoice == "C4" && top[2].daysOverdue == 91)
    }

    @Test func aReportForAPastDateIgnoresWhatIsDatedLater() {
        let before = ReportFormat.json(report())
        // Later: a payment of B1, a new invoice, a dispute and a plan step, all dated after 2026-03-31.
        var later = ledger
        later[1].movements.append(.payment(id: "PB", amount: eur("6000.00"), currency: "EUR", paidOn: day("2026-04-05"), invoice: "B1"))
        later[1].invoices.append(
            ReceivableInvoice(number: "B3", debtor: "B", issuedOn: day("2026-04-02"), dueOn: day("2026-05-02"), amount: eur("700.00"), currency: "EUR"))
        later[2].movements.append(.dispute(id: "DC", invoice: "C4", openedOn: day("2026-04-10"), closedOn: nil, reason: "x"))
        later[2].taken[ItemID(invoice: "C4", instalment: nil)] = [TakenStep(stage: "final_notice", on: day("2026-04-03"))]
        #expect(ReportFormat.json(report(later)) == before)
        #expect(ReportFormat.json(report(later, asOf: "2026-04-30")) != before)
    }

    @Test func jsonAndCSVCarryEveryFigure() throws {
        let r = report()
        let json = try #require(try JSONSerialization.jsonObject(with: Data(ReportFormat.json(r).utf8)) as? [String: Any])
        let definitions = try #require(json["definitions"] as? [String: String])
        #expect(Set(definitions.keys).isSuperset(of: ["dso_simple", "dso_countback", "best_possible_dso", "add", "cei", "aging", "credit_sales"]))
        let eurJSON = try #require((json["currencies"] as? [[String: Any]])?.first)
        #expect(eurJSON["receivables"] as? String == "19000.00" && eurJSON["dso_simple"] as? Double == 95.0 && eurJSON["cei"] as? Double == 9.1)
        let csv = ReportFormat.csv(r)
        let tables = csv.components(separatedBy: "\n\n")
        #expect(tables.map { $0.prefix(while: { $0 != "," }) } == Array(repeating: "section", count: 8))
        #expect(tables[0].contains("summary,EUR,2026-03-31,3,included,19000.00,9000.00,10000.00,6000.00,18000.00,90,95.0,105.5,false,45.0,50.0,9.1"))
        #expect(tables[1].contains("aging,EUR,over_90,400.00,1"))
    }

    @Test func monthArithmeticKeepsMonthEnds() {
        #expect(day("2026-03-31").addingMonths(-1) == day("2026-02-28"))
        #expect(day("2026-02-28").addingMonths(-1) == day("2026-01-31"), "a month end goes to the month end")
        #expect(day("2024-03-30").addingMonths(-1) == day("2024-02-29"), "clamped")
        #expect(day("2026-01-15").addingMonths(-13) == day("2024-12-15"))
        #expect(day("2026-03-29").lastMonthEnd == day("2026-02-28") && day("2026-03-31").lastMonthEnd == day("2026-03-31"))
    }
}

@Suite struct ReportHTMLTests {
    @Test func thePageIsSelfContainedAndEscapesWhatCameFromOutside() throws {
        var hostile = ledger
        hostile[0].debtor.debtor.name = "<img src=\"http://evil.example/x.png\" onerror=alert(1)>\r\nBcc: x@evil.example"
        let html = ReportHTML.render(report(hostile), language: .en)
        #expect(!html.contains("<img") && !html.contains("<script"))
        #expect(html.contains("&lt;img src=&quot;http://evil.example/x.png&quot; onerror=alert(1)&gt;  Bcc: x@evil.example"))
        // Nothing to fetch: the only URL is the SVG namespace.
        let urls = html.components(separatedBy: "http").dropFirst().map { String($0.prefix(30)) }
        #expect(urls.allSatisfy { $0.hasPrefix("://www.w3.org/2000/svg\"") || $0.hasPrefix("://evil.example/x.png&quot;") }, "\(urls)")
        #expect(!html.contains("src=\"") && !html.contains("href=") && !html.contains("@import") && !html.contains("url("))
    }

    @Test func everyChartHasDataMarksWithTheirValues() throws {
        let html = ReportHTML.render(report(), language: .en)
        let charts = html.components(separatedBy: "<figure class=\"chart\">").dropFirst()
        #expect(charts.count == 3, "no reminder sent: no recovery chart")
        for chart in charts { #expect(chart.contains("class=\"mark\""), "\(chart.prefix(120))") }
        // The aging bar's segments carry their amounts on hover; the 1–30 segment is B1's 6,000.
        #expect(html.contains("<title>1–30 days: 6,000.00\u{00A0}EUR (1)</title>"))
        #expect(html.contains("<title>2026-03-31 — DSO (simple): 95.0 days</title>"))
    }

    @Test func frenchAndEnglish() {
        let fr = ReportHTML.render(report(), language: ReportHTML.Language(locale: "fr-FR"))
        let en = ReportHTML.render(report(), language: ReportHTML.Language(locale: "en-GB"))
        #expect(fr.contains("<html lang=\"fr\">") && fr.contains("Balance âgée au 2026-03-31") && fr.contains("19\u{202F}000,00\u{00A0}EUR"))
        #expect(fr.contains("95,0 jours") && fr.contains("9,1 %"))
        #expect(en.contains("<html lang=\"en\">") && en.contains("Aging on 2026-03-31") && en.contains("19,000.00\u{00A0}EUR"))
        #expect(ReportHTML.render(report(), language: .fr) == fr, "the same report, the same page")
    }

    @Test func axesHaveRoundTicks() {
        #expect(ReportHTML.Charts.Axis(maximum: 1_900_000).ticks == [0, 500_000, 1_000_000, 1_500_000, 2_000_000])
        #expect(ReportHTML.Charts.Axis(maximum: 105).ticks == [0, 50, 100, 150])
        #expect(ReportHTML.Charts.Axis(maximum: 7).ticks == [0, 2, 4, 6, 8])
        #expect(ReportHTML.Charts.Axis(maximum: 0).ticks == [0])
    }
}

@Suite struct ReportRecoveryTests {
    private static let paris = TimeZone(identifier: "Europe/Paris")!

    private static func instant(_ text: String) -> Date { Timestamp.parse(text)! }

    /// Debtor D: D1 1,000 and D2 500 (issued 2026-01-05), D3 2,000 (issued 2026-01-20).
    /// Paid: D1 400 on 02-10 and 600 on 02-14, D2 500 on 03-05; D3 written off on 03-01.
    private static let debtor = snapshot(
        "D", [("D1", "2026-01-05", "2026-02-04", "1000.00"), ("D2", "2026-01-05", "2026-02-04", "500.00"), ("D3", "2026-01-20", "2026-02-19", "2000.00")],
        [
            .payment(id: "P1", amount: eur("400.00"), currency: "EUR", paidOn: day("2026-02-10"), invoice: "D1"),
            .payment(id: "P2", amount: eur("600.00"), currency: "EUR", paidOn: day("2026-02-14"), invoice: "D1"),
            .payment(id: "P3", amount: eur("500.00"), currency: "EUR", paidOn: day("2026-03-05"), invoice: "D2"),
            .writeOff(invoice: "D3", on: day("2026-03-01")),
        ])

    private static let sent = [
        // 23:30 UTC on 02-09 is 00:30 on 02-10 in Paris: the reminder left on 02-10, the day of P1.
        SentReminder(id: "R1", stage: "reminder_1", sentAt: instant("2026-02-09T23:30:00Z"), invoices: ["D1", "D2"]),
        SentReminder(id: "R2", stage: "reminder_2", sentAt: instant("2026-02-25T09:00:00Z"), invoices: ["D3"]),
        SentReminder(id: "R3", stage: "final_notice", sentAt: instant("2026-03-20T09:00:00Z"), invoices: ["D2"]),
        SentReminder(id: "R4", stage: "reminder_1", sentAt: instant("2026-04-02T09:00:00Z"), invoices: ["D1"]),
        SentReminder(id: "R5", stage: "reminder_1", sentAt: instant("2026-03-01T09:00:00Z"), invoices: ["X-404"]),
    ]

    private static func figures() throws -> (stages: [String: ReceivablesReport.StageFigures], report: ReceivablesReport) {
        var builder = ReportBuilder(options: .init(asOf: day("2026-03-31"), zone: paris))
        builder.add(debtor, sent: sent)
        let report = builder.finish(deliveries: [
            ("email", "reminder_1", "sent", 6), ("email", "reminder_1", "delivered", 3), ("email", "final_notice", "bounced", 1),
            ("sms", "reminder_1", "suppressed", 1), ("sms", "reminder_2", "delivered", 3),
        ])
        return (try #require(report.currencies.first).stages, report)
    }

    @Test func recoveryPerStage() throws {
        let (stages, report) = try Self.figures()
        // R1 (reminder_1, 02-10): covered at the end of 02-10 = D1 600 (P1 that day came first) + D2 500 = 1,100.
        // Within 7 days (to 02-17): P2 600. Within 30 (to 03-12): P2 600 + P3 500 = 1,100. All paid by 03-05: 23 days.
        let r1 = try #require(stages["reminder_1"])
        #expect(r1.reminders == 1 && r1.covered == eur("1100.00"), "R4 left after the date; R5 is about an unknown invoice")
        #expect(r1.window7 == .init(reminders: 1, covered: eur("1100.00"), paid: eur("600.00")))
        #expect(r1.window30 == .init(reminders: 1, covered: eur("1100.00"), paid: eur("1100.00")))
        #expect(r1.medianDaysToPayment == 23 && ReportFormat.text(ReportFormat.rate(r1.window7)) == "54.5")
        // R2 (reminder_2, 02-25) on D3: written off on 03-01, which is not a payment.
        let r2 = try #require(stages["reminder_2"])
        #expect(r2.covered == eur("2000.00") && r2.window7.paid == 0 && r2.window30.paid == 0 && r2.medianDaysToPayment == nil)
        // R3 (final_notice, 03-20) on D2, already paid: it covered nothing; its 30 days are not over on 03-31.
        let r3 = try #require(stages["final_notice"])
        #expect(r3.reminders == 1 && r3.covered == 0 && r3.window7.reminders == 1 && r3.window30.reminders == 0)
        #expect(report.unmatchedReminders == ["reminder_1": 1])
        #expect(ReceivablesReport.ordered(stages: stages.keys) == ["reminder_1", "reminder_2", "final_notice"])
    }

    @Test func theLastContactIsTheLastReminderThatLeftOrPlanStep() throws {
        var builder = ReportBuilder(options: .init(asOf: day("2026-03-31"), zone: Self.paris))
        var d = Self.debtor
        // D4 is left unpaid: the debtor is in the top list.
        d.invoices.append(ReceivableInvoice(number: "D4", debtor: "D", issuedOn: day("2026-01-10"), dueOn: day("2026-02-09"), amount: eur("100.00"), currency: "EUR"))
        d.taken[ItemID(invoice: "D3", instalment: nil)] = [TakenStep(stage: "reminder_1", on: day("2026-02-20"))]
        builder.add(d, sent: Self.sent)
        let top = try #require(builder.finish().currencies.first?.top.first)
        // R3 (final_notice, 03-20) is the last to have left by 03-31; R4 (04-02) is later; the plan step is older.
        #expect(top.stage == "final_notice" && top.lastContact == day("2026-03-20"))
    }

    @Test func channelRates() throws {
        let (_, report) = try Self.figures()
        let email = try #require(report.channels.first { $0.channel == "email" })
        // Left: 6 sent + 3 delivered + 1 bounced = 10; delivered 3 / 10; bounced 1 / 10.
        #expect(email.left == 10 && email.deliveryRate == 30 && email.bounceRate == 10 && email.optOutRate == 0)
        let sms = try #require(report.channels.first { $0.channel == "sms" })
        #expect(sms.optOutRate == 25 && sms.deliveryRate == 100)
        let json = ReportFormat.json(report)
        #expect(json.contains(#""channels":[{"channel":"email","statuses":{"bounced":1,"delivered":3,"sent":6},"total":10,"left":10,"delivery_rate":30.0,"bounce_rate":10.0,"opt_out_rate":0.0}"#))
        #expect(json.contains(#""stage":"reminder_1","reminders":1,"covered":"1100.00","paid_within_7_days":{"reminders":1,"covered":"1100.00","paid":"600.00","rate":54.5}"#))
        let html = ReportHTML.render(report, language: .en)
        #expect(html.contains("<title>reminder_1 — paid within 30 days: 1,100.00\u{00A0}EUR</title>"))
        #expect(html.contains("<title>email: sent 6</title>") && html.contains("<title>sms: suppressed 1</title>"))
        // Per stage: the final notice's one email bounced (100 %), the first reminders' did not; stages in ladder order.
        #expect(report.channelsByStage.map { "\($0.channel) \($0.stage ?? "-")" } == ["email reminder_1", "email final_notice", "sms reminder_1", "sms reminder_2"])
        #expect(report.channelsByStage[1].bounceRate == 100 && report.channelsByStage[0].bounceRate == 0)
        #expect(report.channelsByStage[2].optOutRate == 100)
        #expect(json.contains(#""channels_by_stage":[{"channel":"email","stage":"reminder_1","statuses":{"delivered":3,"sent":6},"total":9,"left":9,"#))
        #expect(html.contains("<td>email</td><td>final_notice</td><td class=\"n\">1</td><td class=\"n\">0.0 %</td><td class=\"n\">100.0 %</td>"))
        #expect(ReportFormat.csv(report).contains("channels_by_stage,email,final_notice,bounced,1\n"))
    }
}

@Suite struct ReportDefinitionTests {
    @Test func everyFigureIsDefinedInBothLanguages() {
        let options = ReceivablesReport.Options(asOf: day("2026-03-31"))
        #expect(ReportFormat.definitions(options).map(\.key) == ReportFormat.frenchDefinitions(options).map(\.key))
        let fr = ReportHTML.render(report(), language: .fr)
        #expect(fr.contains("DSO countback (méthode par épuisement)") && !fr.contains("receivables matched against"))
    }
}
