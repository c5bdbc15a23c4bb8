import Testing

@testable import RelanceCore

@Suite struct PostgresURLTests {
    @Test func hostsPortsDatabasesAndTheDefaultTLS() throws {
        let remote = try PostgresURL(parsing: "postgres://relance@db.example.com/relance")
        #expect(remote.user == "relance" && remote.host == "db.example.com" && remote.port == 5432 && remote.database == "relance")
        #expect(remote.tls == .verifyFull, "a remote server: encrypted and checked unless told otherwise")
        #expect(remote.description == "postgres://relance@db.example.com:5432/relance?sslmode=verify-full")

        let local = try PostgresURL(parsing: "postgresql://app@127.0.0.1:6543/ledger")
        #expect(local.port == 6543 && local.tls == .disable)
        #expect(try PostgresURL(parsing: "postgres://app@localhost/l").tls == .disable)
        #expect(try PostgresURL(parsing: "postgres://app@[::1]:5433/l").tls == .disable)
        #expect(try PostgresURL(parsing: "postgres://app@db/l?sslmode=require").tls == .require)
        #expect(try PostgresURL(parsing: "postgres://app@127.0.0.1/l?sslmode=verify-full").tls == .verifyFull)

        let socket = try PostgresURL(parsing: "postgres://relance@/relance?host=/run/postgresql")
        #expect(socket.host == nil && socket.socketDirectory == "/run/postgresql" && socket.tls == .disable)
        #expect(socket.description == "postgres://relance@/relance?host=/run/postgresql")

        let encoded = try PostgresURL(parsing: "postgres://r%C3%A9lance@db/ledger%20one")
        #expect(encoded.user == "rélance" && encoded.database == "ledger one")
        #expect(try PostgresURL(parsing: encoded.description) == encoded, "the canonical form parses back to the same")
    }

    @Test(arguments: [
        ("mysql://u@h/d", "the scheme must be postgres:// or postgresql://"),
        ("postgres://u:secret@h/d", "put it in store.password"),
        ("postgres://h/d", "no user"),
        ("postgres://u@h", "no database name"),
        ("postgres://u@h/", "no database name"),
        ("postgres://u@h/a/b", "no database name"),
        ("postgres://u@/d", "no host"),
        ("postgres://u@h/d?host=/run/postgresql", "a host and a socket directory"),
        ("postgres://u@/d?host=relative", "host= must be an absolute socket directory"),
        ("postgres://u@h/d?sslmode=prefer", "sslmode must be one of disable, require, verify-full"),
        ("postgres://u@h/d?application_name=x", "unknown parameter application_name"),
        ("postgres://u@h:0/d", "the port must be between 1 and 65535"),
        ("postgres://u@/d?host=/run/postgresql&sslmode=require", "TLS over a Unix socket"),
        ("not a url at all", "not a URL"),
    ])
    func refusals(_ text: String, _ expected: String) {
        do {
            let parsed = try PostgresURL(parsing: text)
            Issue.record("accepted \(text) as \(parsed)")
        } catch {
            #expect(error.description.contains(expected), "\(text): \(error.description)")
            #expect(!error.description.contains("secret"), "a password is never repeated")
        }
    }
}
