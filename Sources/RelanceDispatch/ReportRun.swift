import Foundation
import RelanceConfig
import RelanceCore
import RelanceStore
import Synchronization

/// One report, as `relance report` and the daemon's `report.schedule` make it: both ledgers read
/// (the receivables one debtor at a time, the delivery statuses counted meanwhile on another
/// reader), and mailed through the configured email transport when asked.
public enum ReportRun {
    public static func build(ledger: (any LedgerStore)?, options: ReceivablesReport.Options) async throws -> ReceivablesReport {
        guard let ledger else { return ReportBuilder(options: options).finish() }
        // With a fitted risk model, the top debtors get their risk and the "to call first" list.
        let builder = Mutex(ReportBuilder(options: options, model: try await ledger.latestScoreModel()?.model))
        // Statuses at the end of the report's day in the creditor's zone.
        let endOfDay = LocalTime.instant(day: options.asOf.dayNumber + 1, minute: 0, in: options.zone).addingTimeInterval(-0.001)
        async let counts = ledger.deliveryCounts(asOf: endOfDay)
        try await ledger.forEachReportSnapshot { snapshot, sent in builder.withLock { $0.add(snapshot, sent: sent) } }
        let deliveries = try await counts
        return builder.withLock { $0.finish(deliveries: deliveries) }
    }

    /// Mails the HTML page to `to` from `email.from`; the transport's outcome, and which one was used.
    public static func mail(
        _ report: ReceivablesReport, to: Mailbox, language: ReportHTML.Language, configuration: RelanceConfiguration, transports: Transports, now: Date
    ) async throws -> (SendOutcome, via: String) {
        // email.from is checked when the configuration is read.
        guard let from = Mailbox(parsing: configuration.email.from) else { return (.permanent(code: nil, detail: "email.from is not a valid mailbox"), "-") }
        let html = ReportHTML.render(report, language: language)
        let message = ReportMail.message(report, html: html, language: language, from: from, to: to, now: now)
        let data = try MIME.compose(message, boundarySeed: "report-\(report.options.asOf)-\(Int(now.timeIntervalSince1970))")
        return await transports.sendEmail(from.address, to.address, data)
    }
}
