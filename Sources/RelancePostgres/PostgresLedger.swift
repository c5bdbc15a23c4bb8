import Foundation
import Logging
import PostgresNIO
import RelanceCore
import RelanceStore
import Synchronization

/// The ledger on PostgreSQL (issue 16, being built one capability at a time; docs/cluster.md):
/// the same contract as the SQLite `Ledger`, checked by the same conformance tests. It owns a
/// `PostgresClient` pool, running from `open` until `close`.
///
/// Capabilities so far: `IntakeStore` (spool intake), `HealthStore` (write check and node
/// heartbeat, queue depths), `SchedulingStore` (the due walk), `ScoreStore` (models, risk bands),
/// `PolicyStore` (cancellations, pauses, kill switches, contact history), `SendingStore` (claims
/// with leases, outcomes settled only by the claim's holder, rescue of lapsed claims),
/// `CallbackStore`, `BounceStore`, `ReconciliationStore`, `RetentionStore` and `ReceivablesStore`
/// (import, snapshots, plan commits under an advisory lock, the report's reads): all of
/// `LedgerStore`; `relance serve` runs on it (`store.url`). The daemon needs them all (`LedgerStore`); until then it refuses `store.url`.
public final class PostgresLedger: Sendable {
    let client: PostgresClient
    let logger: Logger
    let url: PostgresURL
    /// This node's id (`store.node_id`): its claims' `locked_by`.
    public let node: String
    /// How long a claim lasts without renewal (`store.lease`).
    public let lease: Duration
    private let running: Task<Void, Never>
    /// When the purges of expired replay ids and orphan callbacks last ran (at most once a second).
    let purgedAt = Mutex<Double>(-.infinity)
    /// When the busy tables' statistics were last checked (`refreshStatistics`).
    let analyzedAt = Mutex<Double>(-.infinity)

    /// A daemon's node (`open(asNode: true)`); a command that only reads is not one.
    let registered: Bool

    private init(client: PostgresClient, running: Task<Void, Never>, logger: Logger, url: PostgresURL, node: String, lease: Duration, registered: Bool) {
        self.registered = registered
        self.client = client
        self.running = running
        self.logger = logger
        self.url = url
        self.node = node
        self.lease = lease
    }

    /// Connects (a first connection fails fast, in PostgreSQL's words), starts the pool, and
    /// refuses a schema that is not the one this build knows.
    /// `asNode`: a daemon records itself in `relance_node`; a command that only reads does not.
    public static func open(_ settings: PostgresSettings, node: String, lease: Duration = .seconds(60), asNode: Bool = true, logger: Logger) async throws
        -> PostgresLedger
    {
        try await settings.probe(logger: logger)
        let client = PostgresClient(configuration: settings.nodeConfiguration(lease: lease), backgroundLogger: settings.backgroundLogger(logger))
        let running = Task { await client.run() }
        let ledger = PostgresLedger(client: client, running: running, logger: logger, url: settings.url, node: node, lease: lease, registered: asNode)
        do {
            try await ledger.translatingErrors { try await PostgresMigrator.requireCurrent(client, logger: logger) }
            // The node says it is here (`relance_node`); the health checks keep its `seen_at` fresh.
            if asNode, let problem = await ledger.writeProblem(now: Date()) { throw PostgresStoreError(problem) }
        } catch {
            await ledger.close()
            throw error
        }
        return ledger
    }

    /// Stops the pool (its connections are closed).
    public func close() async {
        if registered {
            // What this node reserved and did not claim is every node's again at once (else when the reservations lapse).
            let node = self.node
            _ = try? await client.query("UPDATE delivery SET locked_by = NULL, lease_until = NULL WHERE status = 'pending' AND locked_by = \(node)", logger: logger)
        }
        running.cancel()
        await running.value
    }

    /// PostgreSQL's errors as store errors naming the server (never a password).
    func translatingErrors<T>(_ body: () async throws -> sending T) async throws -> sending T {
        do {
            return try await body()
        } catch let error as PSQLError {
            throw translated(error)
        }
    }

    /// An error as the ledger's callers see it: PostgreSQL's explained and naming the server;
    /// any other (a refusal of the ledger's own, a corruption) as it was thrown.
    func translated(_ error: any Error) -> any Error {
        if let error = error as? PSQLError { return PostgresStoreError("PostgreSQL at \(url): \(PostgresSettings.explain(error))") }
        return error
    }

    /// Runs `body` in one transaction (committed when it returns, rolled back when it throws).
    /// What `body` throws reaches the caller as it was thrown (postgres-nio wraps it).
    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await translatingErrors {
                try await client.withTransaction(logger: logger) { connection in try await body(connection) }
            }
        } catch let error as PostgresTransactionError {
            throw translated(error.cause)
        }
    }
}
