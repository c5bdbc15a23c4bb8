import Foundation
import Testing

/// A private Dovecot (Debian's `dovecot-imapd`; own configuration, runtime directory and log under
/// the sandbox; no system service) serving one Maildir over IMAP on a loopback port, as user
/// `bounces`, without TLS (loopback only).
final class PrivateDovecot: @unchecked Sendable {
    let dir: String
    let port: Int
    let child: Child
    static let username = "bounces"
    static let password = "imap-test-password"

    static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/dovecot") }

    /// Serves `maildir` (owned by nobody, as Postfix's virtual agent writes it) as INBOX.
    init(in sandbox: Sandbox, maildir: String) async throws {
        dir = sandbox.root + "/dovecot"
        port = try freePort()
        for sub in ["run", "state"] { try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true) }
        try "\(Self.username):{PLAIN}\(Self.password)\n".write(toFile: dir + "/users", atomically: true, encoding: .utf8)
        chmod(dir + "/users", 0o644)
        try """
            base_dir = \(dir)/run
            state_dir = \(dir)/state
            log_path = \(dir)/dovecot.log
            protocols = imap
            listen = 127.0.0.1
            ssl = no
            disable_plaintext_auth = no
            auth_mechanisms = plain login
            mail_location = maildir:\(maildir)
            first_valid_uid = 1
            passdb {
              driver = passwd-file
              args = scheme=PLAIN username_format=%u \(dir)/users
            }
            userdb {
              driver = static
              args = uid=nobody gid=nogroup home=\(maildir)
            }
            service imap-login {
              inet_listener imap {
                address = 127.0.0.1
                port = \(port)
              }
              inet_listener imaps {
                port = 0
              }
            }
            service stats {
              unix_listener stats-reader {
                mode = 0666
              }
              unix_listener stats-writer {
                mode = 0666
              }
            }

            """.write(toFile: dir + "/dovecot.conf", atomically: true, encoding: .utf8)
        // The test process ignores SIGTERM (its own shutdown handling), and an ignored signal stays
        // ignored across exec: env resets it, so that Dovecot's master stops when told to.
        child = try Child(
            "/usr/bin/env", ["--default-signal=TERM", "/usr/sbin/dovecot", "-c", dir + "/dovecot.conf", "-F"], directory: dir,
            outputDirectory: sandbox.root)
        let port = self.port
        try await eventually("Dovecot to listen on \(port)", timeout: .seconds(30)) { canConnect(port) }
    }

    var log: String { (try? String(contentsOfFile: dir + "/dovecot.log", encoding: .utf8)) ?? "" }

    func stop() async {
        child.signal(SIGTERM)
        _ = try? await child.wait(timeout: .seconds(30))
    }
}
