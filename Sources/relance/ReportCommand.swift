import ArgumentParser
import Foundation
import RelanceConfig
import RelanceCore
import RelanceStore
import Synchronization

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
            See docs/reports.md.
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

    func validate() throws {
        guard (1...12).contains(months) else { throw ValidationError("--months \(months): between 1 and 12") }
        guard top >= 0 else { throw ValidationError("--top \(top): 0 or more") }
    }

    func run() async throws {
        try await Self.guarded {
            let configuration = try options.resolve().configuration
            let zone = TimeZone(identifier: configuration.defaults.timezone) ?? .gmt
            let date: CivilDate
            if let asOf, let day = CivilDate(asOf), asOf.utf8.count == 10 {
                date = day
            } else {
                date = CivilDate(try parseInstant(asOf, option: "--as-of") ?? Date(), in: zone)
            }
            let builder = Mutex(ReportBuilder(options: .init(asOf: date, months: months, disputed: disputed, top: top, zone: zone)))
            var deliveries: [(channel: String, status: String, count: Int)] = []
            if FileManager.default.fileExists(atPath: configuration.store.path) {
                let ledger = try existingLedger(configuration)
                // Statuses at the end of the report's day in the creditor's zone, counted on another
                // reader connection while the debtors stream through this one.
                async let counts = ledger.deliveryCounts(asOf: LocalTime.instant(day: date.dayNumber + 1, minute: 0, in: zone).addingTimeInterval(-0.001))
                try await ledger.forEachReportSnapshot { snapshot, sent in builder.withLock { $0.add(snapshot, sent: sent) } }
                deliveries = try await counts
            }
            let report = builder.withLock { $0.finish(deliveries: deliveries) }
            let text: String
            switch format {
            case .html: text = ReportHTML.render(report, language: ReportHTML.Language(locale: locale ?? configuration.defaults.locale))
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
