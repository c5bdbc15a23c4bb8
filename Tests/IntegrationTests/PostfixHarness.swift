import Foundation
import Testing

/// A private Postfix (Debian's package; own configuration, queue and log under the sandbox; no
/// system service) that accepts mail on a loopback port and then bounces what goes to
/// `bounce-me.test` with its own DSN (the `error` transport: a 5.1.1 after acceptance, not an
/// SMTP refusal). The DSN goes to the VERP return path at `relances.test`, delivered either
/// through a pipe to `relance bounce` (as nobody, like a dedicated user in production) or into a
/// Maildir owned by nobody (the `virtual` agent), which Dovecot may serve over IMAP.
final class PrivatePostfix: @unchecked Sendable {
    enum Return {
        case pipe(config: String)
        case maildir
    }

    let dir: String
    let port: Int
    /// The Maildir the DSNs land in (`.maildir` mode).
    var maildir: String { dir + "/vmail/bounces" }
    var maillog: String { (try? String(contentsOfFile: dir + "/maillog", encoding: .utf8)) ?? "" }

    static let bouncingDomain = "bounce-me.test"
    static let returnDomain = "relances.test"
    static var nobody: (uid: UInt32, gid: UInt32) {
        guard let pw = getpwnam("nobody") else { return (65534, 65534) }
        return (pw.pointee.pw_uid, pw.pointee.pw_gid)
    }

    static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/postfix") }

    init(in sandbox: Sandbox, returning: Return) async throws {
        dir = sandbox.root + "/postfix"
        port = try freePort()
        let conf = dir + "/conf"
        let fm = FileManager.default
        for sub in ["conf", "queue", "data", "vmail"] { try fm.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true) }
        chmod(sandbox.root, 0o755)
        chmod(dir, 0o755)
        chown(dir + "/data", Self.postfixUID, 0)
        chmod(dir + "/data", 0o700)
        chown(dir + "/vmail", Self.nobody.uid, Self.nobody.gid)
        let (uid, gid) = Self.nobody
        var transport = "\(Self.bouncingDomain) error:5.1.1 mailbox unavailable\n"
        var returnSettings = ""
        switch returning {
        case .pipe:
            transport += "\(Self.returnDomain) relance-bounce:\n"
            returnSettings = "relay_domains = \(Self.bouncingDomain), \(Self.returnDomain)\nrelance-bounce_destination_recipient_limit = 1\n"
        case .maildir:
            returnSettings = """
                relay_domains = \(Self.bouncingDomain)
                virtual_mailbox_domains = \(Self.returnDomain)
                virtual_mailbox_base = \(dir)/vmail
                virtual_mailbox_maps = texthash:\(conf)/vmailbox
                virtual_uid_maps = static:\(uid)
                virtual_gid_maps = static:\(gid)
                virtual_minimum_uid = 1

                """
            try "bounces@\(Self.returnDomain) bounces/\n".write(toFile: conf + "/vmailbox", atomically: true, encoding: .utf8)
        }
        try transport.write(toFile: conf + "/transport", atomically: true, encoding: .utf8)
        try """
            compatibility_level = 3.6
            queue_directory = \(dir)/queue
            data_directory = \(dir)/data
            mail_owner = postfix
            setgid_group = postdrop
            myhostname = mx.\(Self.returnDomain)
            mydomain = \(Self.returnDomain)
            myorigin = \(Self.returnDomain)
            mydestination =
            local_recipient_maps =
            alias_maps =
            alias_database =
            inet_interfaces = loopback-only
            inet_protocols = ipv4
            mynetworks = 127.0.0.0/8
            smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
            # Accept, then bounce: the DSN is Postfix's own, not an SMTP refusal.
            smtpd_reject_unlisted_recipient = no
            transport_maps = texthash:\(conf)/transport
            recipient_delimiter = +
            smtp_tls_security_level = none
            smtpd_tls_security_level = none
            maillog_file_prefixes = \(dir)/
            maillog_file = \(dir)/maillog
            biff = no
            queue_run_delay = 1s
            minimal_backoff_time = 1s
            maximal_backoff_time = 2s
            \(returnSettings)
            """.write(toFile: conf + "/main.cf", atomically: true, encoding: .utf8)
        var services = [
            "127.0.0.1:\(port) inet n - n - - smtpd", "pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup", "qmgr unix n - n 1 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite", "bounce unix - - n - 0 bounce", "defer unix - - n - 0 bounce", "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify", "flush unix n - n 1000? 0 flush", "proxymap unix - - n - - proxymap", "proxywrite unix - - n - 1 proxymap",
            "smtp unix - - n - - smtp", "relay unix - - n - - smtp", "showq unix n - n - - showq", "error unix - - n - - error",
            "retry unix - - n - - error", "discard unix - - n - - discard", "virtual unix - n n - - virtual", "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache", "postlog unix-dgram n - n - 1 postlogd",
        ]
        if case .pipe(let config) = returning {
            services.append(
                "relance-bounce unix - n n - - pipe flags=DRO user=nobody argv=\(Package.relance) bounce --config \(config) --recipient ${original_recipient}"
            )
        }
        try (services.joined(separator: "\n") + "\n").write(toFile: conf + "/master.cf", atomically: true, encoding: .utf8)
        try await postfix("check", in: sandbox)
        try await postfix("start", in: sandbox)
        try await eventually("Postfix to listen on \(port)", timeout: .seconds(30)) { canConnect(port) }
    }

    static var postfixUID: UInt32 { getpwnam("postfix").map { $0.pointee.pw_uid } ?? 0 }

    /// Runs `postfix -c CONF COMMAND` (under script(1): postfix prints its errors to a terminal only).
    func postfix(_ command: String, in sandbox: Sandbox) async throws {
        let child = try Child("/usr/bin/script", ["-qec", "postfix -c \(dir)/conf \(command)", "/dev/null"], directory: dir, outputDirectory: sandbox.root)
        let status = try await child.wait(timeout: .seconds(60))
        guard status == 0 else { throw PostfixFailed(description: "postfix \(command): \(child.stdout.suffix(800))") }
    }

    func stop(in sandbox: Sandbox) async {
        try? await postfix("stop", in: sandbox)
    }

    struct PostfixFailed: Error, CustomStringConvertible { var description: String }
}

/// A free loopback TCP port.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw PrivatePostfix.PostfixFailed(description: "no free port: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func canConnect(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}
