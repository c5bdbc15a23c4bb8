import Foundation
import Logging
import NIOCore
import PostgresNIO
import RelanceStore
import Synchronization

/// `relance export --to postgres://…`: copies a SQLite ledger, read from one snapshot, into an
/// empty PostgreSQL ledger at the current schema, in one transaction (`COPY … FROM STDIN`, streamed:
/// the ledger is never all in memory), then counts every table on both sides.
public enum LedgerExport {
    /// One table copied: its rows in the SQLite snapshot and in PostgreSQL after the commit.
    public struct Table: Sendable, Equatable {
        public var name: String
        public var rows: Int
        public var copied: Int
    }

    /// What the reader hands the writer: a table's start, a chunk of COPY text, its end.
    enum Chunk: Sendable {
        case begin(String, columns: [String])
        case data([UInt8])
        case end(String, rows: Int)
    }

    public static func run(from ledger: Ledger, to settings: PostgresSettings, logger: Logger) async throws -> [Table] {
        let tables = PostgresSchema.exportedTables
        let unknown = Set(try await ledger.tableNames()).subtracting(tables)
        guard unknown.isEmpty else {
            throw PostgresStoreError("the ledger has tables this Relance cannot export (\(unknown.sorted().joined(separator: ", "))): upgrade Relance")
        }
        return try await settings.withClient(logger: logger) { client in
            try await PostgresMigrator.requireCurrent(client, logger: logger)
            for table in tables {
                for try await (holds) in try await client.query(PostgresQuery(unsafeSQL: "SELECT EXISTS (SELECT 1 FROM \(table))"), logger: logger)
                    .decode(Bool.self) where holds
                {
                    throw PostgresStoreError("\(settings.url) already holds data (table \(table)): export only into an empty database, just migrated")
                }
            }
            let rows: [String: Int]
            do {
                rows = try await copy(ledger, tables: tables, into: client, logger: logger)
            } catch let error as PostgresTransactionError {
                throw error.cause
            }
            var result: [Table] = []
            for table in tables {
                var copied = 0
                for try await (n) in try await client.query(PostgresQuery(unsafeSQL: "SELECT COUNT(*) FROM \(table)"), logger: logger).decode(Int.self) {
                    copied = n
                }
                result.append(Table(name: table, rows: rows[table] ?? 0, copied: copied))
            }
            return result
        }
    }

    /// The copy itself: the ledger's reader encodes rows on its own thread (at most 8 chunks of
    /// 256 KiB ahead) while this task streams them to PostgreSQL.
    static func copy(_ ledger: Ledger, tables: [String], into client: PostgresClient, logger: Logger) async throws -> [String: Int] {
        let (stream, continuation) = AsyncThrowingStream<Chunk, any Error>.makeStream()
        let room = DispatchSemaphore(value: 8)
        let stopped = Mutex(false)
        let reader = Task {
            let buffer = Mutex<[UInt8]>([])
            let send: @Sendable (Chunk) throws -> Void = { chunk in
                if stopped.withLock({ $0 }) { throw CancellationError() }
                room.wait()
                if stopped.withLock({ $0 }) { throw CancellationError() }
                continuation.yield(chunk)
            }
            do {
                try await ledger.export(tables: tables) { event in
                    switch event {
                    case .table(let name, let columns):
                        try send(.begin(name, columns: columns))
                    case .row(let values):
                        let full = buffer.withLock { buffer -> [UInt8]? in
                            CopyText.append(values, to: &buffer)
                            guard buffer.count >= 256 << 10 else { return nil }
                            defer { buffer.removeAll(keepingCapacity: true) }
                            return buffer
                        }
                        if let full { try send(.data(full)) }
                    case .end(let name, let rows):
                        let rest = buffer.withLock { buffer in
                            defer { buffer.removeAll(keepingCapacity: true) }
                            return buffer
                        }
                        if !rest.isEmpty { try send(.data(rest)) }
                        try send(.end(name, rows: rows))
                    }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        defer {
            stopped.withLock { $0 = true }
            room.signal()
            reader.cancel()
        }
        var iterator = stream.makeAsyncIterator()
        var counts: [String: Int] = [:]
        try await client.withTransaction(logger: logger) { connection in
            while let chunk = try await iterator.next(isolation: #isolation) {
                room.signal()
                guard case .begin(let table, let columns) = chunk else { throw PostgresStoreError("export: a table's rows came before its start") }
                try await connection.copyFrom(table: table, columns: columns, logger: logger) { writer in
                    while let next = try await iterator.next(isolation: #isolation) {
                        room.signal()
                        switch next {
                        case .data(let bytes): try await writer.write(ByteBuffer(bytes: bytes))
                        case .end(_, let rows):
                            counts[table] = rows
                            return
                        case .begin: throw PostgresStoreError("export: table \(table) did not end")
                        }
                    }
                    throw PostgresStoreError("export: the ledger's reader stopped inside table \(table)")
                }
            }
            for table in PostgresSchema.identityTables {
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: "SELECT setval(pg_get_serial_sequence('\(table)', 'id'), COALESCE((SELECT MAX(id) FROM \(table)), 0) + 1, false)"),
                    logger: logger)
            }
        }
        _ = await reader.result
        return counts
    }
}

/// PostgreSQL's COPY text format: columns separated by tabs, rows by line feeds, NULL as `\N`,
/// backslash, tab, line feed and carriage return escaped; a blob as `\\x` and hex (bytea).
enum CopyText {
    static func append(_ values: [ExportValue?], to buffer: inout [UInt8]) {
        for (i, value) in values.enumerated() {
            if i > 0 { buffer.append(UInt8(ascii: "\t")) }
            switch value {
            case nil: buffer += [UInt8(ascii: "\\"), UInt8(ascii: "N")]
            case .integer(let n): buffer += Array(String(n).utf8)
            case .real(let d): buffer += Array(d.description.utf8)
            case .text(let s): escape(s, to: &buffer)
            case .blob(let bytes):
                buffer += Array("\\\\x".utf8)
                for byte in bytes {
                    let digits = Array("0123456789abcdef".utf8)
                    buffer.append(digits[Int(byte >> 4)])
                    buffer.append(digits[Int(byte & 0xF)])
                }
            }
        }
        buffer.append(UInt8(ascii: "\n"))
    }

    static func escape(_ text: String, to buffer: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): buffer += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\t"): buffer += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case UInt8(ascii: "\n"): buffer += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): buffer += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            default: buffer.append(byte)
            }
        }
    }
}
