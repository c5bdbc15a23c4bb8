import ArgumentParser
import Foundation
import Logging
import RelanceConfig
import RelanceCore
import RelanceDaemon
import RelanceDispatch
import RelancePostgres
import RelanceStore

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bring the ledger's schema up to date: the PostgreSQL database of store.url, else the SQLite file of store.path.",
        discussion: """
            On PostgreSQL, the missing steps run in one transaction under an advisory lock, so nodes \
            migrating at once apply each step once; a schema newer than this Relance is refused (upgrade \
            Relance, never downgrade the schema). A SQLite ledger is also brought up to date whenever it is opened for writing.
            """)

    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await Self.guarded {
            let configuration = try options.resolve().configuration
            guard let settings = postgresSettings(configuration) else {
                let ledger = try Ledger(path: configuration.store.path)
                print("SQLite ledger \(configuration.store.path): schema up to date (\(try await ledger.schemaVersion()))")
                return
            }
            let logger = makeLogger(configuration)
            let report = try await settings.withClient(logger: logger) { client in try await PostgresMigrator.migrate(client, logger: logger) }
            if report.applied.isEmpty {
                print("\(settings.url): schema up to date (version \(report.to))")
            } else {
                print("\(settings.url): schema migrated from version \(report.from) to \(report.to)")
                for step in report.applied { print("  applied \(step)") }
            }
        }
    }
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the SQLite ledger (store.path) into an empty PostgreSQL database, then count every table on both sides.",
        discussion: """
            Stop the daemon first: the ledger is read from one snapshot while nothing else writes it. The \
            target must be migrated (relance migrate with store.url set to it) and empty; the copy is one \
            transaction, so a failure leaves it empty. The password is store.password (a credential, \
            $CREDENTIALS_DIRECTORY/store-password, or RELANCE_STORE_PASSWORD). Exit 1 if any count differs.
            """)

    @OptionGroup var options: ConfigOption
    @Option(help: "The PostgreSQL database: postgres://USER@HOST:PORT/DATABASE[?sslmode=disable|require|verify-full].") var to: String

    func run() async throws {
        try await Self.guarded {
            let configuration = try options.resolve().configuration
            let url: PostgresURL
            do { url = try PostgresURL(parsing: to) } catch { throw Fail.usage("--to: \(error)") }
            let lock: LedgerLock
            do { lock = try LedgerLock(ledgerPath: configuration.store.path) } catch let error as LedgerLock.LockHeld {
                throw Fail.runtime("\(error.description): stop the daemon before exporting its ledger")
            }
            let ledger = try existingWritableLedger(configuration)
            let logger = makeLogger(configuration)
            let settings = PostgresSettings(url: url, password: configuration.store.password, connections: 2)
            let started = ContinuousClock.now
            let tables = try await LedgerExport.run(from: ledger, to: settings, logger: logger)
            withExtendedLifetime(lock) {}
            var mismatches = 0
            print("TABLE\tSQLITE\tPOSTGRESQL")
            for table in tables {
                print("\(table.name)\t\(table.rows)\t\(table.copied)\(table.rows == table.copied ? "" : "\tDIFFERS")")
                if table.rows != table.copied { mismatches += 1 }
            }
            let rows = tables.reduce(0) { $0 + $1.rows }
            guard mismatches == 0 else { throw Fail.runtime("\(mismatches) tables differ after the copy to \(url)") }
            print("exported \(rows) rows in \(tables.count) tables to \(url), every count verified (\(ContinuousClock.now - started))")
        }
    }

    /// The ledger, brought up to the current schema (the export mirrors the current one), or an error if there is none.
    func existingWritableLedger(_ configuration: RelanceConfiguration) throws -> Ledger {
        guard FileManager.default.fileExists(atPath: configuration.store.path) else {
            throw Fail.runtime("no ledger at \(configuration.store.path) (nothing was ever ingested)")
        }
        return try Ledger(path: configuration.store.path)
    }
}

/// The PostgreSQL ledger of `store.url`, nil for the embedded SQLite ledger.
func postgresSettings(_ configuration: RelanceConfiguration) -> PostgresSettings? {
    configuration.store.url.map { PostgresSettings(url: $0, password: configuration.store.password, connections: configuration.store.connections) }
}

/// The ledger a preview or a dry run reads, when there is one: PostgreSQL (`store.url`), or the
/// SQLite file read-only if it exists (a dry run never creates one).
func withLedgerIfPresent<T>(_ configuration: RelanceConfiguration, _ body: ((any LedgerStore)?) async throws -> T) async throws -> T {
    if configuration.store.url != nil { return try await withLedger(configuration, write: false) { ledger in try await body(ledger) } }
    return try await body(Previewer.openLedgerIfPresent(configuration))
}

/// The ledger a command works on, opened for `body` and closed after, whatever happens: the
/// PostgreSQL database of `store.url` (a command is not a node: it neither registers nor takes
/// claims), or the SQLite file of `store.path`, read-only unless `write`. An absent SQLite file is
/// an error (`no ledger at PATH` and `absent`), unless `create` (a first import creates it).
func withLedger<T>(
    _ configuration: RelanceConfiguration, write: Bool, create: Bool = false, absent: String = " (nothing was ever ingested)",
    _ body: (any LedgerStore) async throws -> T
) async throws -> T {
    if let settings = postgresSettings(configuration) {
        let quiet = Logger(label: "relance") { _ in SwiftLogNoOpLogHandler() }
        let ledger = try await PostgresLedger.open(
            settings, node: configuration.store.node, lease: configuration.store.lease.value, asNode: false, logger: quiet)
        do {
            let result = try await body(ledger)
            await ledger.close()
            return result
        } catch {
            await ledger.close()
            throw error
        }
    }
    if !create && !FileManager.default.fileExists(atPath: configuration.store.path) {
        throw Fail.runtime("no ledger at \(configuration.store.path)\(absent)")
    }
    return try await body(try Ledger(path: configuration.store.path, readOnly: !write))
}
