import Foundation
import RelanceConfig
import RelanceCore
import RelanceStore

/// What would happen to one delivery now, without sending or changing anything.
public struct PreviewItem: Sendable {
    public var key: DeliveryKey
    public var decision: String
    public var willSend: Bool
    public var message: OutgoingMessage?
    public var error: String?
}

/// `relance preview FILE` and `relance serve --dry-run`: render and report, send nothing, change nothing.
public struct Previewer: Sendable {
    public var components: Components
    public var ledger: (any LedgerStore)?
    public var clock: @Sendable () -> Date
    public let policy: PolicyStep

    public init(components: Components, ledger: (any LedgerStore)?, clock: @escaping @Sendable () -> Date) {
        self.components = components
        self.ledger = ledger
        self.clock = clock
        self.policy = PolicyStep(components.configuration)
    }

    /// Opens the ledger read-only when it exists (a dry run never creates one).
    public static func openLedgerIfPresent(_ configuration: RelanceConfiguration) -> Ledger? {
        guard FileManager.default.fileExists(atPath: configuration.store.path) else { return nil }
        return try? Ledger(path: configuration.store.path, readOnly: true)
    }

    /// The decision for one delivery at `now`: expiry, `not_before`, then the policy step
    /// (evaluated at `not_before` when that is later), then cancellations, pauses, holds, opt-outs.
    func decide(
        _ reminder: Reminder, channel: Channel, paid: [String: String], sourceFile: String?, now: Date
    ) async -> (decision: String, willSend: Bool, reminder: Reminder) {
        if let expires = reminder.expiresAt, expires <= now { return ("expired at \(Timestamp.format(expires)): not sent", false, reminder) }
        let at = max(now, reminder.notBefore ?? now)
        let verdict: PolicyStep.Verdict
        do {
            verdict = try await policy.decide(reminder, channel: channel, paid: paid, now: at, ledger: ledger)
        } catch {
            return ("cannot evaluate the policy: \(error)", false, reminder)
        }
        var prefix = ""
        if at > now { prefix = "not before \(Timestamp.format(at)); then " }
        switch verdict {
        case .send(let adjusted):
            if let ledger,
                let blocker = try? await ledger.blocker(
                    for: adjusted, channel: channel, recipient: adjusted.debtor.address(on: channel), sourceFile: sourceFile, now: at)
            {
                return (prefix + blocker + ": not sent", false, adjusted)
            }
            if at > now { return ("deferred until not_before \(Timestamp.format(at)), then send", false, adjusted) }
            return ("send now", true, adjusted)
        case .deferred(let until, let reason):
            if let expires = reminder.expiresAt, until >= expires {
                return (prefix + "would expire: \(reason), past expires_at \(Timestamp.format(expires))", false, reminder)
            }
            return (prefix + reason, false, reminder)
        case .cancel(let reason): return (prefix + reason, false, reminder)
        case .fail(let reason): return ("would FAIL: \(reason)", false, reminder)
        }
    }

    /// The decision and message for each delivery of `reminder` (a file not yet ingested).
    public func items(for reminder: Reminder, sourceFile: String? = nil) async -> [PreviewItem] {
        let now = clock()
        var presence = Ledger.Presence.absent
        if let ledger { presence = (try? await ledger.presence(of: reminder)) ?? .absent }
        var items: [PreviewItem] = []
        for channel in reminder.channels {
            let key = DeliveryKey(reminderID: reminder.id, channel: channel)
            var decision: String
            var willSend = false
            var shown = reminder
            switch presence {
            case .same:
                let status = (try? await ledger?.deliveries(reminderID: reminder.id).first(where: { $0.channel == channel.rawValue })?.status) ?? nil
                decision = "already in the ledger (status \(status ?? "?")): not sent again"
            case .conflict:
                decision = "CONFLICT: the ledger holds a different reminder with this id; the file would be quarantined"
            case .absent:
                let paid = (try? await ledger?.paymentsFor(invoices: reminder.invoices.map(\.number))) ?? [:]
                (decision, willSend, shown) = await decide(reminder, channel: channel, paid: paid, sourceFile: sourceFile, now: now)
            }
            do {
                let message = try components.builder.build(shown, channel: channel, now: max(now, reminder.notBefore ?? now))
                items.append(PreviewItem(key: key, decision: decision, willSend: willSend, message: message))
            } catch {
                items.append(PreviewItem(key: key, decision: "would FAIL: \(error)", willSend: false, message: nil, error: "\(error)"))
            }
        }
        return items
    }

    /// Everything a dry run covers: deliveries already due in the ledger, then the files waiting in
    /// `incoming/` (read in place, never moved).
    public func dryRun(_ report: @escaping @Sendable (String) -> Void) async throws -> (wouldSend: Int, notNow: Int, wouldFail: Int, invalidLines: Int) {
        var wouldSend = 0
        var notNow = 0
        var wouldFail = 0
        var invalid = 0
        let now = clock()
        report("policy evaluated as of \(Timestamp.format(now, in: policy.home))")
        if let ledger {
            for hold in try await ledger.holds(now: now) {
                report(
                    "ON HOLD     \(hold.channel == "*" ? "every channel" : hold.channel)\(hold.until.map { " until " + Timestamp.format($0) } ?? ""): \(hold.reason)"
                )
            }
            for key in try await ledger.dueKeys(now: now) {
                guard let due = try await ledger.pendingDelivery(key) else { continue }
                let source = try await ledger.sourceFile(reminderID: key.reminderID)
                let (decision, willSend, shown) = await decide(due.reminder, channel: key.channel, paid: due.paid, sourceFile: source, now: now)
                guard willSend else {
                    if decision.hasPrefix("would FAIL") {
                        wouldFail += 1
                        report("would FAIL  \(key)  \(decision)")
                    } else {
                        notNow += 1
                        report("not now     \(key)  \(decision)")
                    }
                    continue
                }
                do {
                    let message = try components.builder.build(shown, channel: key.channel, now: now)
                    wouldSend += 1
                    report("would send  \(key)  to \(message.recipient)  (ledger, attempt \(due.attempts + 1))")
                } catch {
                    wouldFail += 1
                    report("would FAIL  \(key)  \(error)")
                }
            }
        }
        for (queue, name) in components.layout.waitingFiles() {
            let path = components.layout.incoming(queue: queue) + "/" + name
            let parsed = components.parser.parse(path: path)
            for error in parsed.errors {
                invalid += 1
                report(
                    "invalid     \(queue)/\(name) line \(error.line)\(error.field.isEmpty ? "" : " field \(error.field)"): \(error.reason) (would be quarantined)"
                )
            }
            for (_, reminder) in parsed.reminders {
                for item in await items(for: reminder, sourceFile: name) {
                    if item.error != nil || item.decision.hasPrefix("would FAIL") {
                        wouldFail += 1
                        report("would FAIL  \(item.key)  \(item.decision)")
                    } else if item.willSend {
                        wouldSend += 1
                        report("would send  \(item.key)  to \(item.message?.recipient ?? "?")  (\(queue)/\(name))")
                    } else {
                        notNow += 1
                        report("not now     \(item.key)  \(item.decision)")
                    }
                }
            }
        }
        return (wouldSend, notNow, wouldFail, invalid)
    }
}
