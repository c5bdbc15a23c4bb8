import ArgumentParser
import Foundation
import RelanceConfig
import RelanceCore
import RelanceDispatch
import RelanceStore
import Synchronization

/// `relance import`: receivables records into the ledger.
struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import receivables (debtors, invoices, payments, credit notes, write-offs, disputes, promises, holds) into the ledger.",
        discussion: """
            JSON lines (one record with a "type" per line, docs/receivables.md), CSV (--format csv --type T: the header \
            names the keys) or a FEC (--format fec: lines on customer accounts become invoices, payments and credit notes). Each file is one transaction; re-importing a file changes nothing. A record with errors is \
            reported as FILE:LINE: field: reason and left out; the others are imported. Exit code 2 when any record was rejected.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case jsonl, csv, fec }

    @OptionGroup var options: ConfigOption
    @Option(help: "Input format: jsonl, csv, or fec (the French Fichier des Écritures Comptables; config receivables.fec).")
    var format: Format = .jsonl
    @Option(help: "With --format csv: the record type of every row (\(ReceivableValidator.types.joined(separator: ", "))).")
    var type: String?
    @Argument(help: "Files to import, in order.")
    var files: [String]

    func validate() throws {
        if format == .csv {
            guard let type else { throw ValidationError("--format csv needs --type (\(ReceivableValidator.types.joined(separator: ", ")))") }
            guard ReceivableValidator.types.contains(type) else {
                throw ValidationError("--type \(type): unknown (\(ReceivableValidator.types.joined(separator: ", ")))")
            }
        } else if type != nil {
            throw ValidationError("--type applies to --format csv only (JSON lines name their type)")
        }
    }

    func run() async throws {
        try await Self.guarded {
            let configuration = try options.resolve().configuration
            let validator = ReceivableValidator(
                rules: RecordRules(
                    stages: configuration.stages, defaultCountry: configuration.defaults.country, defaultLocale: configuration.defaults.locale,
                    defaultTimezone: configuration.defaults.timezone))
            let defaults = ReceivablesImport.Defaults(
                country: configuration.defaults.country, locale: configuration.defaults.locale, timezone: configuration.defaults.timezone,
                terms: configuration.receivables.defaultTerms)
            let rejectedAny = try await withLedger(configuration, write: true, create: true) { ledger in
                try await importFiles(into: ledger, configuration: configuration, validator: validator, defaults: defaults)
            }
            if rejectedAny { throw ExitCode(2) }
        }
    }

    /// Imports each file in turn; whether any record was rejected.
    func importFiles(
        into ledger: any LedgerStore, configuration: RelanceConfiguration, validator: ReceivableValidator, defaults: ReceivablesImport.Defaults
    ) async throws -> Bool {
        var rejectedAny = false
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { throw Fail.runtime("\(file): cannot be read") }
            var lines: [ReceivablesImport.Line] = []
            var rejected: [ReceivablesImport.Rejection] = []
            let fec = FECReader(accounts: configuration.receivables.fec.accounts, salesJournals: configuration.receivables.fec.salesJournals)
            for (line, value) in try records(Array(data), file: file, validator: validator, fec: fec) {
                switch value {
                case .success(let record): lines.append(.init(line: line, record: record))
                case .failure(let issues): rejected += issues.issues.map { .init(line: line, issue: $0) }
                }
            }
            let result = try await ledger.importReceivables(lines, source: (file as NSString).lastPathComponent, defaults: defaults, now: Date())
            rejected = (rejected + result.rejected).sorted { $0.line < $1.line }
            for r in rejected { FileHandle.standardError.write(Data("\(file):\(r.line): \(r.issue)\n".utf8)) }
            let lineCount = Set(rejected.map(\.line)).count
            print("\(file): \(result.applied) applied, \(result.unchanged) unchanged, \(lineCount) rejected")
            rejectedAny = rejectedAny || !rejected.isEmpty
        }
        return rejectedAny
    }

    /// Each record of a file with the line it starts on, validated.
    func records(_ bytes: [UInt8], file: String, validator check: ReceivableValidator, fec: FECReader) throws
        -> [(Int, Result<ReceivableRecord, RecordIssues>)]
    {
        switch format {
        case .fec:
            return fec.records(bytes).map { ($0.line, $0.value) }
        case .jsonl:
            var out: [(Int, Result<ReceivableRecord, RecordIssues>)] = []
            var start = 0
            var line = 1
            for i in 0...bytes.count where i == bytes.count || bytes[i] == UInt8(ascii: "\n") {
                var slice = bytes[start..<i]
                if slice.last == UInt8(ascii: "\r") { slice = slice.dropLast() }
                if line == 1 && slice.starts(with: [0xEF, 0xBB, 0xBF]) { slice = slice.dropFirst(3) }
                if slice.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }) { out.append((line, check.validate(slice))) }
                start = i + 1
                line += 1
            }
            return out
        case .csv:
            let rows: [CSVReader.Row]
            do { rows = try CSVReader().rows(bytes) } catch { throw Fail.usage("\(file): \(error)") }
            return CSVReader.receivableRecords(rows, type: type ?? "").map { line, value in
                switch value {
                case .success(let json): (line, check.validate(json))
                case .failure(let issues): (line, .failure(issues))
                }
            }
        }
    }
}

/// `relance plan`: what the dunning planner would do.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "The dunning plan: the reminders the next run creates, and every item held, with its reason (a preview unless --commit).",
        discussion: """
            Each open item climbs its ladder (config plan.ladders) one step at a time; see docs/receivables.md for the rules \
            and the reason codes. --format json prints {"as_of", "reminders": [...], "held": [...]} (DESIGN.md contract). \
            Without --commit nothing is written. --commit creates the reminders (queue plan) and records the run, in one transaction; --as-of may not be before the last committed run.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, json }

    @OptionGroup var options: ConfigOption
    @Option(name: .customLong("as-of"), help: "Plan as of this RFC 3339 instant (default: now); its date in defaults.timezone is used.")
    var asOf: String?
    @Option(help: "Only this debtor.")
    var debtor: String?
    @Option(help: "Output format: table or json.")
    var format: Format = .table
    @Flag(help: "Commit the plan: create its reminders (sent by the daemon through the contact policy) and record the run.")
    var commit = false

    func validate() throws {
        if commit && debtor != nil { throw ValidationError("--commit plans every debtor: --debtor is for previews") }
    }

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            let configuration = resolved.configuration
            let instant = try parseInstant(asOf, option: "--as-of") ?? Date()
            let zone = TimeZone(identifier: configuration.defaults.timezone) ?? .gmt
            let date = CivilDate(instant, in: zone)
            if commit {
                guard date <= CivilDate(Date(), in: zone) else { throw Fail.usage("--as-of \(date): a plan for a day to come cannot be committed") }
                try await Self.commit(components: try components(resolved), instant: instant, date: date, format: format)
                return
            }
            try await withLedger(configuration, write: false, absent: Self.noLedger) { ledger in
                let previous = try await ledger.lastPlanRun()
                let rules = try await PlanRun.rules(configuration, ledger: ledger)
                let output = PlanOutput(format: format, asOf: instant, date: date, zone: configuration.defaults.timezone)
                try output.begin()
                try await ledger.forEachDebtorSnapshot(debtor: debtor) { snapshot in
                    let part = Planner.plan(snapshot, rules: rules, asOf: date, previousRun: previous)
                    try output.add(part.reminders, part.held)
                }
                try output.finish()
            }
        }
    }
}

extension PlanCommand {
    /// What a plan says without a ledger.
    static let noLedger = ": import receivables first (relance import)"

    /// Commits the run: the planner and the record validation run per debtor inside the ledger's
    /// write transaction (all or nothing).
    static func commit(components: Components, instant: Date, date: CivilDate, format: Format) async throws {
        let configuration = components.configuration
        let result: PlanCommitResult
        do {
            result = try await withLedger(configuration, write: true, absent: Self.noLedger) { ledger in
                try await PlanRun.commit(ledger: ledger, components: components, instant: instant, date: date, now: Date())
            }
        } catch let error as PlanCommitError {
            throw Fail.usage("--as-of \(date): \(error)")
        }
        for (id, reason) in result.rejected { FileHandle.standardError.write(Data("relance: planned reminder \(id) not created: \(reason)\n".utf8)) }
        switch format {
        case .json:
            print(
                "{\"run\":\(result.runID),\"as_of\":\(JSONText.string(Timestamp.format(instant, in: TimeZone(identifier: configuration.defaults.timezone) ?? .gmt))),"
                    + "\"created\":[\(result.created.map(JSONText.string).joined(separator: ","))],\"existing\":[\(result.existing.map(JSONText.string).joined(separator: ","))],"
                    + "\"handoffs\":\(result.handoffs),\"held\":\(result.held),\"rejected\":[\(result.rejected.map { JSONText.string($0.id) }.joined(separator: ","))]}"
            )
        case .table:
            for id in result.created { print("created\t\(id)") }
            print(
                "committed run \(result.runID) as of \(date): \(result.created.count) reminder(s) created, \(result.existing.count) already there, "
                    + "\(result.handoffs) item(s) handed off, \(result.held) held\(result.rejected.isEmpty ? "" : ", \(result.rejected.count) rejected")")
        }
        if !result.rejected.isEmpty { throw ExitCode(2) }
    }
}

/// Writes a plan as it is computed, debtor by debtor: the reminders at once, the held items to a
/// temporary file appended at the end (a plan of a million items is never held in memory).
final class PlanOutput: @unchecked Sendable {
    // @unchecked: used from the ledger's read closure only, one debtor after another.
    let format: PlanCommand.Format
    let asOf: Date
    let date: CivilDate
    let zone: String
    let heldFile: FileHandle
    let heldPath: String
    var reminderCount = 0
    var heldCount = 0
    var perStage: [String: Int] = [:]
    var perReason: [String: Int] = [:]

    init(format: PlanCommand.Format, asOf: Date, date: CivilDate, zone: String) {
        self.format = format
        self.asOf = asOf
        self.date = date
        self.zone = zone
        heldPath = NSTemporaryDirectory() + "relance-plan-held-\(getpid())"
        _ = FileManager.default.createFile(atPath: heldPath, contents: nil)
        heldFile = FileHandle(forUpdatingAtPath: heldPath) ?? .nullDevice
    }

    deinit { try? FileManager.default.removeItem(atPath: heldPath) }

    func write(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }

    func begin() throws {
        switch format {
        case .json: write("{\"as_of\":\(JSONText.string(Timestamp.format(asOf, in: TimeZone(identifier: zone) ?? .gmt))),\"reminders\":[")
        case .table:
            write("plan as of \(date) (\(zone))\n\nREMINDERS\n")
            write(PlanFormat.reminderHeader + "\n")
        }
    }

    func add(_ reminders: [PlannedReminder], _ held: [HeldItem]) throws {
        for r in reminders {
            switch format {
            case .json: write((reminderCount == 0 ? "" : ",") + PlanFormat.json(r))
            case .table: write(PlanFormat.row(r) + "\n")
            }
            reminderCount += 1
            perStage[r.stage, default: 0] += 1
        }
        for h in held {
            let text = format == .json ? (heldCount == 0 ? "" : ",") + PlanFormat.json(h) : PlanFormat.row(h) + "\n"
            heldFile.write(Data(text.utf8))
            heldCount += 1
            perReason[h.reason.rawValue, default: 0] += 1
        }
    }

    func finish() throws {
        switch format {
        case .json: write("],\"held\":[")
        case .table: write("\nHELD\n" + PlanFormat.heldHeader + "\n")
        }
        try heldFile.seek(toOffset: 0)
        while let chunk = try heldFile.read(upToCount: 1 << 20), !chunk.isEmpty { FileHandle.standardOutput.write(chunk) }
        switch format {
        case .json: write("]}\n")
        case .table:
            let stages = perStage.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            let reasons = perReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            write("\n\(reminderCount) reminder(s)\(stages.isEmpty ? "" : ": \(stages)"); \(heldCount) item(s) held\(reasons.isEmpty ? "" : ": \(reasons)")\n")
        }
    }
}

/// How plans print.
enum PlanFormat {
    static let reminderHeader = ["DEBTOR", "STAGE", "CHANNELS", "ITEMS", "OUTSTANDING", "ID"].joined(separator: "\t")
    static let heldHeader = ["DEBTOR", "ITEM", "REASON", "UNTIL", "NEXT STAGE", "NEXT ON"].joined(separator: "\t")

    static func totals(_ items: [PlannedItem]) -> String {
        var sums: [String: Int64] = [:]
        for item in items { sums[item.outstanding.currency, default: 0] += item.outstanding.units }
        return sums.sorted { $0.key < $1.key }.map { MinorAmount(units: $0.value, currency: $0.key).description }.joined(separator: " + ")
    }

    static func row(_ r: PlannedReminder) -> String {
        let channels = r.action == .handoff ? "(hand-off)" : r.channels.map(\.rawValue).joined(separator: ",")
        return [r.debtor, r.stage, channels, r.items.map(\.id.description).joined(separator: ","), totals(r.items), r.id].joined(separator: "\t")
    }

    static func row(_ h: HeldItem) -> String {
        [h.debtor, h.item.description, h.reason.rawValue, h.until.map(untilText) ?? "-", h.nextStage ?? "-", h.nextOn?.description ?? "-"].joined(
            separator: "\t")
    }

    static func untilText(_ date: CivilDate) -> String { date == .distantFuture ? "open" : date.description }

    static func json(_ r: PlannedReminder) -> String {
        let items = r.items.map { item in
            "{\"invoice\":\(JSONText.string(item.id.invoice)),\"instalment\":\(item.id.instalment.map(String.init) ?? "null"),"
                + "\"outstanding\":\(JSONText.string(item.outstanding.text)),\"currency\":\(JSONText.string(item.outstanding.currency)),"
                + "\"due_on\":\(JSONText.string(item.dueOn.description)),\"days_overdue\":\(item.daysOverdue)}"
        }
        return "{\"id\":\(JSONText.string(r.id)),\"debtor\":\(JSONText.string(r.debtor)),\"stage\":\(JSONText.string(r.stage)),"
            + "\"action\":\(JSONText.string(r.action.rawValue)),\"channels\":[\(r.channels.map { JSONText.string($0.rawValue) }.joined(separator: ","))],"
            + "\"items\":[\(items.joined(separator: ","))]}"
    }

    static func json(_ h: HeldItem) -> String {
        func date(_ d: CivilDate?) -> String { d.map { $0 == .distantFuture ? "null" : JSONText.string($0.description) } ?? "null" }
        return "{\"debtor\":\(JSONText.string(h.debtor)),\"invoice\":\(JSONText.string(h.item.invoice)),"
            + "\"instalment\":\(h.item.instalment.map(String.init) ?? "null"),\"reason\":\(JSONText.string(h.reason.rawValue)),"
            + "\"until\":\(date(h.until)),\"next_stage\":\(h.nextStage.map(JSONText.string) ?? "null"),\"next_on\":\(date(h.nextOn))}"
    }
}

/// `relance receivables`: the open items and their standing.
struct ReceivablesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receivables",
        abstract: "List the receivables: every item (invoice or instalment) with its outstanding amount, status and the last step it took.",
        discussion: """
            Outstanding amounts are derived from the invoices and the movements dated up to --as-of (default: today), \
            never stored. Status: open, paid, written_off, disputed, promised, on_hold, handed_off. \
            --status handed_off is the hand-off export for litigation: it adds the debtor's identity and contact details \
            and every reminder about each invoice (date sent, channel, stage, status, recipient, reminder id).
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, json, csv }
    enum Status: String, ExpressibleByArgument, CaseIterable {
        case open, paid, disputed, promised
        case writtenOff = "written_off"
        case onHold = "on_hold"
        case handedOff = "handed_off"
    }

    @OptionGroup var options: ConfigOption
    @Option(name: .customLong("as-of"), help: "Standing as of this RFC 3339 instant (default: now).")
    var asOf: String?
    @Option(help: "Only this debtor.")
    var debtor: String?
    @Option(help: "Only items in this status (\(Status.allCases.map(\.rawValue).joined(separator: ", "))).")
    var status: Status?
    @Option(help: "Output format: table, json (one object per line) or csv.")
    var format: Format = .table

    static let columns = ["debtor", "invoice", "instalment", "issued_on", "due_on", "amount", "outstanding", "currency", "status", "last_stage", "last_on"]
    /// The hand-off export (`--status handed_off`) adds who the debtor is and every reminder sent.
    static let handoffColumns = ["debtor_name", "debtor_kind", "debtor_email", "debtor_phone", "reminders"]

    func run() async throws {
        try await Self.guarded {
            let configuration = try options.resolve().configuration
            let instant = try parseInstant(asOf, option: "--as-of") ?? Date()
            let date = CivilDate(instant, in: TimeZone(identifier: configuration.defaults.timezone) ?? .gmt)
            let (format, wanted) = (self.format, self.status)
            let export = wanted == .handedOff
            let columns = Self.columns + (export ? Self.handoffColumns : [])
            let handoffStages = Set(configuration.plan.ladders.values.flatMap(\.steps).filter { $0.action == .handoff }.map(\.stage))
            switch format {
            case .table: print(columns.map { $0.uppercased() }.joined(separator: "\t"))
            case .csv: print(columns.joined(separator: ","))
            case .json: break
            }
            guard configuration.store.url != nil || FileManager.default.fileExists(atPath: configuration.store.path) else { return }
            try await withLedger(configuration, write: false) { ledger in
                let exported = Mutex<[(values: [String], invoice: String)]>([])
                try await ledger.forEachDebtorSnapshot(debtor: debtor) { snapshot in
                    let standing = DebtorStanding.compute(invoices: snapshot.invoices, movements: snapshot.movements, on: date)
                    let issued = Dictionary(snapshot.invoices.map { ($0.number, $0.issuedOn) }, uniquingKeysWith: { a, _ in a })
                    for item in standing.items {
                        let last = snapshot.taken[item.id]?.last
                        let status = Self.status(item, last: last, snapshot: snapshot, on: date, handoffStages: handoffStages)
                        if let wanted, wanted != status { continue }
                        let values = [
                            snapshot.debtor.debtor.id, item.id.invoice, item.id.instalment.map(String.init) ?? "", issued[item.id.invoice]?.description ?? "",
                            item.dueOn.description, MinorAmount(units: item.amount, currency: item.currency).text,
                            MinorAmount(units: item.outstanding, currency: item.currency).text, item.currency, status.rawValue, last?.stage ?? "",
                            last?.on.description ?? "",
                        ]
                        if export {
                            let d = snapshot.debtor.debtor
                            exported.withLock { $0.append((values + [d.name, d.kind.rawValue, d.email ?? "", d.phone ?? ""], item.id.invoice)) }
                        } else {
                            Self.emit(values, columns: columns, format: format)
                        }
                    }
                }
                // The hand-off export: each item with every reminder about its invoice.
                for (values, invoice) in exported.withLock({ $0 }) {
                    let history = try await ledger.reminderHistory(invoice: invoice).map { trace in
                        [
                            trace.sentAt.map { Timestamp.format($0) } ?? "not sent", trace.channel, trace.stage, trace.status, trace.recipient ?? "",
                            trace.reminderID,
                        ]
                        .joined(separator: " ")
                    }
                    Self.emit(values + [history.joined(separator: "; ")], columns: columns, format: format)
                }
            }
        }
    }

    static func emit(_ values: [String], columns: [String], format: Format) {
        switch format {
        case .table: print(values.joined(separator: "\t"))
        case .csv: print(values.map(CSVField.quoted).joined(separator: ","))
        case .json: print("{" + zip(columns, values).map { "\(JSONText.string($0)):\(JSONText.string($1))" }.joined(separator: ",") + "}")
        }
    }

    static func status(_ item: ItemStanding, last: TakenStep?, snapshot: DebtorSnapshot, on date: CivilDate, handoffStages: Set<String>) -> Status {
        if let settled = item.settled { return settled.by == .paid ? .paid : .writtenOff }
        if let last, handoffStages.contains(last.stage) { return .handedOff }
        if Planner.activeDispute(snapshot.movements, invoice: item.id.invoice, on: date) != nil { return .disputed }
        if Planner.activeHold(snapshot.movements, invoice: item.id.invoice, on: date) != nil { return .onHold }
        if Planner.activePromise(snapshot.movements, invoice: item.id.invoice, on: date) != nil { return .promised }
        return .open
    }
}

