import ArgumentParser
import Foundation
import RelanceConfig
import RelanceCore
import RelanceDaemon
import RelanceDispatch
import RelanceSpool
import RelanceStore

/// The operator's name for the audit trail: $SUDO_USER, else $USER.
var operatorName: String {
    let env = ProcessInfo.processInfo.environment
    return env["SUDO_USER"] ?? env["USER"] ?? "operator"
}

func channelOption(_ text: String?) throws -> Channel? {
    guard let text else { return nil }
    guard let channel = Channel(rawValue: text) else { throw Fail.usage("--channel \(text): email or sms") }
    return channel
}

struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop reminders for an invoice, a reminder, a debtor or a spool file; or pause them (--until); or record a partial payment.",
        discussion: """
            Exactly one of --invoice, --reminder, --debtor, --file. Waiting deliveries it matches are cancelled \
            (or paused until --until) at once, and it stays in force for reminders ingested later. A delivery \
            cancelled before it is marked sending is never sent. --amount-paid (with --invoice and --reason paid) \
            records the total paid so far: later reminders show what remains, and a reminder with nothing left \
            is cancelled. Recorded in the ledger with the operator's name.
            """)

    enum Reason: String, ExpressibleByArgument, CaseIterable {
        case paid, disputed
        case promiseToPay = "promise_to_pay"
        case other
    }

    @OptionGroup var options: ConfigOption
    @Option(help: "An invoice number.") var invoice: String?
    @Option(help: "A reminder id.") var reminder: String?
    @Option(help: "A debtor id.") var debtor: String?
    @Option(help: "A spool file name: everything ingested from it (a bad batch).") var file: String?
    @Option(help: "paid, disputed, promise_to_pay or other.") var reason: Reason
    @Option(help: "Pause until this instant (RFC 3339) instead of cancelling.") var until: String?
    @Option(name: .customLong("amount-paid"), help: "Partial payment: the total paid so far on --invoice (e.g. 200.00).") var amountPaid: String?
    @Option(help: "A note kept in the ledger.") var note: String?

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            var body: [String: JSONValue] = ["reason": .string(reason.rawValue)]
            let targets = [("invoice", invoice), ("reminder", reminder), ("debtor", debtor), ("file", file)].filter { $0.1 != nil }
            guard targets.count == 1, let (scope, value) = targets.first.flatMap({ t in t.1.map { (t.0, $0) } }) else {
                throw Fail.usage("give exactly one of --invoice, --reminder, --debtor, --file")
            }
            body[scope] = .string(value)
            if let until { body["until"] = .string(until) }
            if let amountPaid { body["amount_paid"] = .string(amountPaid) }
            body["note"] = .string(note ?? "by \(operatorName)")
            let request: CancellationRequest
            switch CancellationRequest.validate(JSONValue.object(["cancel": .object(body)])) {
            case .success(let r): request = r
            case .failure(let issues):
                throw Fail.usage(
                    issues.issues.map { "--\($0.field.replacingOccurrences(of: "cancel.", with: "").replacingOccurrences(of: "_", with: "-")): \($0.reason)" }
                        .joined(separator: "; "))
            }
            if let until = request.until, until <= Date() { throw Fail.usage("--until \(self.until ?? ""): a pause must end in the future") }
            let result = try await withLedger(resolved.configuration, write: true, create: true) { ledger in
                try await ledger.cancel(request, source: "cli:\(operatorName)", now: Date())
            }
            print(
                "\(request.summary): \(result.matched) reminders matched, \(result.cancelled) deliveries cancelled, \(result.paused) paused"
                    + (request.amountPaid != nil ? ", \(result.settled) reminders fully paid" : ""))
            if result.matched == 0 { print("(nothing in the ledger yet; it applies to reminders ingested later)") }
        }
    }
}

struct Pause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Kill switch: stop all sending (or one channel's) at once, until --until or `relance resume`.",
        discussion: "Deliveries stay pending and go out when the hold ends; a running daemon sees the hold before its next send.")

    @OptionGroup var options: ConfigOption
    @Flag(help: "Every delivery (required, to say it on purpose).") var all = false
    @Option(help: "Only this channel: email or sms.") var channel: String?
    @Option(help: "End of the hold (RFC 3339).") var until: String?
    @Option(help: "Why (kept in the ledger).") var reason: String?

    func run() async throws {
        try await Self.guarded {
            guard all else {
                throw Fail.usage("relance pause needs --all (optionally with --channel); to pause one debtor or invoice use relance cancel --until")
            }
            let resolved = try options.resolve()
            let channel = try channelOption(channel)
            let until = try parseFutureInstant(until, option: "--until")
            try await withLedger(resolved.configuration, write: true, create: true) { ledger in
                try await ledger.hold(channel: channel, until: until, reason: reason ?? "paused by \(operatorName)", now: Date())
            }
            print("on hold: \(channel?.rawValue ?? "every channel")\(until.map { " until " + Timestamp.format($0) } ?? " until relance resume")")
        }
    }
}

struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lift a kill switch (--all, --channel) or a pause recorded by relance cancel --until (--invoice, --reminder, --debtor, --file).")

    @OptionGroup var options: ConfigOption
    @Flag(help: "Lift every hold.") var all = false
    @Option(help: "Lift the hold of this channel: email or sms.") var channel: String?
    @Option(help: "Lift the pauses of an invoice.") var invoice: String?
    @Option(help: "Lift the pauses of a reminder.") var reminder: String?
    @Option(help: "Lift the pauses of a debtor.") var debtor: String?
    @Option(help: "Lift the pauses of a spool file.") var file: String?

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            try await withLedger(resolved.configuration, write: true, create: true) { ledger in
                let targets: [(CancellationRequest.Scope, String?)] = [(.invoice, invoice), (.reminder, reminder), (.debtor, debtor), (.file, file)]
                let chosen = targets.filter { $0.1 != nil }
                if all || channel != nil {
                    guard chosen.isEmpty else { throw Fail.usage("--all/--channel lift holds; --invoice/--reminder/--debtor/--file lift pauses: not both") }
                    let lifted = try await ledger.releaseHold(channel: all ? nil : try channelOption(channel))
                    print(lifted == 0 ? "no hold to lift" : "lifted \(lifted) hold(s): sending resumes")
                    return
                }
                guard chosen.count == 1, let (scope, value) = chosen.first.flatMap({ t in t.1.map { (t.0, $0) } }) else {
                    throw Fail.usage("give --all, --channel, or exactly one of --invoice, --reminder, --debtor, --file")
                }
                let resumed = try await ledger.lift(scope: scope, value: value, now: Date())
                print("\(scope.rawValue) \(value): \(resumed) paused deliveries back to pending")
            }
        }
    }
}

struct Suppress: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add an email address or phone number to the suppression list (opt-out): nothing more is sent to it. --list shows the list.",
        discussion: """
            A suppressed channel falls back to the reminder's fallback channels. Phone numbers are normalised to E.164 (national numbers: \
            defaults.country). --list prints every suppression with its reason, its source (cli:USER, or the provider whose opt-out \
            put it there) and since when.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, json, csv }

    @OptionGroup var options: ConfigOption
    @Argument(help: "An email address or a phone number.") var address: String?
    @Option(help: "Why (kept in the ledger).") var reason: String?
    @Flag(help: "List the suppressions instead of adding one.") var list = false
    @Option(help: "With --list: table, json (one object per line) or csv.") var format: Format = .table

    func validate() throws {
        if list && (address != nil || reason != nil) { throw ValidationError("--list takes no address and no --reason") }
        if !list && address == nil { throw ValidationError("an address to suppress, or --list") }
    }

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            guard let address else { return try await Self.list(resolved.configuration, format: format) }
            let normalised = try normaliseAddress(address, country: resolved.configuration.defaults.country)
            try await withLedger(resolved.configuration, write: true, create: true) { ledger in
                try await ledger.suppress(normalised, reason: reason ?? "suppressed by \(operatorName)", source: "cli:\(operatorName)", now: Date())
            }
            print("suppressed: \(normalised)")
        }
    }

    static let columns = ["address", "reason", "source", "since"]

    static func list(_ configuration: RelanceConfiguration, format: Format) async throws {
        switch format {
        case .table: print(columns.map { $0.uppercased() }.joined(separator: "\t"))
        case .csv: print(columns.joined(separator: ","))
        case .json: break
        }
        guard configuration.store.url != nil || FileManager.default.fileExists(atPath: configuration.store.path) else { return }
        try await withLedger(configuration, write: false) { ledger in try await list(ledger, format: format) }
    }

    static func list(_ ledger: any LedgerStore, format: Format) async throws {
        try await ledger.forEachSuppression { entry in
            let values = [entry.address, entry.reason, entry.source, Timestamp.format(entry.since)]
            switch format {
            // One line per entry: a tab or a line break in a reason would break the columns.
            case .table: print(values.map { String($0.map { $0.isNewline || $0 == "\t" ? " " : $0 }) }.joined(separator: "\t"))
            case .csv: print(values.map(CSVField.quoted).joined(separator: ","))
            case .json: print("{" + zip(columns, values).map { "\(JSONText.string($0)):\(JSONText.string($1))" }.joined(separator: ",") + "}")
            }
        }
    }
}

struct Unsuppress: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove an email address or phone number from the suppression list.")

    @OptionGroup var options: ConfigOption
    @Argument(help: "An email address or a phone number.") var address: String

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            let normalised = try normaliseAddress(address, country: resolved.configuration.defaults.country)
            let removed = try await withLedger(resolved.configuration, write: true, create: true) { ledger in try await ledger.unsuppress(normalised) }
            print(removed ? "removed from the suppression list: \(normalised)" : "\(normalised) was not on the suppression list")
        }
    }
}

func normaliseAddress(_ text: String, country: String) throws -> String {
    if text.contains("@") {
        guard !text.contains(where: { $0.isNewline || $0.isWhitespace }) else { throw Fail.usage("\(text.debugDescription): not an email address") }
        return text.lowercased()
    }
    switch PhoneNumber.normalise(text, country: country) {
    case .success(let e164): return e164
    case .failure(let reason): throw Fail.usage("\(text): \(reason)")
    }
}

extension Array {
    func asyncFlatMap<T>(_ transform: (Element) async throws -> [T]) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result += try await transform(element) }
        return result
    }
}
