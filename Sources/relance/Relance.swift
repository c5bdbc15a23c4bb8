import ArgumentParser
import Foundation
import Logging
import RelanceCore
import RelanceConfig
import RelanceDaemon
import RelanceDispatch
import RelanceSpool
import RelanceStore
import RelanceTransport

@main
struct Relance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relance",
        abstract: "Payment reminders from a spool directory, by email and SMS, with receipts.",
        discussion: """
            Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid input.
            Without --config, /etc/relance/relance.yaml is read; without it, the embedded default runs \
            (state in $STATE_DIRECTORY or ./relance-data, outbox transports).
            """,
        subcommands: [
            Serve.self, Preview.self, Enqueue.self, Cancel.self, Pause.self, Resume.self, Suppress.self, Unsuppress.self, Receipts.self, Check.self,
            Status.self, Resolve.self, Purge.self, Forget.self,
        ])
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Configuration file (default: /etc/relance/relance.yaml, else the embedded default).")
    var config: String?

    func resolve() throws -> ResolvedConfiguration {
        do { return try ResolvedConfiguration.resolve(configPath: config) } catch let error as UsageError { throw Fail.usage(error.description) }
    }
}

/// Errors that set the exit code.
enum Fail: Error, CustomStringConvertible {
    case usage(String)
    case runtime(String)
    var description: String {
        switch self {
        case .usage(let s), .runtime(let s): return s
        }
    }
}

extension ParsableCommand {
    /// Runs `body`, turning failures into a message on stderr and exit code 1 or 2.
    static func guarded(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as Fail {
            FileHandle.standardError.write(Data("relance: \(error)\n".utf8))
            switch error {
            case .usage: throw ExitCode(2)
            case .runtime: throw ExitCode(1)
            }
        } catch let error as UsageError {
            FileHandle.standardError.write(Data("relance: \(error)\n".utf8))
            throw ExitCode(2)
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("relance: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

func makeLogger(_ configuration: RelanceConfiguration) -> Logger {
    LogLevelBox.shared.level = configuration.log.level.loggerLevel
    return Logger(label: "relance") { label in RelanceLogHandler(label: label, levelBox: LogLevelBox.shared) }
}

/// An RFC 3339 instant given on the command line.
func parseInstant(_ text: String?, option: String) throws -> Date? {
    guard let text else { return nil }
    guard let date = Timestamp.parse(text) else {
        throw Fail.usage("\(option) \(text): expected an RFC 3339 date-time with an offset, e.g. 2026-12-05T23:00:00+01:00")
    }
    return date
}

func components(_ resolved: ResolvedConfiguration) throws -> Components {
    do { return try Components(resolved.configuration) } catch let error as UsageError { throw Fail.usage(error.description) }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: take spool files in and send what is due.",
        discussion: "SIGTERM or SIGINT stop it gracefully: it stops claiming, lets in-flight sends finish and commits.")

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
                let previewer = Previewer(components: components, ledger: Previewer.openLedgerIfPresent(resolved.configuration), clock: { instant })
                print("DRY RUN: nothing is sent, no spool file is moved, the ledger is not changed.")
                let totals = try await previewer.dryRun { print($0) }
                print("DRY RUN: \(totals.wouldSend) deliveries would be sent, \(totals.wouldFail) would fail, \(totals.invalidLines) invalid record problems.")
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

struct Preview: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print exactly what would be sent for each delivery of a spool file, and the decision; send nothing.")

    @OptionGroup var options: ConfigOption
    @Argument(help: "A spool file (.json or .jsonl).")
    var file: String
    @Option(help: "Evaluate the policy as of this instant (RFC 3339, e.g. 2026-12-05T23:00:00+01:00) instead of now.")
    var now: String?

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            let components = try components(resolved)
            guard FileManager.default.fileExists(atPath: file) else { throw Fail.usage("\(file): no such file") }
            let instant = try parseInstant(now, option: "--now") ?? Date()
            let parsed = components.parser.parse(path: file)
            let previewer = Previewer(components: components, ledger: Previewer.openLedgerIfPresent(resolved.configuration), clock: { instant })
            print("Policy evaluated as of \(Timestamp.format(instant, in: previewer.policy.home)).\n")
            for (line, reminder) in parsed.reminders {
                for item in await previewer.items(for: reminder, sourceFile: (file as NSString).lastPathComponent) {
                    print("=== \(item.key) (line \(line)) — decision: \(item.decision)")
                    switch item.message {
                    case .email(let from, let to, let data)?:
                        print("envelope: MAIL FROM:<\(from)> RCPT TO:<\(to)>")
                        print(String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n"))
                    case .sms(let sms)?:
                        print("SMS from \(sms.from) to \(sms.to): \(sms.analysis)")
                        print(sms.text)
                    case nil:
                        break
                    }
                    print("")
                }
            }
            for error in parsed.errors {
                print("INVALID line \(error.line)\(error.field.isEmpty ? "" : " field \(error.field)"): \(error.reason)")
            }
            if !parsed.errors.isEmpty { throw ExitCode(2) }
        }
    }
}

struct Enqueue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate spool files and drop them into the spool (written in tmp/, then renamed into incoming/).",
        discussion: "A file with any invalid record is refused as a whole and nothing of it is dropped (exit 2).")

    @OptionGroup var options: ConfigOption
    @Option(help: "Named queue (a subdirectory of incoming/); default: the default queue.")
    var queue: String?
    @Argument(help: "Spool files (.json or .jsonl).")
    var files: [String]

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            let components = try components(resolved)
            if let queue, queue.isEmpty || queue.contains("/") || queue.hasPrefix(".") { throw Fail.usage("--queue must be a plain directory name") }
            try components.layout.create()
            var refused = false
            for file in files {
                let parsed = components.parser.parse(path: file)
                if !parsed.errors.isEmpty {
                    refused = true
                    for error in parsed.errors {
                        FileHandle.standardError.write(
                            Data("\(file): line \(error.line)\(error.field.isEmpty ? "" : " field \(error.field)"): \(error.reason)\n".utf8))
                    }
                    continue
                }
                guard let data = FileManager.default.contents(atPath: file) else { throw Fail.runtime("\(file): cannot be read") }
                let name = (file as NSString).lastPathComponent
                let unique = "\(Int(Date().timeIntervalSince1970))-\(getpid())-\(name)"
                let tmp = components.layout.tmp + "/" + unique
                let targetDir = components.layout.incoming(queue: queue ?? SpoolLayout.defaultQueue)
                try FileManager.default.createDirectory(atPath: targetDir, withIntermediateDirectories: true)
                do {
                    try FileIO.writeDurably(data, to: tmp, mode: 0o660)
                    try FileIO.rename(tmp, targetDir + "/" + unique)
                } catch { throw Fail.runtime("\(error)") }
                print("enqueued \(file) as \(targetDir)/\(unique) (\(parsed.reminders.count) reminder\(parsed.reminders.count == 1 ? "" : "s"))")
            }
            if refused { throw ExitCode(2) }
        }
    }
}

struct Receipts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List receipts: one per attempt, with the delivery's current status.",
        discussion: "With --reminder (table format), also the deliveries, every gateway callback and every status change of that reminder.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, json, csv }

    @OptionGroup var options: ConfigOption
    @Option(help: "Only deliveries now in this status (pending, sending, sent, failed, unknown, expired, …).")
    var status: String?
    @Option(help: "Only attempts started at or after this RFC 3339 time (e.g. 2026-11-30T00:00:00+01:00).")
    var since: String?
    @Option(help: "Only this reminder.")
    var reminder: String?
    @Option(help: "Output format: table, json (one object per line) or csv.")
    var format: Format = .table

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            var statusFilter: DeliveryStatus?
            if let status {
                guard let s = DeliveryStatus(rawValue: status) else {
                    throw Fail.usage("--status \(status): unknown (one of \(DeliveryStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                statusFilter = s
            }
            var sinceDate: Date?
            if let since {
                guard let d = Timestamp.parse(since) else { throw Fail.usage("--since \(since): not an RFC 3339 time with an offset") }
                sinceDate = d
            }
            guard FileManager.default.fileExists(atPath: resolved.configuration.store.path) else {
                throw Fail.runtime("no ledger at \(resolved.configuration.store.path) (nothing was ever ingested)")
            }
            let ledger = try Ledger(path: resolved.configuration.store.path, readOnly: true)
            let format = self.format
            if format == .table {
                print(ReceiptFormat.tableHeader)
            } else if format == .csv {
                print(ReceiptFormat.csvHeader)
            }
            try await ledger.receipts(status: statusFilter, since: sinceDate, reminderID: reminder) { receipt in
                switch format {
                case .table: print(ReceiptFormat.tableRow(receipt))
                case .csv: print(ReceiptFormat.csvRow(receipt))
                case .json: print(ReceiptFormat.json(receipt))
                }
            }
            // One reminder: its whole history, every gateway callback and every status change.
            guard let reminder, format == .table else { return }
            let deliveries = try await ledger.deliveries(reminderID: reminder)
            if deliveries.isEmpty { throw Fail.runtime("no reminder \(reminder) in the ledger") }
            print("\ndeliveries:")
            for d in deliveries { print("  \(d.channel)\t\(d.status)\tattempts \(d.attempts)\(d.lastError.map { "\tlast error: \($0)" } ?? "")") }
            let callbacks = try await ledger.callbacks(reminderID: reminder)
            print("\ncallbacks:\(callbacks.isEmpty ? " none" : "")")
            for c in callbacks {
                print("  \(Timestamp.format(c.receivedAt)) \(c.provider) \(c.messageID) \(c.status) → \(c.result) \(c.raw)")
            }
            print("\nevents:")
            for e in try await ledger.events(reminderID: reminder) {
                print("  \(Timestamp.format(e.at)) \(e.channel) \(e.from ?? "-") → \(e.to): \(e.reason)")
            }
        }
    }
}

enum ReceiptFormat {
    static let columns = ["started_at", "reminder_id", "channel", "attempt", "transport", "recipient", "outcome", "code", "status", "provider_id", "detail"]
    static let widths = [20, 22, 6, 3, 9, 34, 10, 4, 10]
    static let tableHeader = row(["STARTED", "REMINDER", "CHAN", "#", "TRANSPORT", "RECIPIENT", "OUTCOME", "CODE", "STATUS", "DETAIL"])

    static func row(_ cells: [String]) -> String {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? String(s.prefix(n)) : s + String(repeating: " ", count: n - s.count) }
        return (zip(cells, widths).map { pad($0, $1) } + [String(cells.last!.prefix(120))]).joined(separator: " ")
    }
    static let csvHeader = columns.joined(separator: ",")

    static func fields(_ r: Receipt) -> [String] {
        [
            Timestamp.format(r.startedAt), r.reminderID, r.channel, "\(r.attempt)", r.transport, r.recipient, r.outcome, r.code.map(String.init) ?? "",
            r.status, r.providerID ?? "", r.detail ?? "",
        ]
    }

    static func tableRow(_ r: Receipt) -> String {
        let f = fields(r)
        return row(Array(f[0..<9]) + [f[10]])
    }

    static func csvRow(_ r: Receipt) -> String {
        fields(r).map { v in v.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) ? "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : v }
            .joined(separator: ",")
    }

    static func json(_ r: Receipt) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, enc in
            var c = enc.singleValueContainer()
            try c.encode(Timestamp.format(date))
        }
        return (try? encoder.encode(r)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate the configuration and the templates; exit 2 if anything is wrong.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            print("configuration: ok (\(resolved.provenance.file ?? "embedded default"))")
            let components = try components(resolved)
            let problems = components.templateProblems(now: Date())
            if problems.isEmpty {
                print("templates: ok (\(resolved.configuration.templates.path), stages \(resolved.configuration.stages.joined(separator: ", ")))")
            } else {
                for p in problems { print("template problem: \(p)") }
                throw ExitCode(2)
            }
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show queue depths: spool files waiting or quarantined, kill switches in force, deliveries by status, last errors.")

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
            guard FileManager.default.fileExists(atPath: configuration.store.path) else {
                print("ledger \(configuration.store.path): not created yet")
                return
            }
            let ledger = try Ledger(path: configuration.store.path, readOnly: true)
            print("ledger \(configuration.store.path):")
            for hold in try await ledger.holds(now: Date()) {
                print(
                    "ON HOLD: \(hold.channel == "*" ? "every channel" : hold.channel) since \(Timestamp.format(hold.createdAt))"
                        + "\(hold.until.map { " until " + Timestamp.format($0) } ?? " until relance resume"): \(hold.reason)")
            }
            for row in try await ledger.statusCounts() { print("  \(row.channel)\t\(row.status)\t\(row.count)") }
            let errors = try await ledger.lastErrors(limit: 5)
            if !errors.isEmpty {
                print("last errors:")
                for e in errors {
                    print("  \(Timestamp.format(e.startedAt)) \(e.reminderID)/\(e.channel) \(e.outcome) \(e.code.map(String.init) ?? "-"): \(e.detail ?? "")")
                }
            }
        }
    }
}

struct Resolve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Settle an in-doubt (unknown) delivery: it went out (--as sent) or send it again (--as resend).",
        discussion: """
            A delivery is unknown when the daemon stopped during its transport call. Check the relay's or the \
            gateway's logs first: resending a message that did go out sends the debtor a duplicate. The decision \
            is recorded in the ledger with the operator's name ($SUDO_USER, else $USER).
            """)

    enum As: String, ExpressibleByArgument, CaseIterable { case sent, resend }

    @OptionGroup var options: ConfigOption
    @Option(help: "The reminder id.") var reminder: String
    @Option(help: "The channel: email or sms.") var channel: String
    @Option(name: .customLong("as"), help: "sent or resend.") var resolution: As

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            guard let channel = Channel(rawValue: channel) else { throw Fail.usage("--channel \(self.channel): email or sms") }
            let ledger = try Ledger(path: resolved.configuration.store.path)
            let env = ProcessInfo.processInfo.environment
            let name = env["SUDO_USER"] ?? env["USER"] ?? "operator"
            do {
                try await ledger.resolve(
                    DeliveryKey(reminderID: reminder, channel: channel), as: resolution == .sent ? .sent : .resend, operator: name, now: Date())
            } catch let error as Ledger.ResolveError {
                throw Fail.usage(error.description)
            }
            print("\(reminder)/\(channel.rawValue): \(resolution == .sent ? "recorded as sent" : "back to pending, sent at the next pass")")
        }
    }
}
