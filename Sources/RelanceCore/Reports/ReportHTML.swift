/// A report as one self-contained HTML page: inline CSS and SVG charts, no script, no request to
/// anything (no font, image or style sheet from elsewhere), printable on A4, in French or English.
/// Every text that came from outside (debtor names and ids, invoice numbers) is escaped.
public enum ReportHTML {
    public enum Language: String, Sendable, CaseIterable {
        case fr, en

        /// `fr`, `fr-FR`, `fr_BE`… are French; everything else English.
        public init(locale: String) { self = locale.lowercased().hasPrefix("fr") ? .fr : .en }
    }

    public static func render(_ report: ReceivablesReport, language: Language) -> String {
        let t = Words(language)
        let o = report.options
        var html = """
            <!DOCTYPE html>
            <html lang="\(language.rawValue)">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(t.title) — \(o.asOf)</title>
            <style>\(style)</style>
            </head>
            <body>
            <header><h1>\(t.title)</h1>
            <p>\(t.asOf) <strong>\(o.asOf)</strong> · \(t.period(o.months)) · \(o.disputed == .included ? t.disputedIncluded : t.disputedExcluded)</p></header>

            """
        if report.currencies.isEmpty { html += "<p class=\"empty\">\(t.empty)</p>\n" }
        for figures in report.currencies { html += section(figures, options: o, t) }
        html += channelSection(report, t)
        html += "<footer><p>\(t.definitionsNote)</p><dl>"
        for (key, text) in language == .fr ? ReportFormat.frenchDefinitions(o) : ReportFormat.definitions(o) { html += "<dt>\(escape(key))</dt><dd>\(escape(text))</dd>" }
        html += "</dl></footer>\n</body>\n</html>\n"
        return html
    }

    static func section(_ f: ReceivablesReport.CurrencyFigures, options: ReceivablesReport.Options, _ t: Words) -> String {
        let money = { (units: Int64) in t.money(units, f.currency) }
        let h = f.headline
        var out = "<section class=\"currency\"><h2>\(escape(f.currency))</h2>\n<div class=\"kpis\">"
        let kpis: [(String, String)] = [
            (t.receivables, money(h.totals.receivables)), (t.overdue, money(h.totals.overdue)), (t.dsoSimple, t.days(h.dsoSimple)),
            (t.dsoCountback, (h.countbackBounded ? "≥ " : "") + t.days(h.dsoCountback)), (t.bestPossibleDSO, t.days(h.bestPossibleDSO)),
            (t.add, t.days(h.add)), (t.cei, t.number(f.cei).map { $0 + " %" } ?? "—"),
        ]
        for (label, value) in kpis { out += "<div class=\"kpi\"><span>\(label)</span><strong>\(value)</strong></div>" }
        out += "</div>\n"
        out += Charts.aging(f, t) + Charts.monthEnds(f, t) + Charts.dso(f, t)
        out += "<h3>\(t.agingTitle(options.asOf))</h3><table><thead><tr><th>\(t.bucket)</th><th class=\"n\">\(t.amount)</th><th class=\"n\">\(t.items)</th></tr></thead><tbody>"
        for bucket in ReceivablesReport.Bucket.allCases {
            let a = f.aging[bucket] ?? .init()
            out += "<tr><td>\(t.bucketName(bucket))</td><td class=\"n\">\(money(a.amount))</td><td class=\"n\">\(a.count)</td></tr>"
        }
        out += "</tbody></table>\n"
        out += "<h3>\(t.stagesTable)</h3>"
        if f.stages.isEmpty {
            out += "<p class=\"empty\">\(t.noReminders)</p>\n"
        } else {
            out += Charts.stages(f, t) ?? ""
            out += "<table><thead><tr><th>\(t.stage)</th><th class=\"n\">\(t.reminders)</th><th class=\"n\">\(t.covered)</th>"
            out += "<th class=\"n\">\(t.within(7))</th><th class=\"n\">\(t.within(30))</th><th class=\"n\">\(t.medianDays)</th></tr></thead><tbody>"
            for name in ReceivablesReport.ordered(stages: f.stages.keys) {
                let st = f.stages[name] ?? .init()
                let share = { (w: ReceivablesReport.StageFigures.Window) in
                    t.number(ReportFormat.rate(w)).map { "\($0) % <small>(\(money(w.paid)))</small>" } ?? "—"
                }
                out += "<tr><td>\(escape(name))</td><td class=\"n\">\(st.reminders)</td><td class=\"n\">\(money(st.covered))</td>"
                out += "<td class=\"n\">\(share(st.window7))</td><td class=\"n\">\(share(st.window30))</td><td class=\"n\">\(t.days(st.medianDaysToPayment))</td></tr>"
            }
            out += "</tbody></table>\n"
        }
        if !f.top.isEmpty {
            // The risk column only with a fitted model (relance score --train).
            let withRisk = f.top.contains { $0.risk != nil }
            out += "<h3>\(t.topTitle)</h3><table><thead><tr><th>\(t.debtor)</th><th class=\"n\">\(t.overdue)</th><th>\(t.oldest)</th>"
            out += "<th class=\"n\">\(t.daysPastDue)</th><th>\(t.stage)</th><th>\(t.lastContact)</th>\(withRisk ? "<th class=\"n\">\(t.risk)</th>" : "")</tr></thead><tbody>"
            for d in f.top {
                out += "<tr><td>\(escape(d.name))<br><small>\(escape(d.id))</small></td><td class=\"n\">\(money(d.overdue))</td>"
                out += "<td>\(escape(d.oldest.description))<br><small>\(d.oldestDueOn)</small></td><td class=\"n\">\(d.daysOverdue)</td>"
                out += "<td>\(escape(d.stage ?? "—"))</td><td>\(d.lastContact?.description ?? "—")</td>"
                if withRisk { out += "<td class=\"n\">\(t.number(d.risk.map { $0 * 100 }).map { "\($0) %" } ?? "—")</td>" }
                out += "</tr>"
            }
            out += "</tbody></table>\n"
        }
        if !f.callFirst.isEmpty {
            out += "<h3>\(t.callFirstTitle)</h3><table><thead><tr><th>\(t.debtor)</th><th class=\"n\">\(t.atRisk)</th>"
            out += "<th class=\"n\">\(t.outstanding)</th><th>\(t.riskiest)</th><th class=\"n\">\(t.risk)</th></tr></thead><tbody>"
            for c in f.callFirst {
                out += "<tr><td>\(escape(c.name))<br><small>\(escape(c.id))</small></td><td class=\"n\">\(money(c.atRisk))</td>"
                out += "<td class=\"n\">\(money(c.outstanding))</td><td>\(escape(c.invoice))</td><td class=\"n\">\(t.number(c.risk * 100).map { "\($0) %" } ?? "—")</td></tr>"
            }
            out += "</tbody></table>\n"
        }
        return out + "</section>\n"
    }

    static func channelSection(_ report: ReceivablesReport, _ t: Words) -> String {
        guard !report.channels.isEmpty || !report.unmatchedReminders.isEmpty else { return "" }
        var out = "<section class=\"channels\"><h2>\(t.channelsTable)</h2>\n" + (Charts.channels(report.channels, t) ?? "")
        let statuses = DeliveryStatus.allCases.map(\.rawValue).filter { s in report.channels.contains { $0.statuses[s] != nil } }
        out += "<table><thead><tr><th>\(t.channel)</th>" + statuses.map { "<th class=\"n\">\(t.status($0))</th>" }.joined()
        out += "<th class=\"n\">\(t.deliveryRate)</th><th class=\"n\">\(t.bounceRate)</th><th class=\"n\">\(t.optOutRate)</th></tr></thead><tbody>"
        for c in report.channels {
            out += "<tr><td>\(escape(c.channel))</td>" + statuses.map { "<td class=\"n\">\(c.statuses[$0] ?? 0)</td>" }.joined()
            for rate in [c.deliveryRate, c.bounceRate, c.optOutRate] { out += "<td class=\"n\">\(t.number(rate).map { "\($0) %" } ?? "—")</td>" }
            out += "</tr>"
        }
        out += "</tbody></table>\n"
        if !report.channelsByStage.isEmpty {
            // Per stage: how many left, and the rates (a final notice that bounces matters more than a courtesy reminder).
            out += "<table class=\"by-stage\"><thead><tr><th>\(t.channel)</th><th>\(t.stage)</th><th class=\"n\">\(t.left)</th>"
            out += "<th class=\"n\">\(t.deliveryRate)</th><th class=\"n\">\(t.bounceRate)</th><th class=\"n\">\(t.optOutRate)</th></tr></thead><tbody>"
            for c in report.channelsByStage {
                out += "<tr><td>\(escape(c.channel))</td><td>\(escape(c.stage ?? ""))</td><td class=\"n\">\(c.left)</td>"
                for rate in [c.deliveryRate, c.bounceRate, c.optOutRate] { out += "<td class=\"n\">\(t.number(rate).map { "\($0) %" } ?? "—")</td>" }
                out += "</tr>"
            }
            out += "</tbody></table>\n"
        }
        if !report.unmatchedReminders.isEmpty {
            let list = ReceivablesReport.ordered(stages: report.unmatchedReminders.keys).map { "\(escape($0)) \(report.unmatchedReminders[$0] ?? 0)" }
            out += "<p>\(t.unmatched): \(list.joined(separator: ", "))</p>\n"
        }
        return out + "</section>\n"
    }

    /// Text and attribute values, escaped for HTML.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters (CR, LF, NUL…) have no place in a cell: shown as a space.
                out.unicodeScalars.append(c.value < 0x20 || c.value == 0x7F ? " " : c)
            }
        }
        return out
    }

    static let style = """
        :root{color-scheme:light;font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;color:#1a1a1a}
        body{max-width:1000px;margin:0 auto;padding:16px;font-size:14px;line-height:1.4}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;border-bottom:2px solid #1a1a1a;padding-bottom:2px;margin-top:24px}h3{font-size:15px;margin:16px 0 6px}
        header p{margin:0;color:#444}.empty{font-style:italic}
        .kpis{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}
        .kpi{border:1px solid #999;border-radius:4px;padding:6px 10px;min-width:120px}.kpi span{display:block;font-size:12px;color:#444}.kpi strong{font-size:17px}
        figure{margin:12px 0;break-inside:avoid;page-break-inside:avoid}figcaption{font-weight:bold;margin-bottom:4px}
        svg{display:block;width:100%;height:auto;max-width:100%}svg text{font-size:11px;fill:#1a1a1a}
        table{border-collapse:collapse;width:100%;break-inside:auto;margin-bottom:8px}th,td{border-bottom:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
        th{background:#eee}.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}small{color:#555}
        footer{margin-top:24px;font-size:12px;color:#333}dt{font-weight:bold;margin-top:4px}dd{margin:0 0 0 12px}
        @page{size:A4;margin:14mm}
        @media print{body{max-width:none;padding:0;font-size:11px}section.currency{break-before:auto}h2{break-after:avoid}tr{break-inside:avoid}}
        """
}
