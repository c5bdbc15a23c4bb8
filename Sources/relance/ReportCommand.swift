import ArgumentParser
import Foundation
import RelanceConfig
import RelanceDispatch
import RelanceCore
import RelanceStore

/// `relance report`: the state of the receivables and how well they are collected.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Report on the receivables: aging, DSO (simple and countback), best possible DSO, ADD, CEI, a 12-month trend and the top debtors.",
        discussion: """
            Every figure is per currency and as of --as-of (default: today in defaults.timezone), from what is dated on or \
            before it: a report for a past date produced today is the one produced then, unless a movement was back-dated. \
            --format html is one self-contained page (inline CSS and SVG charts, no script, no network), printable on A4, \
            in French or English (--locale); json carries every figure with its definition; csv prints one table per \
            section (summary, aging, trend, top_debtors), each with its header row, separated by an empty line. \
            --mail-to sends the page (inline and attached) with the headline figures as text; the daemon does it on \
            report.schedule to report.mail_to. See docs/reports.md.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case html, json, csv }

    @OptionGroup var options: ConfigOption
    @Option(name: .customLong("as-of"), help: "The report's date: YYYY-MM-DD, or an RFC 3339 instant (its date in defaults.timezone).")
    var asOf: String?
    @Option(help: "The DSO and CEI period, in months (1 to 12).")
    var months = 3
    @Option(help: "Disputed items in the receivables: included or excluded (they are then shown apart).")
    var disputed: ReceivablesReport.Options.Disputed = .included
    @Option(help: "How many debtors the top list keeps, per currency.")
    var top = 20
    @Option(help: "Output format: html, json or csv.")
    var format: Format = .json
    @Option(help: "The language of the HTML report: fr or en (default: defaults.locale).")
    var locale: String?
    @Option(help: "Write the report to this file (atomically) instead of standard output.")
    var out: String?
    @Option(
        name: .customLong("mail-to"),
        help: "Mail the HTML report to this mailbox through the configured email transport (from email.from); nothing is printed unless --out is given.")
    var mailTo: String?

    func validate() throws {
        guard (1...12).contains(months) else { throw ValidationError("--months \(months): between 1 and 12") }
        guard top >= 0 else { throw ValidationError("--top \(top): 0 or more") }
    }

    func run() async throws {
        try await Self.guarded {
            let configuration = try options.resolve().configuration
            let zone = TimeZone(identifier: configuration.defaults.timezone) ?? .gmt
            let date = try parseDay(asOf, option: "--as-of", in: zone)
            let options = ReceivablesReport.Options(asOf: date, months: months, disputed: disputed, top: top, zone: zone)
            // No ledger yet: an empty report.
            let report =
                configuration.store.url != nil || FileManager.default.fileExists(atPath: configuration.store.path)
                ? try await withLedger(configuration, write: false) { ledger in try await ReportRun.build(ledger: ledger, options: options) }
                : try await ReportRun.build(ledger: nil, options: options)
            let language = ReportHTML.Language(locale: locale ?? configuration.report.locale ?? configuration.defaults.locale)
            if let mailTo {
                guard let recipient = Mailbox(parsing: mailTo) else {
                    throw Fail.usage("--mail-to \(mailTo.debugQuoted): not a valid mailbox (Name <address@domain>, or an address)")
                }
                let (outcome, via) = try await ReportRun.mail(
                    report, to: recipient, language: language, configuration: configuration, transports: try Transports.make(configuration), now: Date())
                guard case .sent = outcome else { throw Fail.runtime("the report was not mailed to \(recipient.address) (\(via)): \(outcome.detail)") }
                FileHandle.standardError.write(Data("relance: report as of \(date) mailed to \(recipient.address) via \(via)\n".utf8))
                guard out != nil else { return }
            }
            let text: String
            switch format {
            case .html: text = ReportHTML.render(report, language: language)
            case .json: text = ReportFormat.json(report)
            case .csv: text = ReportFormat.csv(report)
            }
            guard let out else {
                FileHandle.standardOutput.write(Data(text.utf8))
                return
            }
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
            } catch {
                throw Fail.runtime("cannot write the report to \(out): \(error.localizedDescription)")
            }
        }
    }
}

extension ReceivablesReport.Options.Disputed: ExpressibleByArgument {}
