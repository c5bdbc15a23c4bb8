import GRDB
import RelanceCore
import GRDBSQLite

/// A value bound straight into a prepared statement.
enum DirectValue {
    case text(String)
    case real(Double)
    case integer(Int)
    case null

    static func text(_ value: String?) -> DirectValue { value.map(DirectValue.text) ?? .null }
    static func real(_ value: Double?) -> DirectValue { value.map(DirectValue.real) ?? .null }
    static func integer(_ value: Int?) -> DirectValue { value.map(DirectValue.integer) ?? .null }

    /// A delivery's key as the two values of `reminder_id = ? AND channel = ?`.
    static func key(_ key: DeliveryKey) -> [DirectValue] { [.text(key.reminderID), .text(key.channel.rawValue)] }
}

extension Database {
    /// Runs a write statement of the hot paths (intake, claims, outcomes) from the statement cache
    /// with its values bound through SQLite's C API: GRDB's `StatementArguments` box every value in
    /// an existential and walk them generically, which was a third of intake's writer. The
    /// statement runs to its end and is reset; an error is thrown as GRDB's `DatabaseError`.
    func runDirect(sql: String, _ values: [DirectValue]) throws {
        try forEachDirectRow(sql: sql, values) { _ in }
    }

    /// The first row of a statement run to its end (a query, or a write with `RETURNING`), read by
    /// `read`; nil when it returns no row.
    func firstDirectRow<T>(sql: String, _ values: [DirectValue], _ read: (DirectRow) throws -> T) throws -> T? {
        var first: T?
        try forEachDirectRow(sql: sql, values) { row in
            if first == nil { first = try read(row) }
        }
        return first
    }

    /// Runs a statement to its end, handing each row to `body` (valid only during the call).
    func forEachDirectRow(sql: String, _ values: [DirectValue], _ body: (DirectRow) throws -> Void) throws {
        try walkDirectRows(sql: sql, values) { row in
            try body(row)
            return true
        }
    }

    /// Hands a query's rows to `body` until it returns false (then the query stops there).
    func walkDirectRows(sql: String, _ values: [DirectValue], _ body: (DirectRow) throws -> Bool) throws {
        let statement = try cachedStatement(sql: sql)
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        defer { sqlite3_reset(handle) }
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32
            switch value {
            case .text(var text):
                code = text.withUTF8 { sqlite3_bind_text(handle, index, $0.baseAddress, Int32($0.count), directTransient) }
            case .real(let number): code = sqlite3_bind_double(handle, index, number)
            case .integer(let number): code = sqlite3_bind_int64(handle, index, sqlite3_int64(number))
            case .null: code = sqlite3_bind_null(handle, index)
            }
            guard code == SQLITE_OK else { throw directError(code, sql: sql) }
        }
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { return }
            guard code == SQLITE_ROW else { throw directError(code, sql: sql) }
            guard try body(DirectRow(handle: handle)) else { return }
        }
    }

    private func directError(_ code: Int32, sql: String) -> DatabaseError {
        let message = sqliteConnection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
    }
}

/// The current row of a statement run with `forEachDirectRow`, read by column position.
struct DirectRow {
    let handle: OpaquePointer

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    func text(_ column: Int32) -> String? {
        guard !isNull(column), let bytes = sqlite3_column_text(handle, column) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(handle, column))), as: UTF8.self)
    }

    func integer(_ column: Int32) -> Int? { isNull(column) ? nil : Int(sqlite3_column_int64(handle, column)) }

    func real(_ column: Int32) -> Double? { isNull(column) ? nil : sqlite3_column_double(handle, column) }

    /// A channel column; anything else is a corrupt ledger (as `Row.channel`).
    func channel(_ column: Int32) throws -> Channel {
        guard let raw = text(column), let channel = Channel(rawValue: raw) else {
            throw LedgerCorruption(description: "unknown channel '\(text(column) ?? "NULL")' in the ledger (column \(column))")
        }
        return channel
    }
}

/// SQLite copies the bytes it is given (`SQLITE_TRANSIENT`).
private let directTransient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
