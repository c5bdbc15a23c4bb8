import ArgumentParser
import Foundation
import RelanceConfig
import RelanceCore
import RelanceDaemon
import RelanceDispatch
import RelanceSpool
import RelanceStore

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: take spool files in and send what is due.",
        discussion: "SIGTERM or SIGINT stop it gracefully: it stops claiming, lets in-flight sends finish and commits. SIGHUP reloads.")

    @OptionGroup var options: ConfigOption
    @Flag(help: "Render and report every delivery that would be sent; send nothing, move no file, change no ledger state. Implies --once.")
    var dryRun = false
    @Flag(help: "One pass over what is due now, then exit.")
    var once = false
    @Option(help: "With --dry-run: evaluate the policy as of this instant (RFC 3339, e.g. 2026-12-05T23:00:00+01:00).")
    var now: String?

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            let logger = makeLogger(resolved.configuration)
            resolved.logSource(logger)
            if now != nil && !dryRun { throw Fail.usage("--now only goes with --dry-run: a real pass always runs at the real time") }
            if dryRun {
                let components = try components(resolved)
                let instant = try parseInstant(now, option: "--now") ?? Date()
                print("DRY RUN: nothing is sent, no spool file is moved, the ledger is not changed.")
                let totals = try await withLedgerIfPresent(resolved.configuration) { ledger in
                    try await Previewer(components: components, ledger: ledger, clock: { instant }).dryRun { print($0) }
                }
                print(
                    "DRY RUN: \(totals.wouldSend) deliveries would be sent, \(totals.notNow) deferred or held, \(totals.wouldFail) would fail, "
                        + "\(totals.invalidLines) invalid record problems.")
                return
            }
            do {
                try await Daemon(resolved: resolved, logger: logger).serve(once: once)
            } catch let error as LedgerLock.LockHeld {
                throw Fail.runtime(error.description)
            }
        }
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the configuration (file, RELANCE_* variables, credentials) and the templates; exit 2 if anything is wrong.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            print("configuration: ok (\(resolved.provenance.file ?? "embedded default"))")
            if let url = resolved.configuration.store.url {
                print("store: PostgreSQL at \(url), node \(resolved.configuration.store.node), lease \(resolved.configuration.store.lease)")
            }
            let components = try components(resolved)
            let problems = components.templateProblems(now: Date())
            if problems.isEmpty {
                print("templates: ok (\(resolved.configuration.templates.path), stages \(resolved.configuration.stages.joined(separator: ", ")))")
            } else {
                for p in problems { print("template problem: \(p)") }
                throw ExitCode(2)
            }
            Daemon.warnAboutInsecureSettings(resolved.configuration, logger: makeLogger(resolved.configuration))
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show queue depths: spool files waiting or quarantined, kill switches in force, deliveries by status, the last problems.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            let configuration = resolved.configuration
            let layout = SpoolLayout(root: configuration.spool.root)
            let waiting = layout.waitingFiles()
            let failed = ((try? FileManager.default.contentsOfDirectory(atPath: layout.failed)) ?? []).filter { !$0.hasSuffix(".error.json") }
            print(
                "spool \(configuration.spool.root): \(waiting.count) file(s) waiting, \(layout.activeFiles().count) active, \(failed.count) quarantined in failed/"
            )
            guard configuration.store.url != nil || FileManager.default.fileExists(atPath: configuration.store.path) else {
                print("ledger \(configuration.store.path): not created yet")
                return
            }
            try await withLedger(configuration, write: false) { ledger in try await Self.show(ledger, configuration: configuration) }
        }
    }

    /// The ledger's part of the status: the nodes, the holds, the queue, bounce rates, the last problems.
    static func show(_ ledger: any LedgerStore, configuration: RelanceConfiguration) async throws {
        print("ledger \(postgresSettings(configuration).map { "\($0.url)" } ?? configuration.store.path):")
        let now = Date()
        for node in try await ledger.clusterNodes() {
            let seen = Int(now.timeIntervalSince(node.seenAt))
            print("  node \(node.id)\tseen \(seen) s ago\tsince \(Timestamp.format(node.startedAt))\t\(node.version)\t\(node.claims) sending")
        }
        for hold in try await ledger.holds(now: Date()) {
            print(
                "ON HOLD: \(hold.channel == "*" ? "every channel" : hold.channel) since \(Timestamp.format(hold.createdAt))"
                    + "\(hold.until.map { " until " + Timestamp.format($0) } ?? " until relance resume"): \(hold.reason)")
        }
        for row in try await ledger.statusCounts() { print("  \(row.channel)\t\(row.status)\t\(row.count)") }
        // Of the messages that left in the last 24 hours, the share that bounced or was not delivered.
        let rates = try await ledger.bounceCounts(since: Date().addingTimeInterval(-86_400))
        if !rates.isEmpty {
            print("bounce rate, last 24 h:")
            for rate in rates {
                let percent = rate.left > 0 ? String(format: "%.1f", Double(rate.bounced) / Double(rate.left) * 100) : "0.0"
                print("  \(rate.channel)\t\(percent) %\t(\(rate.bounced) bounced or undelivered of \(rate.left) sent)")
            }
        }
        let problems = try await ledger.lastProblems(limit: 10)
        if !problems.isEmpty {
            print("last problems:")
            for p in problems { print("  \(Timestamp.format(p.at)) \(p.key) \(p.status): \(p.reason)") }
        }
    }
}

struct Resolve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Settle an in-doubt (unknown) delivery: it went out (--as sent) or send it again (--as resend); --check first asks the gateway.",
        discussion: """
            A delivery is unknown when the daemon stopped during its transport call, or when the relay or \
            gateway took the whole message and never answered. Check first: resending a message that did go out \
            sends the debtor a duplicate. --check shows what the gateway says it sent to the number since the attempt \
            (Twilio, Vonage and Brevo status APIs), or, for an email, what to look for in the relay's log. Nothing \
            settles an in-doubt delivery by itself. The decision is recorded in the ledger with the operator's name \
            ($SUDO_USER, else $USER).
            """)

    enum As: String, ExpressibleByArgument, CaseIterable { case sent, resend }

    @OptionGroup var options: ConfigOption
    @Option(help: "The reminder id.") var reminder: String
    @Option(help: "The channel: email or sms.") var channel: String
    @Option(name: .customLong("as"), help: "sent or resend.") var resolution: As?
    @Flag(help: "Ask the gateway what became of it; change nothing.") var check = false

    func validate() throws {
        if check == (resolution != nil) { throw ValidationError("either --check, or --as sent|resend") }
    }

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            guard let channel = try channelOption(channel) else { throw Fail.usage("--channel: email or sms") }
            let key = DeliveryKey(reminderID: reminder, channel: channel)
            guard let resolution else {
                return try await withLedger(resolved.configuration, write: false) { ledger in
                    try await Self.check(key, ledger: ledger, configuration: resolved.configuration)
                }
            }
            do {
                try await withLedger(resolved.configuration, write: true) { ledger in
                    try await ledger.resolve(key, as: resolution == .sent ? .sent : .resend, operator: operatorName, now: Date())
                }
            } catch let error as Ledger.ResolveError {
                throw Fail.usage(error.description)
            }
            print("\(reminder)/\(channel.rawValue): \(resolution == .sent ? "recorded as sent" : "back to pending, sent at the next pass")")
        }
    }

    /// What the gateway says it sent to the delivery's recipient since its last attempt started.
    static func check(_ key: DeliveryKey, ledger: any LedgerStore, configuration: RelanceConfiguration) async throws {
        guard let attempt = try await InDoubtCheck.lastAttempt(key, in: ledger) else {
            throw Fail.runtime("\(key.reminderID)/\(key.channel.rawValue): no attempt in the ledger")
        }
        print("\(key.reminderID)/\(key.channel.rawValue): \(attempt.status); attempt \(attempt.attempt) via \(attempt.transport) to \(attempt.recipient), started \(Timestamp.format(attempt.startedAt))")
        if let detail = attempt.detail { print("  the send said: \(detail)") }
        if key.channel == .email {
            let domain = EmailAddress.domain(of: Mailbox(parsing: configuration.email.from)?.address ?? "")
            print("  an SMTP relay has no status API: look in its log for Message-ID <\(MIME.messageID(reminderID: key.reminderID, channel: "email", domain: domain))>")
            return
        }
        guard let client = try Reconciler.clients(configuration)[attempt.transport] else {
            print("  \(attempt.transport) has no status API to ask: check the gateway's console")
            return
        }
        switch await InDoubtCheck.search(client, for: attempt) {
        case .failure(let error):
            throw Fail.runtime("\(attempt.transport) could not be asked: \(error.message)")
        case .success(let found):
            if found.isEmpty {
                print("  \(attempt.transport) sent nothing to \(attempt.recipient) since then: --as resend is safe as far as it knows")
            }
            for message in found {
                print("  \(attempt.transport): \(message.id) \(message.at.isEmpty ? "" : "at \(message.at) ")\(message.status.text)")
            }
            if !found.isEmpty { print("  it did go out: --as sent records it (resending would be a duplicate)") }
        }
    }
}
