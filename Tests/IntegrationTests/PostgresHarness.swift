import Foundation
import Testing

/// A throwaway PostgreSQL cluster from Debian's `postgresql` package: `initdb` in the sandbox,
/// the server on its own loopback port and socket directory, run as the `postgres` user when the
/// tests run as root (the server refuses root), stopped by `stop()` (or killed with its `Child`).
/// No system service is used. Durability is off (`fsync=off`): a test cluster, not a benchmark.
final class PostgresCluster: @unchecked Sendable {
    // @unchecked: every property is set once in init and only read after.
    let dir: String
    let port: Int
    let server: Child
    /// The database the tests use, created at start.
    static let database = "relance"
    static let user = "relance"

    /// The newest server installed (`/usr/lib/postgresql/<version>/bin`), if any.
    static var bin: String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        return versions.last.map { "\(root)/\($0)/bin" }.flatMap { FileManager.default.isExecutableFile(atPath: $0 + "/postgres") ? $0 : nil }
    }

    static var available: Bool { bin != nil }

    /// `postgres://relance@127.0.0.1:PORT/relance`.
    var url: String { "postgres://\(Self.user)@127.0.0.1:\(port)/\(Self.database)" }

    /// `tls`: the server also speaks TLS, with a self-signed certificate for 127.0.0.1 made here.
    init(in sandbox: Sandbox, tls: Bool = false) async throws {
        guard let bin = Self.bin else { throw ClusterFailed(description: "no PostgreSQL server installed (Debian's postgresql package)") }
        dir = sandbox.root + "/pg"
        port = try freePort()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(sandbox.root, 0o755)
        let owner = Self.owner
        if let owner { chown(dir, owner.uid, owner.gid) }
        let (initdbPath, initdbArguments) = Self.asOwner(bin + "/initdb", ["-D", dir + "/data", "-U", Self.user, "--auth=trust", "-E", "UTF8", "--no-locale", "-N"])
        let initdb = try Child(initdbPath, initdbArguments, directory: dir, outputDirectory: sandbox.root)
        guard try await initdb.wait(timeout: .seconds(120)) == 0 else { throw ClusterFailed(description: "initdb: \(initdb.stderr.suffix(800))") }
        var tlsSettings: [String] = []
        if tls {
            let (cert, key) = (dir + "/server.crt", dir + "/server.key")
            let openssl = try Child(
                "/usr/bin/openssl",
                ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                directory: dir, outputDirectory: sandbox.root)
            guard try await openssl.wait() == 0 else { throw ClusterFailed(description: "openssl: \(openssl.stderr.suffix(400))") }
            chmod(key, 0o600)
            if let owner = Self.owner {
                chown(key, owner.uid, owner.gid)
                chown(cert, owner.uid, owner.gid)
            }
            tlsSettings = ["-c", "ssl=on", "-c", "ssl_cert_file=\(cert)", "-c", "ssl_key_file=\(key)"]
            // TCP only over TLS: a client that does not encrypt is refused.
            try "local all all trust\nhostssl all all 127.0.0.1/32 trust\n".write(toFile: dir + "/data/pg_hba.conf", atomically: true, encoding: .utf8)
            if let owner = Self.owner { chown(dir + "/data/pg_hba.conf", owner.uid, owner.gid) }
        }
        let (serverPath, serverArguments) = Self.asOwner(
            bin + "/postgres",
            [
                "-D", dir + "/data", "-p", "\(port)", "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
                "-c", "synchronous_commit=off", "-c", "max_connections=60",
            ] + tlsSettings)
        server = try Child(serverPath, serverArguments, directory: dir, outputDirectory: sandbox.root)
        try await eventually("PostgreSQL to listen on \(port)", timeout: .seconds(60)) { canConnect(port) || !server.process.isRunning }
        guard server.process.isRunning else { throw ClusterFailed(description: "postgres did not start: \(server.stderr.suffix(800))") }
        // Accepting connections may lag the socket by a moment: retry the first statement.
        try await eventually("the database to be created", timeout: .seconds(30)) {
            (try? await self.psql("CREATE DATABASE \(Self.database)", database: "postgres")) != nil
        }
    }

    /// Runs SQL through `psql` (tuples only, unaligned, `|` between columns); throws on any error.
    @discardableResult
    func psql(_ sql: String, database: String = PostgresCluster.database) async throws -> String {
        guard let bin = Self.bin else { throw ClusterFailed(description: "no psql") }
        let child = try Child(
            bin + "/psql", ["-h", "127.0.0.1", "-p", "\(port)", "-U", Self.user, "-d", database, "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql],
            directory: dir)
        let status = try await child.wait(timeout: .seconds(60))
        guard status == 0 else { throw ClusterFailed(description: "psql \(sql.prefix(80)): \(child.stderr)") }
        return child.stdout.trimmingCharacters(in: .newlines)
    }

    /// Runs `body` with a cluster started in the sandbox, and stops it after, whatever happens.
    static func with<T>(in sandbox: Sandbox, tls: Bool = false, _ body: (PostgresCluster) async throws -> T) async throws -> T {
        let cluster = try await PostgresCluster(in: sandbox, tls: tls)
        do {
            let result = try await body(cluster)
            await cluster.stop()
            return result
        } catch {
            await cluster.stop()
            throw error
        }
    }

    /// A fast shutdown (SIGINT): sessions are ended, the server exits.
    func stop() async {
        server.signal(SIGINT)
        _ = try? await server.wait(timeout: .seconds(60))
    }

    /// The `postgres` user, when the tests run as root.
    static var owner: (uid: UInt32, gid: UInt32)? {
        guard getuid() == 0, let pw = getpwnam("postgres") else { return nil }
        return (pw.pointee.pw_uid, pw.pointee.pw_gid)
    }

    /// The server's programs run as `postgres` through setpriv(1), which execs them (no extra
    /// process between the test and the server: a signal reaches it).
    static func asOwner(_ program: String, _ arguments: [String]) -> (String, [String]) {
        guard let owner else { return (program, arguments) }
        return ("/usr/bin/setpriv", ["--reuid=\(owner.uid)", "--regid=\(owner.gid)", "--init-groups", "--", program] + arguments)
    }

    struct ClusterFailed: Error, CustomStringConvertible { var description: String }
}
