import ArgumentParser
import Foundation
import RelanceConfig
import RelanceCore
import RelanceStore

struct Receipts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List receipts: one row per attempt, and one for each delivery that never had one, with the delivery's current status.",
        discussion: """
            A delivery without an attempt (suppressed, cancelled, expired, deferred, failed before sending) has a \
            row with attempt 0 and outcome none. Each row names the stage, the invoices and their amounts. \
            --format json prints one object per line; csv prints its header even when nothing matches. \
            With --reminder (table format), also the deliveries, every gateway callback and every status change.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, json, csv }

    @OptionGroup var options: ConfigOption
    @Option(help: "Only deliveries now in this status (pending, sending, sent, failed, unknown, expired, suppressed, …).")
    var status: String?
    @Option(help: "Only attempts started (or deliveries changed) at or after this RFC 3339 time (e.g. 2026-11-30T00:00:00+01:00).")
    var since: String?
    @Option(help: "Only this reminder.")
    var reminder: String?
    @Option(help: "Only reminders about this invoice number.")
    var invoice: String?
    @Option(help: "Only this debtor's reminders.")
    var debtor: String?
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
            let sinceDate = try parseInstant(since, option: "--since")
            let format = self.format
            // The header first, even when the ledger is empty or absent.
            switch format {
            case .table: print(ReceiptFormat.tableHeader)
            case .csv: print(ReceiptFormat.csvHeader)
            case .json: break
            }
            guard resolved.configuration.store.url != nil || FileManager.default.fileExists(atPath: resolved.configuration.store.path) else {
                if reminder != nil { throw Fail.runtime("no ledger at \(resolved.configuration.store.path) (nothing was ever ingested)") }
                return
            }
            try await withLedger(resolved.configuration, write: false) { ledger in
                let filter = ReceiptFilter(
                    status: statusFilter, since: sinceDate, reminderID: reminder, invoice: invoice, debtorID: debtor, everyDelivery: true)
                try await ledger.receipts(filter) { receipt in
                    switch format {
                    case .table: print(ReceiptFormat.tableRow(receipt))
                    case .csv: print(ReceiptFormat.csvRow(receipt))
                    case .json: print(ReceiptFormat.json(receipt))
                    }
                }
                guard let reminder else { return }
                let deliveries = try await ledger.deliveries(reminderID: reminder)
                if deliveries.isEmpty { throw Fail.runtime("no reminder \(reminder) in the ledger") }
                // One reminder, in a table: its whole history, every gateway callback and every status change.
                guard format == .table else { return }
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
}

enum ReceiptFormat {
    static let columns = [
        "started_at", "reminder_id", "channel", "attempt", "transport", "recipient", "outcome", "code", "status", "stage", "invoices", "amounts",
        "provider_id", "detail",
    ]
    static let csvHeader = columns.joined(separator: ",")
    static let widths = [20, 22, 6, 3, 9, 30, 10, 4, 10, 12]
    static let tableHeader = row(["STARTED", "REMINDER", "CHAN", "#", "TRANSPORT", "RECIPIENT", "OUTCOME", "CODE", "STATUS", "STAGE", "DETAIL"])

    static func row(_ cells: [String]) -> String {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? String(s.prefix(n)) : s + String(repeating: " ", count: n - s.count) }
        return (zip(cells, widths).map { pad($0, $1) } + [String((cells.last ?? "").prefix(120))]).joined(separator: " ")
    }

    static func fields(_ r: Receipt) -> [String] {
        [
            Timestamp.format(r.startedAt), r.reminderID, r.channel, "\(r.attempt)", r.transport, r.recipient, r.outcome, r.code.map(String.init) ?? "",
            r.status, r.stage ?? "", r.invoices.joined(separator: ";"), r.amounts.joined(separator: ";"), r.providerID ?? "", r.detail ?? "",
        ]
    }

    static func tableRow(_ r: Receipt) -> String {
        let f = fields(r)
        return row(Array(f[0..<10]) + [f[13]])
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
