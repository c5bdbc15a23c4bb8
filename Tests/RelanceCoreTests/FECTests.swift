import Foundation
import Testing

@testable import RelanceCore

/// The hand-written sample FEC (Tests/Fixtures/sample-fec.txt): journals AN, VE, BQ, OD; lettering
/// A (an invoice paid in full), B (an invoice, its credit note and a partial payment); an
/// unlettered cheque; an opening entry of last year.
@Suite struct FECTests {
    static let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/sample-fec.txt")

    /// Each debtor's open items as of `date`, with 30-day terms, from what the reader produced.
    static func openItems(_ records: [ReceivableRecord], on date: CivilDate) -> [String: Int64] {
        let terms = PaymentTerms(kind: .days, days: 30)
        var invoices: [ReceivableInvoice] = []
        var movements: [ReceivableMovement] = []
        for record in records {
            switch record {
            case .invoice(let parsed): invoices.append(parsed.resolved(terms: terms))
            case .creditNote(let id, let invoice, let amount, let on):
                movements.append(.creditNote(id: id, invoice: invoice, amount: MinorAmount(amount, currency: "EUR")?.units ?? -1, issuedOn: on))
            case .movement(_, _, let movement): movements.append(movement)
            default: Issue.record("unexpected \(record)")
            }
        }
        var open: [String: Int64] = [:]
        for debtor in Set(invoices.map(\.debtor)) {
            let mine = invoices.filter { $0.debtor == debtor }
            let numbers = Set(mine.map(\.number))
            let theirs = movements.filter { m in
                if case .payment(let id, _, _, _, _) = m { return id.contains("-\(debtor)") }
                return m.invoice.map(numbers.contains) ?? false
            }
            for item in DebtorStanding.compute(invoices: mine, movements: theirs, on: date).items where item.outstanding > 0 {
                open[item.id.invoice] = item.outstanding
            }
        }
        return open
    }

    @Test func theSampleImportsToTheOpenItemsComputedByHand() throws {
        let bytes = Array(try Data(contentsOf: Self.sample))
        let results = FECReader().records(bytes)
        let failures = results.filter { if case .failure = $0.value { true } else { false } }
        #expect(failures.isEmpty, "\(failures)")
        let records = results.compactMap { try? $0.value.get() }
        let invoices = records.compactMap { if case .invoice(let i) = $0 { i } else { nil } }
        #expect(invoices.map(\.number).sorted() == ["FA-2025-118", "FA-2026-001", "FA-2026-002", "FA-2026-003", "FA-2026-004"])
        #expect(invoices.first { $0.number == "FA-2025-118" }?.issuedOn == CivilDate("2025-12-15"), "an opening entry keeps its piece date")
        #expect(invoices.allSatisfy { $0.dueOn == nil && $0.currency == "EUR" }, "FEC has no due dates: terms give them")
        #expect(records.contains { if case .creditNote(_, "FA-2026-002", "240.00", _) = $0 { true } else { false } }, "the VE credit is a credit note")
        // By hand: FA-2026-001 paid (A); FA-2026-002 2400 − 240 − 1000 (B); FA-2026-003 unlettered, open;
        // the unlettered cheque of 300 settles CLI003's oldest item (FA-2025-118: 960 → 660); FA-2026-004 open.
        #expect(
            Self.openItems(records, on: CivilDate("2026-03-31")!) == [
                "FA-2026-002": 116_000, "FA-2026-003": 60_000, "FA-2025-118": 66_000, "FA-2026-004": 48_000,
            ])
        // Reading twice gives the same records (ids derive from journal, entry and debtor).
        #expect(FECReader().records(bytes).compactMap { try? $0.value.get() } == records)
    }

    @Test func aMalformedLineIsReportedWithItsNumberAndColumn() throws {
        var text = try String(contentsOf: Self.sample, encoding: .utf8)
        text = text.replacingOccurrences(of: "20260120\t41100000", with: "2026-01-20\t41100000")
        text = text.replacingOccurrences(of: "\"", with: "")
        text += "VE\tVentes\tVE000009\t20260302\t41100000\tClients\tCLI001\tBoulangerie\tFA-2026-009\n"
        text += "VE\tVentes\tVE000010\t20260302\t41100000\tClients\tCLI001\tBoulangerie Martin\tFA-2026-010\t20260302\tFacture\t12,5O\t0,00\t\t\t\t\t\n"
        let results = FECReader().records(Array(text.utf8))
        let failures = results.compactMap { r -> (Int, [String])? in
            if case .failure(let issues) = r.value { return (r.line, issues.issues.map(\.field)) }
            return nil
        }
        #expect(failures.map(\.0) == [10, 27, 28], "\(failures)")
        #expect(failures.first?.1 == ["EcritureDate"])
        #expect(failures.last?.1 == ["Debit"])
        // The rest still reads.
        #expect(results.contains { if case .success(.invoice(let i)) = $0.value { i.number == "FA-2026-004" } else { false } })
    }

    @Test func aFileThatIsNotAFECIsRefusedAtItsHeader() {
        let results = FECReader().records(Array("number,debtor\nF-1,C-1\n".utf8))
        #expect(results.count == 1 && results[0].line == 1)
        #expect(FECReader.amount("1 234,50", currency: "EUR") == 123_450 && FECReader.amount("", currency: "EUR") == 0)
        #expect(FECReader.amount("12,345", currency: "EUR") == nil && FECReader.date("20260231") == nil)
    }
}
