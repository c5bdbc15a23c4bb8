import Foundation
import Logging
import RelanceCore
import RelanceStore
import Synchronization
import Testing

/// Paths of the package under test.
enum Package {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static var relance: String {
        for dir in [".build/debug", ".build/release"] where FileManager.default.isExecutableFile(atPath: "\(root)/\(dir)/relance") {
            return "\(root)/\(dir)/relance"
        }
        return "\(root)/.build/debug/relance"
    }
    static let support = root + "/Tests/IntegrationTests/Support"
    static let templates = root + "/templates"
}

/// A logger for in-process daemon parts under test: its lines go to a file under
/// `$TMPDIR/relance-test-logs/`, not into the test run's output.
func testLogger(_ name: String) -> Logger {
    let directory = NSTemporaryDirectory() + "relance-test-logs"
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = directory + "/\(name)-\(getpid()).log"
    if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
    let handle = FileHandle(forWritingAtPath: path) ?? FileHandle.nullDevice
    handle.seekToEndOfFile()
    return Logger(label: name) { label in FileLogHandler(label: label, handle: handle) }
}

/// Log lines appended to a file.
struct FileLogHandler: LogHandler {
    let label: String
    let handle: FileHandle
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let fields = metadata.merging(event.metadata ?? [:]) { _, new in new }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        handle.write(Data("\(event.level) \(label): \(event.message) \(fields.joined(separator: " "))\n".utf8))
    }
}

struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Waits for `condition` to hold, checking every 50 ms, for at most `timeout`.
func eventually(_ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw TimedOut(description: "timed out waiting for \(what)")
}

/// The children still running: a helper (a gateway simulator, an SMTP server) whose test object
/// was not released before the test process ended was left running, listening, after the run.
/// They are killed when the test process exits.
enum RunningChildren {
    static let processes = Mutex<[ObjectIdentifier: Process]>([:])
    static let killAtExit: Void = {
        atexit {
            // Still running means not reaped: its pid cannot belong to another process yet.
            for process in RunningChildren.processes.withLock({ Array($0.values) }) where process.isRunning {
                kill(process.processIdentifier, SIGKILL)
            }
        }
    }()

    static func started(_ process: Process) {
        _ = killAtExit
        processes.withLock { $0[ObjectIdentifier(process)] = process }
    }

    static func ended(_ process: Process) { processes.withLock { $0[ObjectIdentifier(process)] = nil } }
}

/// A child process whose output goes to files (so a chatty daemon never blocks on a full pipe).
final class Child: @unchecked Sendable {
    // @unchecked: `process` is only started once and then read; Foundation's Process is thread-safe for that.
    let process = Process()
    let stdoutPath: String
    let stderrPath: String

    /// Runs in `directory`; its output goes to files in `outputDirectory` (by default the same).
    /// `stdin`: a file its standard input reads (default: nothing).
    init(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: String, outputDirectory: String? = nil,
        stdin: String? = nil
    ) throws {
        stdoutPath = (outputDirectory ?? directory) + "/child-\(UUID().uuidString).out"
        stderrPath = (outputDirectory ?? directory) + "/child-\(UUID().uuidString).err"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "STATE_DIRECTORY")
        env.removeValue(forKey: "CREDENTIALS_DIRECTORY")
        env.removeValue(forKey: "JOURNAL_STREAM")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        process.standardInput = stdin.flatMap { FileHandle(forReadingAtPath: $0) } ?? FileHandle.nullDevice
        try process.run()
        RunningChildren.started(process)
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for the process to end; returns its exit status (or 128 + signal).
    func wait(timeout: Duration = .seconds(120)) async throws -> Int32 {
        try await eventually("process \(process.executableURL?.lastPathComponent ?? "") to exit", timeout: timeout) { !process.isRunning }
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        RunningChildren.ended(process)
    }
}

/// A fresh directory tree for one test: spool, attachments, ledger, outbox, config.
struct Sandbox {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "relance-it-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root + "/attachments", withIntermediateDirectories: true)
    }

    var spool: String { root + "/spool" }
    var ledgerPath: String { root + "/ledger.sqlite" }
    var maildir: String { root + "/outbox/mail" }
    var configPath: String { root + "/relance.yaml" }

    /// Writes a configuration; `email` is the YAML of the `email:` section body.
    func writeConfig(
        smtpPort: Int? = nil, extra: String = "", retryFirst: String = "5m", concurrency: Int = 8, connections: Int = 4, sms: String? = nil,
        webhooks: String = "", delivery: String = "", listen: String = "127.0.0.1:0", templates: String? = nil, bounce: String? = nil,
        policy: String = "{ windows: { sms: always, email: always }, holidays: none, caps: { per_day: none, per_7_days: none, per_30_days: none } }"
    ) throws {
        let email: String
        if let smtpPort {
            email = """
                email:
                  transport: smtp
                  from: "Exemple SAS <relances@example.fr>"
                  smtp: { url: "smtp://127.0.0.1:\(smtpPort)", starttls: none, connections: \(connections), timeout: 20s }
                """ + (bounce.map { "\n  bounce: \($0)" } ?? "")
        } else {
            email = """
                email:
                  transport: outbox
                  from: "Exemple SAS <relances@example.fr>"
                  outbox: { maildir: "\(maildir)" }
                """ + (bounce.map { "\n  bounce: \($0)" } ?? "")
        }
        let yaml = """
            spool: { root: "\(spool)", attachments_root: "\(root)/attachments", rescan_interval: 1s }
            store: { path: "\(ledgerPath)" }
            templates: { path: "\(templates ?? Package.templates)" }
            \(email)
            \(sms ?? "sms: { outbox: { path: \"\(root)/outbox/sms.jsonl\" } }")
            delivery: { concurrency: \(concurrency), retry: { first: \(retryFirst), max: 1h, lifetime: 2d, jitter: 0 }\(delivery.isEmpty ? "" : ", " + delivery) }
            log: { level: info }
            policy: \(policy)
            webhooks: { listen: "\(listen)"\(webhooks.isEmpty ? "" : ", " + webhooks) }
            \(extra)
            """
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// A copy of the shipped templates in the sandbox, for tests that edit them.
    func copyShippedTemplates() throws -> String {
        let copy = root + "/templates"
        try FileManager.default.copyItem(atPath: Package.templates, toPath: copy)
        return copy
    }

    /// Drops a spool file the way producers must: write in tmp/, rename into incoming/.
    func drop(_ name: String, _ content: Data, queue: String? = nil) throws {
        let incoming = spool + "/incoming" + (queue.map { "/" + $0 } ?? "")
        try FileManager.default.createDirectory(atPath: spool + "/tmp", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: incoming, withIntermediateDirectories: true)
        let tmp = spool + "/tmp/" + name
        try content.write(to: URL(fileURLWithPath: tmp))
        try FileManager.default.moveItem(atPath: tmp, toPath: incoming + "/" + name)
    }

    func dropLines(_ name: String, _ records: [[String: Any]], queue: String? = nil) throws {
        var data = Data()
        for r in records {
            data.append(try JSONSerialization.data(withJSONObject: r))
            data.append(UInt8(ascii: "\n"))
        }
        try drop(name, data, queue: queue)
    }

    /// Runs `relance ARGS --config …` to completion.
    func relance(_ arguments: [String], environment: [String: String] = [:], stdin: Data? = nil) async throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        var input: String?
        if let stdin {
            input = root + "/stdin-\(UUID().uuidString)"
            try stdin.write(to: URL(fileURLWithPath: input!))
        }
        let child = try Child(Package.relance, arguments + ["--config", configPath], environment: environment, directory: root, stdin: input)
        let status = try await child.wait()
        return (status, child.stdout, child.stderr)
    }

    func start(_ arguments: [String], environment: [String: String] = [:]) throws -> Child {
        try Child(Package.relance, arguments + ["--config", configPath], environment: environment, directory: root)
    }

    func ledger() throws -> Ledger { try Ledger(path: ledgerPath, readOnly: true) }

    func files(_ sub: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: spool + "/" + sub)) ?? []).sorted()
    }

    func writePDF(_ name: String) throws -> String {
        let path = root + "/attachments/" + name
        try Data("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".utf8).write(to: URL(fileURLWithPath: path))
        return path
    }
}

/// Starts a child that prints `READY <port>` once it listens, and waits for that line.
func startListening(_ executable: String, _ arguments: [String], in sandbox: Sandbox, what: String) async throws -> (Child, Int) {
    let child = try Child(executable, arguments, directory: sandbox.root)
    var port = 0
    // Generous: at the start of a run many servers start at once next to CPU-bound tests.
    try await eventually("\(what) to listen", timeout: .seconds(90)) {
        if !child.process.isRunning { throw TimedOut(description: "\(what) died: \(child.stderr)") }
        if let line = child.stdout.split(separator: "\n").first(where: { $0.hasPrefix("READY ") }) { port = Int(line.dropFirst(6)) ?? 0 }
        return port != 0
    }
    return (child, port)
}

/// A real SMTP server (aiosmtpd) in a child process; messages land in `out` as .eml files.
final class SMTPServer: @unchecked Sendable {
    // @unchecked: immutable after init.
    let child: Child
    let port: Int
    let out: String

    init(sandbox: Sandbox, slow: Double = 2.0, arguments: [String] = []) async throws {
        out = sandbox.root + "/sink"
        (child, port) = try await startListening(
            "/usr/bin/env", ["python3", Package.support + "/smtp_server.py", "--out", out, "--slow", "\(slow)"] + arguments, in: sandbox,
            what: "the SMTP server")
    }

    /// Delivered messages (file paths), oldest first.
    var messages: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).filter { $0.hasSuffix(".eml") }.sorted().map { out + "/" + $0 }
    }

    func stop() { child.signal(SIGTERM) }
    deinit { child.signal(SIGTERM) }
}

/// Reads a JSON-lines file written by a helper process.
func jsonLines(_ path: String) -> [[String: Any]] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
}

/// `relance-gateway-sim` in a child process, recording every request.
final class GatewaySimulator: @unchecked Sendable {
    // @unchecked: immutable after init.
    let child: Child
    let port: Int
    let recordPath: String
    static let twilioSID = "AC00000000000000000000000000000000"
    static let twilioToken = "twilio-test-token"

    init(sandbox: Sandbox, arguments: [String] = []) async throws {
        recordPath = sandbox.root + "/gateway.jsonl"
        let binary = (Package.relance as NSString).deletingLastPathComponent + "/relance-gateway-sim"
        (child, port) = try await startListening(
            binary, ["--record", recordPath, "--callback-delay-ms", "10"] + arguments, in: sandbox, what: "the gateway simulator")
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var requests: [[String: Any]] { jsonLines(recordPath) }

    /// The `sms:` section that sends through this simulator with the Twilio profile.
    var twilioSection: String {
        """
        sms:
          provider: twilio
          sender: EXEMPLE
          base_url: "\(baseURL)"
          twilio: { account_sid: \(Self.twilioSID), auth_token: \(Self.twilioToken) }
        """
    }
    deinit { child.signal(SIGTERM) }
}

/// `callback_sink.py`: records the status callbacks gateways post.
final class CallbackSink: @unchecked Sendable {
    // @unchecked: immutable after init.
    let child: Child
    let port: Int
    let out: String

    init(sandbox: Sandbox) async throws {
        out = sandbox.root + "/callbacks.jsonl"
        (child, port) = try await startListening(
            "/usr/bin/env", ["python3", Package.support + "/callback_sink.py", "--out", out, "--twilio-token", GatewaySimulator.twilioToken], in: sandbox,
            what: "the callback sink")
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var callbacks: [[String: Any]] { jsonLines(out) }
    deinit { child.signal(SIGTERM) }
}

/// A self-signed certificate for 127.0.0.1 (openssl), valid two days: (certificate, key) paths.
func selfSignedCertificate(in sandbox: Sandbox) async throws -> (cert: String, key: String) {
    let cert = sandbox.root + "/tls-cert.pem"
    let key = sandbox.root + "/tls-key.pem"
    let child = try Child(
        "/usr/bin/env",
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost", "-days", "2", "-keyout", key, "-out", cert,
        ], directory: sandbox.root)
    guard try await child.wait() == 0 else { throw TimedOut(description: "openssl failed: \(child.stderr)") }
    return (cert, key)
}

/// Python's `email` package, strict policy, on one message: the parsed summary as JSON.
func inspectMail(_ path: String, in sandbox: Sandbox) async throws -> [String: Any] {
    let child = try Child("/usr/bin/env", ["python3", Package.support + "/inspect_mail.py", path], directory: sandbox.root)
    let status = try await child.wait()
    guard status == 0 else { throw TimedOut(description: "inspect_mail failed: \(child.stderr)") }
    return try JSONSerialization.jsonObject(with: Data(child.stdout.utf8)) as! [String: Any]
}

/// The text/plain part of a received message, as Python's `email` decodes it.
func plainText(_ path: String, in sandbox: Sandbox) async throws -> String {
    let mail = try await inspectMail(path, in: sandbox)
    return ((mail["parts"] as? [[String: Any]]) ?? []).first { $0["type"] as? String == "text/plain" }?["text"] as? String ?? ""
}

/// Builders of spool records.
enum Records {
    static func debtor(_ id: String, name: String = "Élodie Martin", email: String = "elodie@example.fr", locale: String = "fr-FR", kind: String = "consumer")
        -> [String: Any]
    {
        ["id": id, "name": name, "email": email, "phone": "06 12 34 56 78", "country": "FR", "locale": locale, "timezone": "Europe/Paris", "kind": kind]
    }

    static func reminder(
        _ id: String, stage: String = "reminder_1", email: String = "elodie@example.fr", name: String = "Élodie Martin", locale: String = "fr-FR",
        kind: String = "consumer", amount: String = "1234.50", currency: String = "EUR", channels: [String] = ["email"], extra: [String: Any] = [:]
    ) -> [String: Any] {
        var r: [String: Any] = [
            "id": id, "stage": stage, "channels": channels,
            "debtor": debtor("C-" + id, name: name, email: email, locale: locale, kind: kind),
            "invoices": [["number": "INV-" + id, "amount": amount, "currency": currency, "issued_on": "2026-09-01", "due_on": "2026-10-01"]],
        ]
        for (k, v) in extra { r[k] = v }
        return r
    }
}

/// Streams the ledger's receipts into an array.
func receipts(_ ledger: Ledger, reminderID: String? = nil) async throws -> [Receipt] {
    let box = ReceiptBox()
    try await ledger.receipts(reminderID: reminderID) { box.append($0) }
    return box.items
}

final class ReceiptBox: @unchecked Sendable {
    // @unchecked: appended serially by the ledger's read, read after it returns.
    var items: [Receipt] = []
    func append(_ r: Receipt) { items.append(r) }
}

func statuses(_ ledger: Ledger) async throws -> [String: String] {
    Dictionary(uniqueKeysWithValues: try await ledger.deliveries().map { ("\($0.reminderID)/\($0.channel)", $0.status) })
}

/// The safety property of a race between sends and stops (cancellations, payments): waits until
/// no delivery of `count` is pending or sending, then checks that a stopped reminder was never
/// received and that one sent although stopped was marked `sending` before the stop was recorded
/// (its events show that order). Returns how many were stopped in time and how many too late.
func checkNothingSentAfterItsStop(
    _ sandbox: Sandbox, server: SMTPServer, count: Int, recipient: (String) -> String?, stopped: (String) -> Bool
) async throws -> (inTime: Int, tooLate: Int) {
    try await eventually("every delivery to be settled") {
        guard let s = try? await statuses(try sandbox.ledger()) else { return false }
        return s.count == count && !s.values.contains("pending") && !s.values.contains("sending")
    }
    let ledger = try sandbox.ledger()
    let received = try recipients(of: server)
    var (inTime, tooLate) = (0, 0)
    for (key, status) in try await statuses(ledger) {
        let reminderID = String(key.split(separator: "/")[0])
        guard let address = recipient(reminderID) else {
            Issue.record("unexpected reminder \(reminderID)")
            continue
        }
        let got = received[address] ?? 0
        if !stopped(reminderID) {
            #expect(status == "sent" && got == 1, "\(reminderID) was not stopped: sent once")
        } else if status == "cancelled" {
            inTime += 1
            #expect(got == 0, "\(reminderID) was stopped and must not have been sent")
        } else {
            tooLate += 1
            #expect(status == "sent" && got == 1)
            let reasons = try await ledger.events(reminderID: reminderID).map(\.reason)
            let marked = reasons.firstIndex { $0.hasPrefix("attempt 1 via") }
            let recorded = reasons.firstIndex { $0.contains("recorded when already") }
            #expect(marked != nil && recorded != nil && marked! < recorded!, "\(reminderID): \(reasons)")
        }
    }
    return (inTime, tooLate)
}
