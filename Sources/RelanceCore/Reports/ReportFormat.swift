import Foundation

/// A report as JSON (every figure with its definition) and as CSV (one table per section, each
/// with its header row, tables separated by an empty line). Both are deterministic: the same
/// report gives the same bytes (keys in a fixed order, ratios with one decimal).
public enum ReportFormat {
    /// What each figure means, in French, for the French page (the JSON keeps the English ones).
    public static func frenchDefinitions(_ options: ReceivablesReport.Options) -> [(key: String, text: String)] {
        let disputed =
            options.disputed == .included
            ? "les pièces en litige sont comptées dans l'encours (variante « included », comme Upflow)"
            : "les pièces en litige sont exclues de l'encours (variante « excluded », comme Agicap) et montrées à part"
        return [
            ("receivables", "encours : le reste dû sur chaque pièce d'une facture émise au plus tard à la date, après les paiements, avoirs et passages en perte datés au plus tard de ce jour ; \(disputed)"),
            ("current", "non échu : la part de l'encours dont l'échéance est ce jour ou plus tard"),
            ("overdue", "échu : la part de l'encours dont l'échéance est passée"),
            ("aging", "balance âgée : l'encours du jour par jours de retard (non échu, 1-30, 31-60, 61-90, plus de 90), en montant et en nombre de pièces (factures ou échéances)"),
            ("credit_sales", "ventes à crédit : le montant des factures émises sur la période (les avoirs ne sont pas déduits : ils soldent l'encours)"),
            ("period", "les \(options.months) mois finissant à la date, comptés de mois en mois, jour pour jour (une fin de mois mène à la fin de mois)"),
            ("dso_simple", "DSO simple : encours en fin de période / ventes à crédit de la période x jours de la période"),
            ("dso_countback", "DSO countback (méthode par épuisement) : l'encours est imputé sur les ventes de chaque mois, du plus récent au plus ancien ; un mois dont les ventes sont dépassées compte entier, le premier qui ne l'est pas compte pour la fraction reste / ses ventes de ses jours ; au plus \(CollectionMetrics.countbackLimit) mois (dso_countback_bounded : le chiffre est un minimum)"),
            ("best_possible_dso", "meilleur DSO possible : encours non échu en fin de période / ventes à crédit de la période x jours de la période"),
            ("add", "retard moyen (ADD) : DSO simple - meilleur DSO possible"),
            ("cei", "indice d'efficacité du recouvrement (CEI) : (encours en début de période + ventes à crédit - encours en fin de période) / (encours en début de période + ventes à crédit - encours non échu en fin de période) x 100"),
            ("trend", "encours, échu et DSO à chacune des 12 dernières fins de mois jusqu'à la date, chacun sur la période qui la précède"),
            ("recovery_per_stage", "par étape de relance, les relances parties (envoyées, ou incertaines) à la date, comptées au jour où la première est partie (fuseau du créancier) : montant couvert = le reste dû sur leurs factures à la fin de ce jour ; payé sous 7 (30) jours = ce que ce reste dû a perdu dans les 7 (30) jours suivant ce jour (paiements et avoirs datés après lui ; un passage en perte n'est pas un paiement), sur les relances dont les 7 (30) jours sont écoulés ; délai médian = de ce jour au paiement qui a soldé la dernière de leurs factures, pour les relances dont toutes les factures sont payées ; une relance sur des factures inconnues du registre des créances n'est comptée que dans unmatched_reminders"),
            ("channels", "envois par canal et statut à la fin de la date (d'après leurs événements) ; partis = envoyés + remis + non remis + rejetés ; taux de remise = remis / partis ; taux d'échec = (rejetés + non remis) / partis ; taux d'opposition = opposition / tous les envois ; en pourcentage"),
            ("channels_by_stage", "les mêmes envois par canal et par étape de relance, avec leurs taux"),
            ("top_debtors", "les \(options.top) débiteurs au plus fort montant échu, par devise ; étape et dernier contact : la dernière relance partie (du spool ou du plan) ou étape du plan (une remise au contentieux), au plus tard à la date"),
            ("call_first", "avec un modèle de risque ajusté (relance score) : les débiteurs au plus fort montant attendu en retard (somme, sur leurs postes ouverts, de la probabilité de paiement en retard × le restant dû) ; risque : la plus forte probabilité de retard de leurs postes ouverts, en pourcentage (aussi dans top_debtors)"),
        ]
    }

    /// What each figure means, as printed in every report.
    public static func definitions(_ options: ReceivablesReport.Options) -> [(key: String, text: String)] {
        let disputed =
            options.disputed == .included
            ? "disputed items are counted in the receivables (variant \"included\", as Upflow does)"
            : "disputed items are left out of the receivables (variant \"excluded\", as Agicap does); their outstanding is shown apart"
        return [
            ("receivables", "outstanding on every item of an invoice issued on or before the date, after the payments, credit notes and write-offs dated on or before it; \(disputed)"),
            ("current", "the part of the receivables not due yet (due on or after the date)"),
            ("overdue", "the part of the receivables past its due date"),
            ("aging", "receivables on the report's date by days past due: not due, 1-30, 31-60, 61-90, over 90; amount and number of items (invoices or instalments)"),
            ("credit_sales", "amounts of the invoices issued in the period (credit notes are not deducted: they settle receivables)"),
            ("period", "the \(options.months) month(s) ending on the date: month windows back from it, day for day (a month end goes to the month end)"),
            ("dso_simple", "receivables at the end of the period / credit sales of the period x days of the period"),
            ("dso_countback", "receivables matched against each month's credit sales, most recent first: a month whose sales are exceeded counts whole, the first that is not counts for the fraction receivables left / its sales of its days; at most \(CollectionMetrics.countbackLimit) months (dso_countback_bounded: the figure is a lower bound)"),
            ("best_possible_dso", "current receivables at the end of the period / credit sales of the period x days of the period"),
            ("add", "average days delinquent: dso_simple - best_possible_dso"),
            ("cei", "collection effectiveness index: (receivables at the start + credit sales - receivables at the end) / (receivables at the start + credit sales - current receivables at the end) x 100"),
            ("trend", "receivables, overdue and DSO at each of the last 12 month ends on or before the report's date, each over the period before it"),
            ("recovery_per_stage", "per dunning stage, the reminders that reached a transport (sent, or in doubt) by the date, counted on the day the first one left (creditor's zone): covered = what was outstanding on their invoices at the end of that day; paid within 7 (30) days = what the outstanding lost in the 7 (30) days after that day (payments and credit notes dated after it; write-offs are not payments), over the reminders whose 7 (30) days are over; median days to payment = from that day to the payment that settled the last of their invoices, for the reminders whose invoices were all paid; a reminder about invoices the receivables ledger does not know is counted in unmatched_reminders only"),
            ("channels", "deliveries per channel by status at the end of the date (from their recorded events); left = sent + delivered + undelivered + bounced; delivery_rate = delivered / left; bounce_rate = (bounced + undelivered) / left; opt_out_rate = suppressed / every delivery; percentages"),
            ("channels_by_stage", "the same deliveries per channel and dunning stage, with their rates"),
            ("top_debtors", "the \(options.top) debtors with the largest overdue amount, per currency; stage and last_contact: the last reminder that reached a transport (from the spool or the plan) or step the plan took (a hand-off), on or before the date"),
            ("call_first", "with a fitted risk model (relance score): the debtors with the most money expected late (the sum, over their open items, of P(paid late) × outstanding); risk: the highest P(paid late) of their open items, in percent (in top_debtors too)"),
        ]
    }

    // MARK: JSON

    public static func json(_ report: ReceivablesReport) -> String {
        let o = report.options
        var out = "{\"as_of\":\(q(o.asOf.description)),\"months\":\(o.months),\"disputed\":\(q(o.disputed.rawValue)),\"definitions\":{"
        out += definitions(o).map { "\(q($0.key)):\(q($0.text))" }.joined(separator: ",")
        out += "},\"currencies\":["
        out += report.currencies.map { json($0, months: o.months) }.joined(separator: ",")
        let channel = { (c: ReceivablesReport.ChannelFigures) -> String in
            let statuses = c.statuses.keys.sorted().map { "\(q($0)):\(c.statuses[$0] ?? 0)" }.joined(separator: ",")
            return "{\"channel\":\(q(c.channel)),\(c.stage.map { "\"stage\":\(q($0))," } ?? "")\"statuses\":{\(statuses)},\"total\":\(c.total),\"left\":\(c.left),"
                + "\"delivery_rate\":\(number(c.deliveryRate)),\"bounce_rate\":\(number(c.bounceRate)),\"opt_out_rate\":\(number(c.optOutRate))}"
        }
        out += "],\"channels\":[" + report.channels.map(channel).joined(separator: ",")
        out += "],\"channels_by_stage\":[" + report.channelsByStage.map(channel).joined(separator: ",")
        out += "],\"unmatched_reminders\":{" + report.unmatchedReminders.keys.sorted().map { "\(q($0)):\(report.unmatchedReminders[$0] ?? 0)" }.joined(separator: ",")
        return out + "}}\n"
    }

    static func json(_ f: ReceivablesReport.CurrencyFigures, months: Int) -> String {
        let money = { (units: Int64) in q(MinorAmount(units: units, currency: f.currency).text) }
        let h = f.headline
        var out = "{\"currency\":\(q(f.currency)),"
        out += totals(h.totals, money) + ","
        out += "\"aging\":[" + ReceivablesReport.Bucket.allCases.map { b in
            let a = f.aging[b] ?? .init()
            return "{\"bucket\":\(q(b.rawValue)),\"amount\":\(money(a.amount)),\"count\":\(a.count)}"
        }.joined(separator: ",") + "],"
        out += "\"period\":{\"from\":\(q(h.date.addingMonths(-months).description)),\"to\":\(q(h.date.description)),\"days\":\(h.days),"
        out += "\"credit_sales\":\(money(h.sales)),\"receivables_at_start\":\(money(f.start.receivables)),\"current_at_start\":\(money(f.start.current))},"
        out += collectionFigures(h) + ",\"cei\":\(number(f.cei)),"
        out += "\"trend\":[" + f.trend.map { c in
            "{\"date\":\(q(c.date.description))," + totals(c.totals, money) + ",\"credit_sales\":\(money(c.sales))," + collectionFigures(c) + "}"
        }.joined(separator: ",") + "],"
        out += "\"stages\":[" + ReceivablesReport.ordered(stages: f.stages.keys).map { name in
            let st = f.stages[name] ?? .init()
            func window(_ w: ReceivablesReport.StageFigures.Window) -> String {
                "{\"reminders\":\(w.reminders),\"covered\":\(money(w.covered)),\"paid\":\(money(w.paid)),\"rate\":\(number(rate(w)))}"
            }
            return "{\"stage\":\(q(name)),\"reminders\":\(st.reminders),\"covered\":\(money(st.covered)),\"paid_within_7_days\":\(window(st.window7)),"
                + "\"paid_within_30_days\":\(window(st.window30)),\"median_days_to_payment\":\(number(st.medianDaysToPayment))}"
        }.joined(separator: ",") + "],"
        out += "\"top_debtors\":[" + f.top.map { d in
            "{\"debtor\":\(q(d.id)),\"name\":\(q(d.name)),\"overdue\":\(money(d.overdue)),\"oldest_invoice\":\(q(d.oldest.invoice)),"
                + "\"oldest_instalment\":\(d.oldest.instalment.map(String.init) ?? "null"),\"oldest_due_on\":\(q(d.oldestDueOn.description)),"
                + "\"days_overdue\":\(d.daysOverdue),\"stage\":\(d.stage.map(q) ?? "null"),\"last_contact\":\(d.lastContact.map { q($0.description) } ?? "null"),"
                + "\"risk\":\(number(d.risk.map { $0 * 100 }))}"
        }.joined(separator: ",") + "],"
        out += "\"call_first\":[" + f.callFirst.map { c in
            "{\"debtor\":\(q(c.id)),\"name\":\(q(c.name)),\"at_risk\":\(money(c.atRisk)),\"outstanding\":\(money(c.outstanding)),"
                + "\"riskiest_invoice\":\(q(c.invoice)),\"risk\":\(number(c.risk * 100))}"
        }.joined(separator: ",") + "]"
        return out + "}"
    }

    static func totals(_ t: ReceivablesReport.Totals, _ money: (Int64) -> String) -> String {
        "\"receivables\":\(money(t.receivables)),\"current\":\(money(t.current)),\"overdue\":\(money(t.overdue)),\"disputed\":\(money(t.disputed))"
    }

    static func collectionFigures(_ c: ReceivablesReport.Collection) -> String {
        "\"dso_simple\":\(number(c.dsoSimple)),\"dso_countback\":\(number(c.dsoCountback)),\"dso_countback_bounded\":\(c.countbackBounded),"
            + "\"best_possible_dso\":\(number(c.bestPossibleDSO)),\"add\":\(number(c.add))"
    }

    /// Paid ÷ covered, in percent.
    public static func rate(_ w: ReceivablesReport.StageFigures.Window) -> Double? {
        w.covered > 0 ? Double(w.paid) / Double(w.covered) * 100 : nil
    }

    // MARK: CSV

    public static func csv(_ report: ReceivablesReport) -> String {
        var tables: [[[String]]] = []
        let money = { (units: Int64, currency: String) in MinorAmount(units: units, currency: currency).text }
        var summary = [["section", "currency", "as_of", "months", "disputed", "receivables", "current", "overdue", "disputed_amount", "credit_sales",
                        "days", "dso_simple", "dso_countback", "dso_countback_bounded", "best_possible_dso", "add", "cei"]]
        var aging = [["section", "currency", "bucket", "amount", "count"]]
        var trend = [["section", "currency", "date", "receivables", "current", "overdue", "credit_sales", "dso_simple", "dso_countback", "best_possible_dso", "add"]]
        var top = [
            ["section", "currency", "debtor", "name", "overdue", "oldest_invoice", "oldest_instalment", "oldest_due_on", "days_overdue", "stage", "last_contact", "risk"]
        ]
        var calls = [["section", "currency", "debtor", "name", "at_risk", "outstanding", "riskiest_invoice", "risk"]]
        var stages = [["section", "currency", "stage", "reminders", "covered", "reminders_7d", "covered_7d", "paid_7d", "rate_7d", "reminders_30d",
                       "covered_30d", "paid_30d", "rate_30d", "median_days_to_payment"]]
        let o = report.options
        for f in report.currencies {
            for name in ReceivablesReport.ordered(stages: f.stages.keys) {
                let st = f.stages[name] ?? .init()
                let c = f.currency
                stages.append([
                    "stages", c, name, String(st.reminders), money(st.covered, c), String(st.window7.reminders), money(st.window7.covered, c),
                    money(st.window7.paid, c), text(rate(st.window7)), String(st.window30.reminders), money(st.window30.covered, c),
                    money(st.window30.paid, c), text(rate(st.window30)), text(st.medianDaysToPayment),
                ])
            }
            let (h, c) = (f.headline, f.currency)
            summary.append([
                "summary", c, o.asOf.description, String(o.months), o.disputed.rawValue, money(h.totals.receivables, c), money(h.totals.current, c),
                money(h.totals.overdue, c), money(h.totals.disputed, c), money(h.sales, c), String(h.days), text(h.dsoSimple), text(h.dsoCountback),
                String(h.countbackBounded), text(h.bestPossibleDSO), text(h.add), text(f.cei),
            ])
            for b in ReceivablesReport.Bucket.allCases {
                let a = f.aging[b] ?? .init()
                aging.append(["aging", c, b.rawValue, money(a.amount, c), String(a.count)])
            }
            for p in f.trend {
                trend.append([
                    "trend", c, p.date.description, money(p.totals.receivables, c), money(p.totals.current, c), money(p.totals.overdue, c), money(p.sales, c),
                    text(p.dsoSimple), text(p.dsoCountback), text(p.bestPossibleDSO), text(p.add),
                ])
            }
            for d in f.top {
                top.append([
                    "top_debtors", c, d.id, d.name, money(d.overdue, c), d.oldest.invoice, d.oldest.instalment.map(String.init) ?? "",
                    d.oldestDueOn.description, String(d.daysOverdue), d.stage ?? "", d.lastContact?.description ?? "",
                    text(d.risk.map { $0 * 100 }),
                ])
            }
            for call in f.callFirst {
                calls.append(["call_first", c, call.id, call.name, money(call.atRisk, c), money(call.outstanding, c), call.invoice, text(call.risk * 100)])
            }
        }
        var channels = [["section", "channel", "status", "count"]]
        for c in report.channels {
            for status in c.statuses.keys.sorted() { channels.append(["channels", c.channel, status, String(c.statuses[status] ?? 0)]) }
        }
        var byStage = [["section", "channel", "stage", "status", "count"]]
        for c in report.channelsByStage {
            for status in c.statuses.keys.sorted() { byStage.append(["channels_by_stage", c.channel, c.stage ?? "", status, String(c.statuses[status] ?? 0)]) }
        }
        tables = [summary, aging, trend, top, stages, channels, byStage, calls]
        return tables.map { rows in rows.map { $0.map(CSVField.quoted).joined(separator: ",") + "\n" }.joined() }.joined(separator: "\n")
    }

    // MARK: Numbers

    /// One decimal, half away from zero; `null` for no figure.
    static func number(_ x: Double?) -> String { x.map(text) ?? "null" }

    static func text(_ x: Double?) -> String {
        guard let x, x.isFinite else { return "" }
        let tenths = Int64((x * 10).rounded(.toNearestOrAwayFromZero))
        return (tenths < 0 ? "-" : "") + String(tenths.magnitude / 10) + "." + String(tenths.magnitude % 10)
    }

    static func q(_ s: String) -> String { JSONText.string(s) }
}

/// RFC 4180 fields.
public enum CSVField {
    /// The field, quoted when it holds a comma, a quote, CR or LF (quotes doubled).
    public static func quoted(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
