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
