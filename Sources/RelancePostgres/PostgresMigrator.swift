import Foundation
import Logging
import PostgresNIO

/// Brings a PostgreSQL ledger's schema up to `PostgresSchema.current` (`relance migrate`), and
/// checks it before a node uses it. Versions are rows of `relance_schema`; the steps missing run
/// in one transaction under an advisory lock, so two nodes migrating at once apply each step once,
/// and a failed step leaves the schema as it was.
public enum PostgresMigrator {
    /// Where a database's schema stands against this build.
    public enum Standing: Sendable, Equatable {
        case upToDate(Int)
        /// Older (0: no Relance schema yet): `relance migrate` brings it up.
        case older(Int)
        /// Written by a newer Relance: this build must not touch it.
        case newer(Int)
    }

    /// What `migrate` did.
    public struct Report: Sendable, Equatable {
        public var from: Int
        public var to: Int
        public var applied: [String]
    }

    /// Key of the advisory lock taken while migrating ("relance" in ASCII, as a number).
    static let lockKey: Int64 = 0x7265_6C61_6E63_65

    public static func standing(_ client: PostgresClient, logger: Logger) async throws -> Standing {
        let version = try await currentVersion(client, logger: logger)
        if version > PostgresSchema.current { return .newer(version) }
        return version == PostgresSchema.current ? .upToDate(version) : .older(version)
    }

    /// The schema's version, 0 when the database has no Relance schema.
    static func currentVersion(_ client: PostgresClient, logger: Logger) async throws -> Int {
        let exists = try await client.query("SELECT to_regclass('relance_schema') IS NOT NULL", logger: logger)
        for try await (present) in exists.decode(Bool.self) where !present { return 0 }
        let rows = try await client.query("SELECT COALESCE(MAX(version), 0) FROM relance_schema", logger: logger)
        for try await (version) in rows.decode(Int.self) { return version }
        return 0
    }

    /// Applies the missing steps; refuses a schema newer than this build knows.
    public static func migrate(_ client: PostgresClient, logger: Logger, now: Date = Date()) async throws -> Report {
        do {
            return try await steps(client, logger: logger, now: now)
        } catch let error as PostgresTransactionError {
            throw error.cause
        }
    }

    static func steps(_ client: PostgresClient, logger: Logger, now: Date) async throws -> Report {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS relance_schema (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at double precision NOT NULL
                )
                """, logger: logger)
            var from = 0
            for try await (version) in try await connection.query("SELECT COALESCE(MAX(version), 0) FROM relance_schema", logger: logger).decode(Int.self) {
                from = version
            }
            guard from <= PostgresSchema.current else {
                throw PostgresStoreError(
                    "the schema is at version \(from), newer than this Relance knows (\(PostgresSchema.current)): upgrade Relance on this node, never downgrade the schema"
                )
            }
            var applied: [String] = []
            for migration in PostgresSchema.migrations where migration.version > from {
                for statement in migration.sql {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                let name = migration.name
                let version = migration.version
                try await connection.query(
                    "INSERT INTO relance_schema (version, name, applied_at) VALUES (\(version), \(name), \(now.timeIntervalSince1970))", logger: logger)
                applied.append("\(version) \(name)")
            }
            return Report(from: from, to: max(from, PostgresSchema.current), applied: applied)
        }
    }

    /// Refuses a database this build cannot use as it is, saying what to do.
    public static func requireCurrent(_ client: PostgresClient, logger: Logger) async throws {
        switch try await standing(client, logger: logger) {
        case .upToDate: return
        case .older(0): throw PostgresStoreError("the database has no Relance schema yet: run relance migrate first")
        case .older(let version):
            throw PostgresStoreError("the schema is at version \(version), this Relance needs \(PostgresSchema.current): run relance migrate first")
        case .newer(let version):
            throw PostgresStoreError(
                "the schema is at version \(version), newer than this Relance knows (\(PostgresSchema.current)): upgrade Relance on this node")
        }
    }
}
