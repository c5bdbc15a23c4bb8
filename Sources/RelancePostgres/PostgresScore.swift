import Foundation
import PostgresNIO
import RelanceCore
import RelanceStore

extension PostgresLedger: ScoreStore {
    public func saveScoreModel(_ model: ScoreModel, trainedAt: Date) async throws {
        let json = String(decoding: try JSONEncoder().encode(model), as: UTF8.self)
        let (t, asOf) = (trainedAt.timeIntervalSince1970, model.asOf.description)
        _ = try await translatingErrors {
            try await client.query("INSERT INTO score_model (trained_at, as_of, model) VALUES (\(t), \(asOf), \(json))", logger: logger)
        }
    }

    public func latestScoreModel() async throws -> (model: ScoreModel, trainedAt: Date)? {
        let stored: (Double, String)? = try await translatingErrors {
            for try await row in try await client.query("SELECT trained_at, model FROM score_model ORDER BY id DESC LIMIT 1", logger: logger).decode(
                (Double, String).self)
            {
                return row
            }
            return nil
        }
        guard let (trainedAt, json) = stored else { return nil }
        do {
            return (try JSONDecoder().decode(ScoreModel.self, from: Data(json.utf8)), Date(timeIntervalSince1970: trainedAt))
        } catch {
            throw LedgerCorruption(description: "the stored risk model cannot be read (\(error)): fit it again with relance score --train")
        }
    }

    /// As `Ledger.replaceRiskBands`: debtor ranges of 1,000 (byte order: the ids' collation is "C"),
    /// one transaction each, so the send path is never held for long.
    public func replaceRiskBands(_ bands: [(debtor: String, band: Int)]) async throws {
        let sorted = bands.sorted { $0.debtor.utf8.lexicographicallyPrecedes($1.debtor.utf8) }
        var start = 0
        var lower: String?
        repeat {
            let end = min(start + 1000, sorted.count)
            let chunk = Array(sorted[start..<end])
            let upper: String? = end == sorted.count ? nil : sorted[end - 1].debtor
            let unscored = Ledger.unscoredBand
            try await transaction { connection in
                // NULL bounds are open: the first range has no lower one, the last no upper one.
                try await connection.query(
                    """
                    DELETE FROM debtor_risk WHERE (\(lower)::text IS NULL OR debtor_id > \(lower))
                      AND (\(upper)::text IS NULL OR debtor_id <= \(upper))
                    """, logger: logger)
                for (debtor, band) in chunk {
                    try await connection.query("INSERT INTO debtor_risk (debtor_id, band) VALUES (\(debtor), \(band))", logger: logger)
                }
                try await connection.query(
                    """
                    UPDATE delivery SET risk = COALESCE((SELECT band FROM debtor_risk r WHERE r.debtor_id = delivery.debtor_id), \(unscored))
                    WHERE (\(lower)::text IS NULL OR debtor_id > \(lower)) AND (\(upper)::text IS NULL OR debtor_id <= \(upper))
                      AND status IN ('pending', 'paused', 'sending', 'unknown')
                    """, logger: logger)
            }
            lower = upper
            start = end
        } while start < sorted.count
    }

    public func riskBand(debtorID: String) async throws -> Int? {
        try await translatingErrors {
            for try await (band) in try await client.query("SELECT band FROM debtor_risk WHERE debtor_id = \(debtorID)", logger: logger).decode(Int.self) {
                return band
            }
            return nil
        }
    }
}
