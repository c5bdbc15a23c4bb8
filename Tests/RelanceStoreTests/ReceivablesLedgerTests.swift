import Foundation
import RelanceCore
import Synchronization
import Testing

@testable import RelanceStore

private let validator = ReceivableValidator(rules: RecordRules())
private let now = Date(timeIntervalSince1970: 1_790_000_000)

/// Validated lines of a JSONL text; fails the test on a record that does not validate.
private func lines(_ text: String) throws -> [ReceivablesImport.Line] {
    try text.split(separator: "\n").enumerated().map { i, line in
        switch validator.validate(Array(line.utf8)) {
        case .success(let record): return ReceivablesImport.Line(line: i + 1, record: record)
        case .failure(let issues): throw issues
        }
    }
}

private func snapshots(_ ledger: Ledger, debtor: String? = nil) async throws -> [DebtorSnapshot] {
    let all = Mutex<[DebtorSnapshot]>([])
    try await ledger.forEachDebtorSnapshot(debtor: debtor) { s in all.withLock { $0.append(s) } }
    return all.withLock { $0 }
}

private let feed = """
    {"type":"debtor","id":"C-1","name":"Boulangerie Martin","email":"compta@martin.example.fr","kind":"business","payment_terms":"45d-eom"}
    {"type":"invoice","number":"F-1","debtor":"C-1","issued_on":"2026-09-10","amount":"1200.00","currency":"EUR"}
    {"type":"invoice","number":"F-2","debtor":"C-1","issued_on":"2026-10-01","due_on":"2026-10-31","amount":"300.00","currency":"EUR","instalments":[{"due_on":"2026-10-31","amount":"100.00"},{"due_on":"2026-11-30","amount":"200.00"}]}
    {"type":"payment","id":"P-1","debtor":"C-1","amount":"100.00","currency":"EUR","paid_on":"2026-11-02","invoice":"F-2"}
    {"type":"credit_note","id":"AV-1","invoice":"F-1","amount":"200.00","issued_on":"2026-10-15"}
    {"type":"dispute","invoice":"F-1","opened_on":"2026-11-10","reason":"quantité"}
    """

@Suite struct ReceivablesLedgerTests {
    @Test func importingTheSameFileTwiceChangesNothing() async throws {
        let ledger = try temporaryLedger()
        let first = try await ledger.importReceivables(try lines(feed), source: "feed.jsonl", defaults: .init(), now: now)
        #expect(first.applied == 6 && first.unchanged == 0 && first.rejected.isEmpty)
        let before = try await snapshots(ledger)
        let second = try await ledger.importReceivables(try lines(feed), source: "feed.jsonl", defaults: .init(), now: now)
        #expect(second.applied == 0 && second.unchanged == 6)
        let after = try await snapshots(ledger)
        #expect(after.map(\.invoices) == before.map(\.invoices) && after.map(\.movements) == before.map(\.movements))
    }

    @Test func snapshotsReadBackWhatWasImported() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.importReceivables(try lines(feed), source: "feed.jsonl", defaults: .init(), now: now)
        let snapshot = try #require(try await snapshots(ledger, debtor: "C-1").first)
        #expect(snapshot.debtor.paymentTerms?.description == "45d-eom" && snapshot.debtor.debtor.email == "compta@martin.example.fr")
        // F-1 has no due date: the debtor's terms give it (10 September + 45 days = 25 October, end of month).
        #expect(snapshot.invoices.map(\.dueOn) == [CivilDate("2026-10-31")!, CivilDate("2026-10-31")!])
        #expect(snapshot.invoices[1].instalments.map(\.amount) == [10_000, 20_000])
        #expect(snapshot.movements.count == 3)
        let standing = DebtorStanding.compute(invoices: snapshot.invoices, movements: snapshot.movements, on: CivilDate("2026-11-15")!)
        #expect(standing.items.map(\.outstanding) == [100_000, 0, 20_000], "F-1 less its credit note, F-2's first instalment paid")
    }

    @Test func aMovementIsImmutableButADisputeCanBeClosed() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.importReceivables(try lines(feed), source: "feed.jsonl", defaults: .init(), now: now)
        let changed = try await ledger.importReceivables(
            try lines(
                """
                {"type":"payment","id":"P-1","debtor":"C-1","amount":"90.00","currency":"EUR","paid_on":"2026-11-02","invoice":"F-2"}
                {"type":"dispute","invoice":"F-1","opened_on":"2026-11-10","closed_on":"2026-11-20","reason":"quantité"}
                """), source: "later.jsonl", defaults: .init(), now: now)
        #expect(changed.rejected.map(\.line) == [1] && changed.rejected[0].issue.field == "id", "a payment with other content under its id")
        #expect(changed.applied == 1, "the dispute is closed")
        let snapshot = try #require(try await snapshots(ledger).first)
        #expect(snapshot.movements.contains { if case .dispute(_, _, _, let closed?, _) = $0 { closed == CivilDate("2026-11-20") } else { false } })
        #expect(snapshot.movements.contains { if case .payment(_, 10_000, _, _, _) = $0 { true } else { false } }, "the payment kept its first content")
    }

    @Test func recordsNamingUnknownInvoicesOrOtherDebtorsAreRejectedWithTheirField() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.importReceivables(try lines(feed), source: "feed.jsonl", defaults: .init(), now: now)
        let result = try await ledger.importReceivables(
            try lines(
                """
                {"type":"credit_note","id":"AV-9","invoice":"F-404","amount":"10.00","issued_on":"2026-11-02"}
                {"type":"invoice","number":"F-1","debtor":"C-2","issued_on":"2026-09-10","amount":"1200.00","currency":"EUR"}
                {"type":"invoice","number":"F-2","debtor":"C-1","issued_on":"2026-10-01","amount":"300.00","currency":"USD"}
                {"type":"credit_note","id":"AV-10","invoice":"F-1","amount":"10.001","issued_on":"2026-11-02"}
                {"type":"payment","id":"P-9","debtor":"C-3","amount":"10.00","currency":"EUR","paid_on":"2026-11-02","invoice":"F-1"}
                """), source: "bad.jsonl", defaults: .init(), now: now)
        #expect(result.rejected.map(\.line) == [1, 2, 3, 4, 5])
        #expect(result.rejected.map(\.issue.field) == ["invoice", "debtor", "currency", "amount", "debtor"])
        #expect(result.applied == 0)
    }

    @Test func anInvoiceAmendmentIsKeptAndItsDebtorsTermsFollowTheDebtor() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.importReceivables(
            try lines(#"{"type":"invoice","number":"F-7","debtor":"C-9","issued_on":"2026-01-10","amount":"50.00","currency":"EUR"}"#), source: "a",
            defaults: .init(terms: PaymentTerms("30d")!), now: now)
        var snapshot = try #require(try await snapshots(ledger).first)
        #expect(snapshot.debtor.reachable.isEmpty, "a debtor known only from its invoice has no contact yet")
        #expect(snapshot.invoices[0].dueOn == CivilDate("2026-02-09"))
        _ = try await ledger.importReceivables(
            try lines(#"{"type":"debtor","id":"C-9","name":"Client Neuf","email":"neuf@example.fr","payment_terms":"eom+45d"}"#), source: "b",
            defaults: .init(), now: now)
        snapshot = try #require(try await snapshots(ledger).first)
        #expect(snapshot.invoices[0].dueOn == CivilDate("2026-03-17"), "31 January + 45 days")
        #expect(snapshot.debtor.reachable == [.email])
        let amended = try await ledger.importReceivables(
            try lines(#"{"type":"invoice","number":"F-7","debtor":"C-9","issued_on":"2026-01-10","amount":"55.00","currency":"EUR"}"#), source: "c",
            defaults: .init(), now: now)
        #expect(amended.applied == 1)
        #expect(try #require(try await snapshots(ledger).first).invoices[0].amount == 5_500)
        let kinds = try await ledger.pool.read { db in try String.fetchAll(db, sql: "SELECT kind FROM rec_event WHERE subject = 'F-7' ORDER BY id") }
        #expect(kinds == ["invoice", "invoice_amended"])
    }
}

@Suite struct ReceivableValidationTests {
    @Test func everyProblemIsReportedWithItsField() throws {
        let bad = #"{"type":"invoice","number":"","debtor":"C-1","issued_on":"2026-13-01","amount":"12,50","currency":"EURO","colour":"red"}"#
        guard case .failure(let issues) = validator.validate(Array(bad.utf8)) else {
            Issue.record("accepted")
            return
        }
        #expect(Set(issues.issues.map(\.field)) == ["colour", "number", "issued_on", "currency"])
        let instalments =
            #"{"type":"invoice","number":"F","debtor":"C","issued_on":"2026-01-01","amount":"10.00","currency":"EUR","instalments":[{"due_on":"2026-02-01","amount":"4.00"},{"due_on":"2026-03-01","amount":"5.00"}]}"#
        guard case .failure(let sum) = validator.validate(Array(instalments.utf8)) else {
            Issue.record("accepted")
            return
        }
        #expect(sum.issues.map(\.field) == ["instalments"])
        for (text, field) in [
            (#"{"type":"bogus"}"#, "type"), (#"{"type":"payment","id":"P","debtor":"C","amount":"1.00","currency":"EUR"}"#, "paid_on"),
            (#"{"type":"hold","invoice":"F","debtor":"C"}"#, "invoice"), (#"{"type":"debtor","id":"C","name":"N","phone":"12"}"#, "phone"),
            (#"{"type":"debtor","id":"C","name":"N\r\nBcc: x@y"}"#, "name"),
        ] {
            guard case .failure(let issues) = validator.validate(Array(text.utf8)) else {
                Issue.record("accepted: \(text)")
                continue
            }
            #expect(issues.issues.map(\.field).contains(field), "\(text): \(issues.issues)")
        }
    }

    @Test func csvRowsBecomeRecordsWithTheirLines() throws {
        let text =
            "number,debtor,issued_on,due_on,amount,currency\r\nF-1,C-1,2026-01-01,,\"1200.00\",EUR\r\n\"F-2, bis\",C-1,2026-01-02,2026-02-01,50.00,EUR\n\nF-3,C-1\n"
        let rows = try CSVReader().rows(Array(text.utf8))
        #expect(rows.map(\.line) == [1, 2, 3, 5])
        let records = CSVReader.receivableRecords(rows, type: "invoice").map { ($0.line, $0.value.flatMap { validator.validate($0) }) }
        guard case .success(.invoice(let first)) = records[0].1, case .success(.invoice(let second)) = records[1].1 else {
            Issue.record("\(records)")
            return
        }
        #expect(first.dueOn == nil && first.amount == 120_000)
        #expect(second.number == "F-2, bis")
        #expect(records[2].0 == 5)
        if case .failure(let issues) = records[2].1 { #expect(issues.issues[0].reason.contains("2 fields")) } else { Issue.record("short row accepted") }
        #expect(throws: CSVReader.Problem.unterminatedQuote(line: 1)) { try CSVReader().rows(Array("a,\"b\n".utf8)) }
        #expect(throws: CSVReader.Problem.textAfterQuote(line: 1)) { try CSVReader().rows(Array("\"a\"b,c\n".utf8)) }
    }
}

@Suite struct ReportQueryTests {
    @Test func sentRemindersAndDeliveryStatusesAsOfAnInstant() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.importReceivables(try lines(feed), source: "feed.jsonl", defaults: .init(), now: now)
        // A spool reminder to C-1 about F-1 (email and SMS), another about an invoice the receivables ledger does not know.
        var first = reminder("R-1", channels: [.email, .sms], debtor: "C-1")
        first.invoices[0].number = "F-1"
        var other = reminder("R-2", debtor: "C-1")
        other.invoices[0].number = "X-9"
        _ = try await ledger.ingest([first, other], sourceFile: "s.jsonl", queue: "default", priority: 0, now: now)
        let email = DeliveryKey(reminderID: "R-1", channel: .email)
        let attempt = try #require(try await ledger.markSending(email, transport: "smtp", recipient: "compta@martin.example.fr", now: now.addingTimeInterval(10)))
        try await ledger.recordOutcome(email, attempt: attempt, outcome: .sent(providerID: nil, code: 250, detail: "ok"), retryAt: nil, now: now.addingTimeInterval(20))
        try await ledger.cancelDelivery(DeliveryKey(reminderID: "R-1", channel: .sms), reason: "paid", now: now.addingTimeInterval(30))

        let sent = Mutex<[SentReminder]>([])
        try await ledger.forEachReportSnapshot { snapshot, reminders in
            #expect(snapshot.debtor.debtor.id == "C-1")
            sent.withLock { $0 += reminders }
        }
        #expect(sent.withLock { $0 } == [SentReminder(id: "R-1", stage: "reminder_1", sentAt: now.addingTimeInterval(10), invoices: ["F-1"])], "R-2 never left")

        func counts(_ seconds: Double) async throws -> [String] {
            // Summed over stages (one stage here), as relance status counts.
            try await ledger.deliveryCounts(asOf: now.addingTimeInterval(seconds)).map { "\($0.channel) \($0.status) \($0.count)" }
        }
        #expect(try await ledger.deliveryCounts(asOf: now.addingTimeInterval(60)).allSatisfy { $0.stage == "reminder_1" })
        #expect(try await counts(-1) == [], "nothing was ingested yet")
        #expect(try await counts(0) == ["email pending 2", "sms pending 1"])
        #expect(try await counts(15) == ["email pending 1", "email sending 1", "sms pending 1"])
        #expect(try await counts(60) == ["email pending 1", "email sent 1", "sms cancelled 1"])
        #expect(try await counts(60) == (try await ledger.statusCounts()).map { "\($0.channel) \($0.status) \($0.count)" }, "now: what relance status says")
    }
}
