import Foundation
import GRDB

/// A stored value, as an export to another backend reads it.
public enum ExportValue: Sendable, Hashable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

/// What an export reads, in order: each table's columns, its rows, then its end with its count.
public enum ExportEvent: Sendable {
    case table(String, columns: [String])
    case row([ExportValue?])
    case end(String, rows: Int)
}

extension Ledger {
    /// The ledger's own tables (SQLite's and GRDB's bookkeeping, and the write check, left out).
    public func tableNames() async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT name FROM sqlite_master WHERE type = 'table'
                      AND name NOT LIKE 'sqlite_%' AND name NOT IN ('grdb_migrations', 'health') ORDER BY name
                    """)
        }
    }

    /// Streams `tables`, whole, from one snapshot of the ledger to `body`, on the reader's thread
    /// (`body` may block it to apply back-pressure; never on the cooperative pool).
    public func export(tables: [String], _ body: @escaping @Sendable (ExportEvent) throws -> Void) async throws {
        let known = Set(try await tableNames())
        for table in tables where !known.contains(table) {
            throw LedgerCorruption(description: "the ledger has no table \(table)")
        }
        try await pool.read { db in
            for table in tables {
                // Names come from the caller's fixed list, checked above against the schema.
                let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(\(table))").map { $0["name"] as String }
                try body(.table(table, columns: columns))
                let rows = try Row.fetchCursor(db, sql: "SELECT \(columns.map { "\"\($0)\"" }.joined(separator: ", ")) FROM \(table)")
                var count = 0
                while let row = try rows.next() {
                    var values: [ExportValue?] = []
                    values.reserveCapacity(columns.count)
                    for i in 0..<columns.count {
                        let value: DatabaseValue = row[i]
                        switch value.storage {
                        case .null: values.append(nil)
                        case .int64(let n): values.append(.integer(n))
                        case .double(let d): values.append(.real(d))
                        case .string(let s): values.append(.text(s))
                        case .blob(let data): values.append(.blob(Array(data)))
                        }
                    }
                    try body(.row(values))
                    count += 1
                }
                try body(.end(table, rows: count))
            }
        }
    }
}
