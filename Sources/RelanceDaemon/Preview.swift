import Foundation
import RelanceCore
import RelanceStore
import Synchronization

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
    public var ledger: Ledger?
    public var clock: @Sendable () -> Date

    public init(components: Components, ledger: Ledger?, clock: @escaping @Sendable () -> Date) {
        self.components = components
        self.ledger = ledger
        self.clock = clock
    }

    /// Opens the ledger read-only when it exists (a dry run never creates one).
    public static func openLedgerIfPresent(_ configuration: RelanceConfiguration) -> Ledger? {
        guard FileManager.default.fileExists(atPath: configuration.store.path) else { return nil }
        return try? Ledger(path: configuration.store.path, readOnly: true)
    }

    /// The decision and message for each delivery of `reminder`.
    public func items(for reminder: Reminder) async -> [PreviewItem] {
        let now = clock()
        var presence = Ledger.Presence.absent
        if let ledger { presence = (try? await ledger.presence(of: reminder)) ?? .absent }
        var items: [PreviewItem] = []
        for channel in reminder.channels {
            let key = DeliveryKey(reminderID: reminder.id, channel: channel)
            var decision = "send now"
            var willSend = true
            switch presence {
            case .same:
                let status = (try? await ledger?.deliveries(reminderID: reminder.id).first(where: { $0.channel == channel.rawValue })?.status) ?? nil
                decision = "already in the ledger (status \(status ?? "?")): not sent again"
                willSend = false
            case .conflict:
                decision = "CONFLICT: the ledger holds a different reminder with this id; the file would be quarantined"
                willSend = false
            case .absent:
                if let expires = reminder.expiresAt, expires <= now {
                    decision = "expired at \(Timestamp.format(expires)): not sent"
                    willSend = false
                } else if let notBefore = reminder.notBefore, notBefore > now {
                    decision = "deferred until not_before \(Timestamp.format(notBefore))"
                }
            }
            do {
                let message = try components.builder.build(reminder, channel: channel, now: now)
                items.append(PreviewItem(key: key, decision: decision, willSend: willSend, message: message))
            } catch {
                items.append(PreviewItem(key: key, decision: "would FAIL: \(error)", willSend: false, message: nil, error: "\(error)"))
            }
        }
        return items
    }

    /// Everything a dry run covers: deliveries already due in the ledger, then the files waiting in
    /// `incoming/` (read in place, never moved).
    public func dryRun(_ report: @escaping @Sendable (String) -> Void) async throws -> (wouldSend: Int, wouldFail: Int, invalidLines: Int) {
        var wouldSend = 0
        var wouldFail = 0
        var invalid = 0
        let now = clock()
        if let ledger {
            let builder = components.builder
            let counts = Mutex((send: 0, fail: 0))
            try await ledger.forEachDue(now: now) { due in
                do {
                    let message = try builder.build(due.reminder, channel: due.key.channel, now: now)
                    counts.withLock { $0.send += 1 }
                    report("would send  \(due.key)  to \(message.recipient)  (ledger, attempt \(due.attempts + 1))")
                } catch {
                    counts.withLock { $0.fail += 1 }
                    report("would FAIL  \(due.key)  \(error)")
                }
            }
            (wouldSend, wouldFail) = counts.withLock { ($0.send, $0.fail) }
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
                for item in await items(for: reminder) {
                    if item.error != nil {
                        wouldFail += 1
                        report("would FAIL  \(item.key)  \(item.decision)")
                    } else if item.willSend && item.decision == "send now" {
                        wouldSend += 1
                        report("would send  \(item.key)  to \(item.message?.recipient ?? "?")  (\(queue)/\(name))")
                    } else {
                        report("not now     \(item.key)  \(item.decision)")
                    }
                }
            }
        }
        return (wouldSend, wouldFail, invalid)
    }
}
