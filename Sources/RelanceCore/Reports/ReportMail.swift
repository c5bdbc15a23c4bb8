import Foundation

/// The report as an email to the finance team: the page itself as the HTML part (and attached, to
/// open in a browser or keep), the headline figures per currency as the text part.
public enum ReportMail {
    public static func message(
        _ report: ReceivablesReport, html: String, language: ReportHTML.Language, from: Mailbox, to: Mailbox, now: Date
    ) -> MailMessage {
        let t = ReportHTML.Words(language)
        let date = report.options.asOf
        var text = "\(t.title) — \(t.asOf.lowercased()) \(date)\n\n"
        if report.currencies.isEmpty { text += t.empty + "\n" }
        for f in report.currencies {
            let h = f.headline
            text += "\(f.currency)\n"
            text += "  \(t.receivables): \(t.money(h.totals.receivables, f.currency))\n"
            text += "  \(t.overdue): \(t.money(h.totals.overdue, f.currency))\n"
            text += "  \(t.dsoSimple): \(t.days(h.dsoSimple))\n"
            text += "  \(t.bestPossibleDSO): \(t.days(h.bestPossibleDSO))\n"
            text += "  \(t.cei): \(t.number(f.cei).map { $0 + " %" } ?? "—")\n\n"
        }
        text += language == .fr ? "Le rapport complet est joint (rapport-\(date).html).\n" : "The full report is attached (report-\(date).html).\n"
        let name = (language == .fr ? "rapport-" : "report-") + date.description + ".html"
        return MailMessage(
            from: from, to: to, subject: "\(t.title) — \(date)", text: text, html: html,
            attachments: [MailAttachment(filename: name, contentType: "text/html", data: Data(html.utf8))],
            messageID: MIME.messageID(reminderID: "report-\(date)-\(Int(now.timeIntervalSince1970))", channel: "email", domain: EmailAddress.domain(of: from.address)),
            date: now)
    }
}
