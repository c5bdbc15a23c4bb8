import Foundation
import GRDB
import RelanceCore

extension Ledger {
    // MARK: Risk score

    /// Keeps a fitted model (the newest is the one in force).
    public func saveScoreModel(_ model: ScoreModel, trainedAt: Date) async throws {
        let json = String(decoding: try JSONEncoder().encode(model), as: UTF8.self)
        try await batcher.write { db in
            try db.run(
                sql: "INSERT INTO score_model (trained_at, as_of, model) VALUES (?, ?, ?)",
                arguments: [trainedAt.timeIntervalSince1970, model.asOf.description, json])
        }
    }

    /// The model in force (the last fitted) and when it was fitted; nil before the first `relance score --train`.
    public func latestScoreModel() async throws -> (model: ScoreModel, trainedAt: Date)? {
        try await pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT trained_at, model FROM score_model ORDER BY id DESC LIMIT 1") else { return nil }
            do {
                return (try JSONDecoder().decode(ScoreModel.self, from: Data((row["model"] as String).utf8)), Date(timeIntervalSince1970: row["trained_at"]))
            } catch {
                throw LedgerCorruption(description: "the stored risk model cannot be read (\(error)): fit it again with relance score --train")
            }
        }
    }
}

extension Ledger {
    /// The band of a debtor without one (no open items at the last refit, or none yet): the middle
    /// of the five, so that an unscored debtor neither jumps nor waits behind the scored ones.
    public static let unscoredBand = 2

    /// Replaces every debtor's risk band with `bands` (those of the debtors with open items, from
    /// the model just fitted) and gives each waiting or in-flight delivery its debtor's band, which
    /// orders due work within a priority. Written in debtor ranges of 1,000, one transaction each,
    /// so the send path is never held for long; a debtor left out loses its band.
    public func replaceRiskBands(_ bands: [(debtor: String, band: Int)]) async throws {
        // SQLite compares TEXT by its bytes: so must the ranges.
        let sorted = bands.sorted { $0.debtor.utf8.lexicographicallyPrecedes($1.debtor.utf8) }
        var start = 0
        var lower: String?  // exclusive; nil: from the first
        repeat {
            let end = min(start + 1000, sorted.count)
            let chunk = Array(sorted[start..<end])
            let upper: String? = end == sorted.count ? nil : sorted[end - 1].debtor  // inclusive; nil: to the last
            let bounds = [lower.map { ("debtor_id > ?", $0) }, upper.map { ("debtor_id <= ?", $0) }].compactMap { $0 }
            let condition = bounds.isEmpty ? "1" : bounds.map(\.0).joined(separator: " AND ")
            let arguments = bounds.map(\.1)
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM debtor_risk WHERE \(condition)", arguments: StatementArguments(arguments))
                for (debtor, band) in chunk {
                    try db.run(sql: "INSERT INTO debtor_risk (debtor_id, band) VALUES (?, ?)", arguments: [debtor, band])
                }
                try db.execute(
                    sql: """
                        UPDATE delivery SET risk = COALESCE((SELECT band FROM debtor_risk r WHERE r.debtor_id = delivery.debtor_id), \(Self.unscoredBand))
                        WHERE \(condition) AND status IN ('pending', 'paused', 'sending', 'unknown')
                        """, arguments: StatementArguments(arguments))
            }
            lower = upper
            start = end
        } while start < sorted.count
    }

    /// A debtor's risk band, nil when it has none.
    public func riskBand(debtorID: String) async throws -> Int? {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT band FROM debtor_risk WHERE debtor_id = ?", arguments: [debtorID]) }
    }
}
