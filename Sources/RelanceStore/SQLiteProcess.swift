import CSQLiteProcess
import GRDBSQLite

/// SQLite's process-wide settings, applied once, before the first connection of the process opens
/// (`Ledger.init` asks for them).
///
/// No memory statistics: with them (SQLite's default), every allocation and free inside SQLite
/// took one mutex shared by the writer and the readers, and Debian's SQLite is built without
/// lookaside memory, so that is every row read and every statement run — about 6 % of an SMS
/// run's CPU, contended. Nothing in Relance reads SQLite's memory statistics.
enum SQLiteProcess {
    /// False when SQLite had already started in this process (something opened a database
    /// first): its defaults then stay in force, slower and as correct.
    static let applied: Bool = RelanceSQLite_disableMemoryStatistics() == SQLITE_OK
}
