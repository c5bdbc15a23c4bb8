import Foundation

extension ReportHTML {
    /// The report's words and number formats in one language. Numbers are formatted here, not by
    /// the platform's locale data, so that the same report gives the same page everywhere.
    struct Words {
        let language: Language

        init(_ language: Language) { self.language = language }

        private func pick(_ fr: String, _ en: String) -> String { language == .fr ? fr : en }

        var title: String { pick("Relance — état des créances", "Relance — receivables report") }
        var asOf: String { pick("Au", "As of") }
        func period(_ months: Int) -> String { pick("période de \(months) mois", "\(months)-month period") }
        var disputedIncluded: String { pick("litiges inclus", "disputed items included") }
        var disputedExcluded: String { pick("litiges exclus", "disputed items excluded") }
        var empty: String { pick("Aucune créance dans le registre.", "No receivables in the ledger.") }
        var definitionsNote: String {
            pick("Définitions (les clés sont celles de l'export JSON) :", "Definitions (the same as in the JSON export):")
        }
        var receivables: String { pick("Encours", "Receivables") }
        var current: String { pick("Non échu", "Current") }
        var overdue: String { pick("Échu", "Overdue") }
        var dsoSimple: String { pick("DSO (simple)", "DSO (simple)") }
        var dsoCountback: String { pick("DSO (countback)", "DSO (countback)") }
        var bestPossibleDSO: String { pick("Meilleur DSO possible", "Best possible DSO") }
        var add: String { pick("Retard moyen (ADD)", "Days delinquent (ADD)") }
        var cei: String { pick("Efficacité du recouvrement (CEI)", "Collection effectiveness (CEI)") }
        func agingTitle(_ date: CivilDate) -> String { pick("Balance âgée au \(date)", "Aging on \(date)") }
        var monthEndsTitle: String { pick("Encours aux fins de mois : non échu et échu", "Receivables at month ends: current and overdue") }
        var dsoTitle: String { pick("DSO et meilleur DSO possible aux fins de mois", "DSO and best possible DSO at month ends") }
        var topTitle: String { pick("Principaux débiteurs par montant échu", "Top debtors by overdue amount") }
        var stagesTitle: String { pick("Recouvrement par étape : montant couvert, payé sous 7 et sous 30 jours", "Recovery per stage: amount covered, paid within 7 and within 30 days") }
        var channelsTitle: String { pick("Sort des envois par canal", "Deliveries per channel, by outcome") }
        var stagesTable: String { pick("Recouvrement par étape", "Recovery per stage") }
        var channelsTable: String { pick("Envois par canal et statut", "Deliveries per channel and status") }
        var noReminders: String { pick("Aucune relance partie à cette date.", "No reminder had gone out by this date.") }
        var reminders: String { pick("Relances", "Reminders") }
        var covered: String { pick("Montant couvert", "Amount covered") }
        var medianDays: String { pick("Délai médian de paiement", "Median days to payment") }
        var channel: String { pick("Canal", "Channel") }
        var deliveryRate: String { pick("Taux de remise", "Delivery rate") }
        var bounceRate: String { pick("Taux d'échec", "Bounce rate") }
        var left: String { pick("Partis", "Left") }
        var risk: String { pick("Risque de retard", "Risk of paying late") }
        var callFirstTitle: String { pick("À appeler en premier (montant attendu en retard)", "To call first (money expected late)") }
        var atRisk: String { pick("Attendu en retard", "Expected late") }
        var outstanding: String { pick("Restant dû", "Outstanding") }
        var riskiest: String { pick("Facture la plus risquée", "Riskiest invoice") }
        var optOutRate: String { pick("Taux d'opposition", "Opt-out rate") }
        var unmatched: String { pick("Relances sur des factures absentes du registre des créances", "Reminders about invoices the receivables ledger does not know") }
        func within(_ days: Int) -> String { pick("payé sous \(days) jours", "paid within \(days) days") }

        func status(_ status: String) -> String {
            guard language == .fr else { return status }
            return [
                "pending": "en attente", "paused": "suspendu", "sending": "en cours", "unknown": "incertain", "cancelled": "annulé", "expired": "expiré",
                "suppressed": "opposition", "failed": "échec", "undelivered": "non remis", "bounced": "rejeté", "sent": "envoyé", "delivered": "remis",
            ][status] ?? status
        }

        /// The legend of a group of statuses (named by its first one).
        func statusGroup(_ first: String) -> String {
            switch first {
            case "pending": pick("en attente ou incertain", "waiting or in doubt")
            case "cancelled": pick("annulé, expiré, opposition", "cancelled, expired, opted out")
            case "failed": pick("échec, non remis, rejeté", "failed, undelivered, bounced")
            case "sent": pick("envoyé (sans accusé)", "sent (no report)")
            default: pick("remis", "delivered")
            }
        }

        var bucket: String { pick("Tranche", "Bucket") }
        var amount: String { pick("Montant", "Amount") }
        var items: String { pick("Pièces", "Items") }
        var debtor: String { pick("Débiteur", "Debtor") }
        var oldest: String { pick("Plus ancienne pièce", "Oldest item") }
        var daysPastDue: String { pick("Jours de retard", "Days past due") }
        var stage: String { pick("Étape", "Stage") }
        var lastContact: String { pick("Dernier contact", "Last contact") }
        var daysUnit: String { pick("jours", "days") }
        var noFigure: String { pick("pas de ventes sur la période", "no sales in the period") }

        func bucketName(_ bucket: ReceivablesReport.Bucket) -> String {
            switch bucket {
            case .notDue: pick("Non échu", "Not due")
            case .days1to30: pick("1 à 30 jours", "1–30 days")
            case .days31to60: pick("31 à 60 jours", "31–60 days")
            case .days61to90: pick("61 à 90 jours", "61–90 days")
            case .over90: pick("Plus de 90 jours", "Over 90 days")
            }
        }

        /// `19 000,00 EUR` (French, narrow no-break spaces) or `19,000.00 EUR`.
        func money(_ units: Int64, _ currency: String) -> String {
            let text = MinorAmount(units: units, currency: currency).text
            let negative = text.hasPrefix("-")
            let unsigned = negative ? String(text.dropFirst()) : text
            let parts = unsigned.split(separator: ".", maxSplits: 1)
            let integer = Array(parts[0])
            var grouped = ""
            for (i, c) in integer.enumerated() {
                if i > 0 && (integer.count - i) % 3 == 0 { grouped += language == .fr ? "\u{202F}" : "," }
                grouped.append(c)
            }
            let decimals = parts.count > 1 ? (language == .fr ? "," : ".") + parts[1] : ""
            return (negative ? "−" : "") + grouped + decimals + "\u{00A0}" + currency
        }

        /// One decimal, with the language's decimal mark; nil for no figure.
        func number(_ x: Double?) -> String? {
            guard let x else { return nil }
            let text = ReportFormat.text(x)
            return text.isEmpty ? nil : (language == .fr ? text.replacingOccurrences(of: ".", with: ",") : text)
        }

        func days(_ x: Double?) -> String { number(x).map { "\($0) \(daysUnit)" } ?? "—" }

        /// A month end as an axis label: `2026-03`.
        func month(_ date: CivilDate) -> String { String(date.description.prefix(7)) }

        /// An amount on an axis: `12 k`, `2,5 M`, `1,2 Md` / `1.2 bn` (major units).
        func compact(_ units: Int64, _ currency: String) -> String {
            let major = MinorAmount(units: units, currency: currency).major
            let (value, suffix): (Double, String) =
                abs(major) >= 1_000_000_000
                ? (major / 1_000_000_000, pick(" Md", " bn"))
                : abs(major) >= 1_000_000 ? (major / 1_000_000, " M") : abs(major) >= 1000 ? (major / 1000, " k") : (major, "")
            let rounded = (value * 10).rounded() / 10
            let text = rounded == rounded.rounded() ? String(Int64(rounded)) : (number(rounded) ?? "0")
            return text + suffix
        }
    }
}
