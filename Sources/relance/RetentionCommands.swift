import ArgumentParser
import Foundation
import RelanceConfig
import RelanceCore
import RelanceSpool
import RelanceStore

struct Purge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Erase personal data past retention.personal_data (default 3 years after a reminder's last event).",
        discussion: """
            Names, addresses, phone numbers and message bodies leave the ledger, the spool's done/ and failed/ \
            files and the outbox; ids, statuses and timestamps stay for statistics. The daemon also runs this \
            once a day (retention.daily). Reminders still waiting, in flight or in doubt are kept.
            """)

    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            let report = try await withLedger(resolved.configuration, write: true, create: true) { ledger in
                try await Retention(configuration: resolved.configuration, ledger: ledger, logger: makeLogger(resolved.configuration)).purge(now: Date())
            }
            print("purged (older than \(resolved.configuration.retention.personalData)): \(report)")
        }
    }
}

struct Forget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Erase one debtor's personal data now (GDPR right to erasure), keeping the anonymous counts.",
        discussion: """
            Their reminders keep their ids, statuses and timestamps; names, addresses, numbers and message \
            bodies leave the ledger, the outbox and the spool's done/ and failed/ files. Pending deliveries of \
            the debtor should be cancelled first (relance cancel --debtor ID): forget refuses while any waits.
            """)

    @OptionGroup var options: ConfigOption
    @Option(help: "The debtor id.") var debtor: String

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            try await withLedger(resolved.configuration, write: true, create: true) { ledger in
                let waiting = try await ledger.reminderIDs(debtorID: debtor).asyncFlatMap { try await ledger.deliveries(reminderID: $0) }
                    .filter { ["pending", "paused", "sending"].contains($0.status) }
                guard waiting.isEmpty else {
                    throw Fail.usage(
                        "debtor \(debtor) still has \(waiting.count) waiting deliveries; cancel them first: relance cancel --debtor \(debtor) --reason other")
                }
                let report = try await Retention(configuration: resolved.configuration, ledger: ledger, logger: makeLogger(resolved.configuration))
                    .forget(debtorID: debtor, now: Date())
                print("debtor \(debtor): \(report)")
            }
        }
    }
}
