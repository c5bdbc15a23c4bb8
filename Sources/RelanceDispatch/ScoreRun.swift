import Foundation
import RelanceCore
import RelanceStore
import Synchronization

/// The risk score's work on the receivables ledger, for `relance score` and the daemon's refit:
/// every debtor's history read once, one debtor at a time.
public enum ScoreRun {
    /// Every debtor's payment history (or one debtor's).
    public static func histories(_ ledger: any LedgerStore, debtor: String? = nil) async throws -> [DebtorHistory] {
        let histories = Mutex<[DebtorHistory]>([])
        try await ledger.forEachDebtorSnapshot(debtor: debtor) { snapshot in
            let history = DebtorHistory(snapshot)
            histories.withLock { $0.append(history) }
        }
        return histories.withLock { $0 }
    }

    /// Fits the models on the history known on `asOf` and keeps them in the ledger.
    public static func train(_ ledger: any LedgerStore, asOf: CivilDate, now: Date) async throws -> ScoreModel {
        let model = try ScoreModel.train(try await histories(ledger), asOf: asOf)
        try await ledger.saveScoreModel(model, trainedAt: now)
        return model
    }

    /// One open item's score: the invoice, what is left of it, and the model's answer.
    public struct OpenItem: Sendable {
        public var debtor: String
        public var invoice: ScoredInvoice
        public var score: ScoreModel.Score

        /// The expected payment date: issue date plus the band's median days to pay given its age.
        public var expectedPaymentDate: CivilDate? {
            score.expectedDaysToPay.map { CivilDate(dayNumber: invoice.issuedOn + Int($0.rounded(.up))) }
        }
    }

    /// The open items (issued, neither paid nor written off) on `day`, scored, riskiest first.
    public static func openItems(_ histories: [DebtorHistory], model: ScoreModel, on day: CivilDate) -> [OpenItem] {
        var items: [OpenItem] = []
        for history in histories {
            for (i, invoice) in history.invoices.enumerated()
            where invoice.issuedOn <= day.dayNumber && invoice.paidOn.map({ $0 > day.dayNumber }) ?? true
                && invoice.writtenOffOn.map({ $0 > day.dayNumber }) ?? true
            {
                items.append(OpenItem(debtor: history.debtor, invoice: invoice, score: model.score(history, index: i, on: day.dayNumber + 1)))
            }
        }
        return items.sorted { ($0.score.pLate, $1.invoice.number) > ($1.score.pLate, $0.invoice.number) }
    }
}
