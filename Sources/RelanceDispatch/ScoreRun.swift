import Foundation
import RelanceCore
import RelanceStore
import Synchronization

/// The risk score's work on the receivables ledger, for `relance score` and the daemon's refit:
/// every debtor's history read once, one debtor at a time.
public enum ScoreRun {
    /// Every debtor's payment history (or one debtor's).
    public static func histories(_ ledger: any LedgerStore, debtor: String? = nil) async throws -> [DebtorHistory] {
        try await pipelined(ledger, debtor: debtor) { [$0] }
    }

    /// `transform` of every debtor's history, in debtor order. The ledger's reader decodes the
    /// snapshots while another thread builds the histories (their standings) and transforms them:
    /// batches of 256 debtors, at most 4 waiting, so memory stays bounded and both cores work.
    static func pipelined<T: Sendable>(
        _ ledger: any LedgerStore, debtor: String?, _ transform: @escaping @Sendable (DebtorHistory) -> [T]
    ) async throws -> [T] {
        let results = Mutex<[T]>([])
        let worker = DispatchQueue(label: "relance.score.histories")
        let room = DispatchSemaphore(value: 4)
        let batch = Mutex<[DebtorSnapshot]>([])
        // `waiting`: from the ledger's reader (its own thread), which waits for room; the last
        // batch, from the caller's task, is queued without waiting (never block the cooperative pool).
        let submit: @Sendable ([DebtorSnapshot], _ waiting: Bool) -> Void = { snapshots, waiting in
            if waiting { room.wait() }
            worker.async {
                var part: [T] = []
                for snapshot in snapshots { part += transform(DebtorHistory(snapshot)) }
                results.withLock { $0 += part }
                if waiting { room.signal() }
            }
        }
        do {
            try await ledger.forEachDebtorSnapshot(debtor: debtor) { snapshot in
                let full = batch.withLock { batch -> [DebtorSnapshot]? in
                    batch.append(snapshot)
                    guard batch.count >= 256 else { return nil }
                    defer { batch.removeAll(keepingCapacity: true) }
                    return batch
                }
                if let full { submit(full, true) }
            }
        } catch {
            await withCheckedContinuation { continuation in worker.async { continuation.resume() } }
            throw error
        }
        let last = batch.withLock { $0 }
        if !last.isEmpty { submit(last, false) }
        await withCheckedContinuation { continuation in worker.async { continuation.resume() } }
        return results.withLock { $0 }
    }

    /// What a refit did: the models now in force, and how many debtors have a risk band.
    public struct Training: Sendable {
        public var model: ScoreModel
        public var bandedDebtors: Int
    }

    /// Fits the models on the history known on `asOf`, keeps them in the ledger, and gives every
    /// debtor with open items on `bandsOn` (today) the band of its riskiest item, by which the
    /// dispatcher orders due work within a priority.
    public static func train(_ ledger: any LedgerStore, asOf: CivilDate, bandsOn: CivilDate, now: Date) async throws -> Training {
        let histories = try await histories(ledger)
        let model = try ScoreModel.train(histories, asOf: asOf)
        try await ledger.saveScoreModel(model, trainedAt: now)
        let bands = riskBands(histories, model: model, on: bandsOn)
        try await ledger.replaceRiskBands(bands)
        return Training(model: model, bandedDebtors: bands.count)
    }

    /// Each debtor with open items on `day`, with the band of its riskiest one.
    static func riskBands(_ histories: [DebtorHistory], model: ScoreModel, on day: CivilDate) -> [(debtor: String, band: Int)] {
        histories.compactMap { history in
            openItems(of: history, model: model, on: day).map(\.score.band).max().map { (history.debtor, $0) }
        }
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

    /// The open items (issued, neither paid nor written off) on `day`, scored, riskiest first: read
    /// from the ledger while the histories are scored on another thread.
    public static func openItems(_ ledger: any LedgerStore, debtor: String?, model: ScoreModel, on day: CivilDate) async throws -> [OpenItem] {
        sorted(try await pipelined(ledger, debtor: debtor) { openItems(of: $0, model: model, on: day) })
    }

    static func openItems(of history: DebtorHistory, model: ScoreModel, on day: CivilDate) -> [OpenItem] {
        var items: [OpenItem] = []
        for (i, invoice) in history.invoices.enumerated()
        where invoice.issuedOn <= day.dayNumber && invoice.paidOn.map({ $0 > day.dayNumber }) ?? true
            && invoice.writtenOffOn.map({ $0 > day.dayNumber }) ?? true
        {
            items.append(OpenItem(debtor: history.debtor, invoice: invoice, score: model.score(history, index: i, on: day.dayNumber + 1)))
        }
        return items
    }

    static func sorted(_ items: [OpenItem]) -> [OpenItem] {
        items.sorted { ($0.score.pLate, $1.invoice.number) > ($1.score.pLate, $0.invoice.number) }
    }
}
