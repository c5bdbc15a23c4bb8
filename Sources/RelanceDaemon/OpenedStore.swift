import Foundation
import Logging
import RelanceConfig
import RelancePostgres
import RelanceStore

/// The ledger the daemon runs on: the SQLite file of `store.path` under its lock (one daemon per
/// ledger), or the PostgreSQL database of `store.url` shared by several nodes (no lock: claims
/// carry leases instead).
struct OpenedStore: Sendable {
    let ledger: any LedgerStore
    let lock: LedgerLock?
    /// The claims' lease on PostgreSQL; nil on SQLite.
    let lease: Duration?
    let close: @Sendable () async -> Void

    static func open(_ configuration: RelanceConfiguration, logger: Logger) async throws -> OpenedStore {
        let store = configuration.store
        guard let url = store.url else {
            let lock = try LedgerLock(ledgerPath: store.path)
            return OpenedStore(ledger: try Ledger(path: store.path), lock: lock, lease: nil, close: {})
        }
        let settings = PostgresSettings(url: url, password: store.password, connections: store.connections)
        let ledger = try await PostgresLedger.open(settings, node: store.node, lease: store.lease.value, logger: logger)
        logger.notice(
            "ledger on PostgreSQL", metadata: ["relance.store": "\(url)", "relance.node": "\(store.node)", "relance.lease": "\(store.lease)"])
        return OpenedStore(ledger: ledger, lock: nil, lease: store.lease.value, close: { await ledger.close() })
    }
}
