import Foundation

/// `store.url`: where a PostgreSQL ledger lives, `postgres://USER@HOST[:PORT]/DATABASE[?sslmode=…]`
/// (or `postgresql://`; `?host=/run/postgresql` for a Unix socket directory instead of a host).
///
/// The password is never part of the URL, which is shown in logs and errors: it is
/// `store.password`, a credential like every secret. TLS is `verify-full` (encrypted, the server's
/// certificate and name checked) unless the server is on this machine (a socket or a loopback
/// address), where it is `disable`; `sslmode=` says otherwise. libpq's `prefer`, which silently
/// falls back to clear text, is not offered.
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        case disable
        /// Encrypted, the certificate not checked.
        case require
        /// Encrypted, the certificate and the host name checked against the system's trust store.
        case verifyFull = "verify-full"
    }

    public var user: String
    /// The server's host name or address; nil with a socket directory.
    public var host: String?
    public var port: Int
    /// A directory holding the server's socket (`.s.PGSQL.<port>`).
    public var socketDirectory: String?
    public var database: String
    public var tls: TLSMode

    /// Why a text is not a usable `store.url` (never quoting a password).
    public struct Problem: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    public init(parsing text: String) throws(Problem) {
        func problem(_ why: String) -> Problem { Problem(description: why) }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw problem("not a URL: expected postgres://USER@HOST:PORT/DATABASE")
        }
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw problem("the scheme must be postgres:// or postgresql://, not \(scheme)://")
        }
        guard components.password == nil else {
            throw problem("a password in the URL would be shown wherever the URL is: put it in store.password (a credential) instead")
        }
        guard let user = components.user?.removingPercentEncoding, !user.isEmpty else {
            throw problem("no user: expected postgres://USER@HOST:PORT/DATABASE")
        }
        var path = components.path
        if path.hasPrefix("/") { path.removeFirst() }
        guard let database = path.removingPercentEncoding, !database.isEmpty, !database.contains("/") else {
            throw problem("no database name: expected postgres://USER@HOST:PORT/DATABASE")
        }
        var socketDirectory: String?
        var mode: TLSMode?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "host":
                guard let value = item.value, value.hasPrefix("/") else { throw problem("host= must be an absolute socket directory") }
                socketDirectory = value
            case "sslmode":
                guard let value = item.value, let parsed = TLSMode(rawValue: value) else {
                    throw problem(
                        "sslmode must be one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", ")), not \(item.value ?? "nothing")")
                }
                mode = parsed
            default:
                throw problem("unknown parameter \(item.name) (known: host, sslmode)")
            }
        }
        let host = components.host.flatMap { $0.isEmpty ? nil : $0 }
        guard (host == nil) != (socketDirectory == nil) else {
            throw problem(host == nil ? "no host: expected postgres://USER@HOST:PORT/DATABASE" : "a host and a socket directory (host=): give one")
        }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw problem("the port must be between 1 and 65535") }
        self.user = user
        self.host = host
        self.port = port
        self.socketDirectory = socketDirectory
        self.database = database
        let local = socketDirectory != nil || ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host?.lowercased() ?? "")
        self.tls = mode ?? (local ? .disable : .verifyFull)
        if socketDirectory != nil && self.tls != .disable { throw problem("TLS over a Unix socket: use sslmode=disable (or leave it out)") }
    }

    /// The URL again, in its canonical form (it holds no secret).
    public var description: String {
        let user = self.user.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? self.user
        let database = self.database.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? self.database
        if let socketDirectory {
            return "postgres://\(user)@/\(database)?host=\(socketDirectory)"
        }
        let host = self.host.map { $0.contains(":") && !$0.hasPrefix("[") ? "[\($0)]" : $0 } ?? ""
        return "postgres://\(user)@\(host):\(port)/\(database)?sslmode=\(tls.rawValue)"
    }
}
