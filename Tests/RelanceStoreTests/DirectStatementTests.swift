import GRDB
import Testing

@testable import RelanceStore

/// The hot paths' statements bound through SQLite's C API read and write what GRDB would, and fail
/// as GRDB does.
@Suite struct DirectStatementTests {
    @Test func valuesRoundTripAndErrorsCarrySQLitesWords() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (id TEXT PRIMARY KEY NOT NULL, n INTEGER, x REAL, note TEXT)")
            try db.runDirect(sql: "INSERT INTO t (id, n, x, note) VALUES (?, ?, ?, ?)", [.text("é-1 \u{1F600}"), .integer(42), .real(1.5), .text(nil)])
            #expect(db.changesCount == 1)
            let row = try db.firstDirectRow(sql: "SELECT id, n, x, note FROM t WHERE id = ?", [.text("é-1 \u{1F600}")]) { row in
                (row.text(0), row.integer(1), row.real(2), row.text(3), row.isNull(3))
            }
            #expect(row?.0 == "é-1 \u{1F600}" && row?.1 == 42 && row?.2 == 1.5 && row?.3 == nil && row?.4 == true)
            // GRDB reads the same row.
            #expect(try Row.fetchOne(db, sql: "SELECT n, note FROM t") == ["n": 42, "note": nil])
            #expect(try db.firstDirectRow(sql: "SELECT id FROM t WHERE id = ?", [.text("none")]) { $0.text(0) } == nil, "no row: nil")
            // A write with RETURNING runs to its end and gives its first row.
            let returned = try db.firstDirectRow(sql: "UPDATE t SET n = n + 1 RETURNING n", []) { $0.integer(0) }
            #expect(returned == 43)
            do {
                try db.runDirect(sql: "INSERT INTO t (id) VALUES (?)", [.text("é-1 \u{1F600}")])
                Issue.record("a duplicate key was accepted")
            } catch let error as DatabaseError {
                #expect(error.resultCode == .SQLITE_CONSTRAINT)
                #expect(error.message?.contains("UNIQUE constraint failed: t.id") == true, "\(error)")
            }
            // The statement is usable again after a failure.
            try db.runDirect(sql: "INSERT INTO t (id) VALUES (?)", [.text("2")])
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM t") == 2)
        }
    }
}
