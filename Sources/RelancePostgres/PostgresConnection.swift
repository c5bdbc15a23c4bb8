import Foundation
import Logging
import NIOSSL
import PostgresNIO
import RelanceCore

/// How to reach the PostgreSQL ledger: `store.url`, `store.password`, `store.connections`.
public struct PostgresSettings: Sendable {
    public var url: PostgresURL
    public var password: String
    public var connections: Int

    public init(url: PostgresURL, password: String, connections: Int = 8) {
        self.url = url
        self.password = password
        self.connections = connections
    }

    /// The TLS the URL asks for: nil (none), or a configuration (`verify-full` checks the
    /// certificate chain and the host name; `require` only encrypts).
    var tlsConfiguration: TLSConfiguration? {
        switch url.tls {
        case .disable: return nil
        case .require:
            var unchecked = TLSConfiguration.makeClientConfiguration()
            unchecked.certificateVerification = .none
            return unchecked
        case .verifyFull: return .makeClientConfiguration()
        }
    }

    var passwordIfAny: String? { password.isEmpty ? nil : password }

    /// postgres-nio's configuration of the pool.
    var clientConfiguration: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let directory = url.socketDirectory {
            configuration = .init(unixSocketPath: directory + "/.s.PGSQL.\(url.port)", username: url.user, password: passwordIfAny, database: url.database)
        } else {
            configuration = .init(
                host: url.host ?? "localhost", port: url.port, username: url.user, password: passwordIfAny, database: url.database,
                tls: tlsConfiguration.map { .require($0) } ?? .disable)
        }
        configuration.options.maximumConnections = connections
        configuration.options.connectTimeout = .seconds(10)
        // The send path's prepared statements (`SendPathStatement`) are point reads and writes by
        // key: planned once per connection, instead of PostgreSQL planning them again at each run
        // while it compares (its default, `auto`). Other statements are not prepared: unaffected.
        configuration.options.additionalStartupParameters = [("plan_cache_mode", "force_generic_plan")]
        return configuration
    }

    /// The pool of a node: as `clientConfiguration`, and a transaction left open longer than
    /// half a lease (a node frozen or cut off in the middle of one; Relance's own last
    /// milliseconds) is ended by the server, so the row and advisory locks it holds do not stop
    /// the other nodes' claims and rescues for good.
    func nodeConfiguration(lease: Duration) -> PostgresClient.Configuration {
        var configuration = clientConfiguration
        let milliseconds = max(1000, Int(lease.components.seconds * 1000 / 2))
        configuration.options.additionalStartupParameters.append(("idle_in_transaction_session_timeout", "\(milliseconds)"))
        return configuration
    }

    /// The same, for one connection outside the pool.
    var connectionConfiguration: PostgresConnection.Configuration {
        get throws {
            var configuration: PostgresConnection.Configuration
            if let directory = url.socketDirectory {
                configuration = .init(unixSocketPath: directory + "/.s.PGSQL.\(url.port)", username: url.user, password: passwordIfAny, database: url.database)
            } else {
                configuration = .init(
                    host: url.host ?? "localhost", port: url.port, username: url.user, password: passwordIfAny, database: url.database,
                    tls: try tlsConfiguration.map { .require(try NIOSSLContext(configuration: $0)) } ?? .disable)
            }
            configuration.options.connectTimeout = .seconds(10)
            return configuration
        }
    }
}

/// A store error an operator can act on, naming the server (never the password).
public struct PostgresStoreError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension PostgresSettings {
    /// Runs `body` with a connection pool to the server, started for it and shut down after.
    /// Connection failures are reported with the server's address and PostgreSQL's own words.
    public func withClient<T: Sendable>(logger: Logger, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        try await probe(logger: logger)
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: backgroundLogger(logger))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            do {
                return try await body(client)
            } catch let error as PSQLError {
                throw PostgresStoreError("PostgreSQL at \(url): \(Self.explain(error))")
            }
        }
    }

    /// One connection, opened and closed, so that a server that is down or refuses us is an error
    /// at once (the pool would retry for a minute before its circuit breaker gives up).
    func probe(logger: Logger) async throws {
        do {
            let connection = try await PostgresConnection.connect(configuration: try connectionConfiguration, id: 0, logger: backgroundLogger(logger))
            try await connection.close()
        } catch let error as PSQLError {
            throw PostgresStoreError("PostgreSQL at \(url): \(Self.explain(error))")
        } catch {
            throw PostgresStoreError("PostgreSQL at \(url): \(error)")
        }
    }

    /// The pool's own log: none. Its warnings race the first lease against `run()` starting, and
    /// what goes wrong reaches the caller as an error anyway. (Not a copy of the caller's logger
    /// with a higher level: the daemon's handler keeps its level in a shared box, so that would
    /// silence the whole daemon.)
    func backgroundLogger(_ logger: Logger) -> Logger {
        Logger(label: logger.label + ".postgres") { _ in SwiftLogNoOpLogHandler() }
    }

    /// PostgreSQL's message for an error, or the connection problem behind it.
    static func explain(_ error: PSQLError) -> String {
        if let message = error.serverInfo?[.message] {
            let code = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return message + code
        }
        if let underlying = error.underlying { return "cannot connect: \(underlying)" }
        return "\(error.code)"
    }
}

extension PostgresTransactionError {
    /// What went wrong, as it was thrown: the transaction's body (a refusal of Relance's own
    /// keeps its words), else BEGIN, COMMIT or ROLLBACK.
    var cause: any Error { closureError ?? beginError ?? commitError ?? rollbackError ?? self }
}
