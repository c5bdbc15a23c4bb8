import Foundation
import Logging
import RelanceConfig
import RelanceCore
import RelanceStore
import RelanceTransport

/// What `delivery.in_doubt: resend` does with a delivery found in doubt after a crash or a lapsed
/// claim (its node stopped, froze or was cut off mid-send): resend it, but ask the provider first
/// where it can be asked. Pure: the answer is given.
public enum InDoubtCheck {
    public enum Verdict: Sendable, Equatable {
        /// It did not go out, or nobody can say: back to pending (what `resend` asks for).
        case resend(reason: String)
        /// The provider says it went out: recorded as sent, not sent again.
        case sent(reason: String)
        /// The provider could not be asked: left in doubt, for `relance resolve`.
        case keep(reason: String)
    }

    /// The provider's answer about the recipient since the attempt started: nil when it has no
    /// API to ask (an SMTP relay, a generic gateway). The reasons go into the ledger's events:
    /// they name the number only as "the number" (an erasure finds the number as the debtor wrote
    /// it, not necessarily as the gateway was given it).
    public static func decide(transport: String, answer: Result<[FoundMessage], CurlError>?) -> Verdict {
        guard let answer else {
            return .resend(reason: "in doubt, resent (delivery.in_doubt: resend; \(transport) cannot be asked what it sent)")
        }
        switch answer {
        case .failure(let error):
            return .keep(reason: "in doubt; \(transport) could not be asked what it sent (\(error.message)): left for relance resolve")
        case .success(let found) where found.isEmpty:
            return .resend(reason: "in doubt, resent: \(transport) sent nothing to the number since the attempt (delivery.in_doubt: resend)")
        case .success(let found):
            let ids = found.map(\.id).joined(separator: ", ")
            return .sent(reason: "in doubt, not resent: \(transport) says it sent \(ids) to the number since the attempt")
        }
    }

    /// A delivery's last attempt that reached a transport, as its receipt (nil: none).
    public static func lastAttempt(_ key: DeliveryKey, in ledger: any LedgerStore) async throws -> Receipt? {
        let box = AttemptBox()
        try await ledger.receipts(ReceiptFilter(reminderID: key.reminderID)) { box.append($0) }
        return box.items.last { $0.channel == key.channel.rawValue && $0.outcome != "not_sent" }
    }

    /// What the gateway says it sent to the attempt's recipient since a few minutes before the
    /// attempt started (the gateway's clock and ours may differ).
    public static func search(_ client: SMSStatusClient, for attempt: Receipt) async -> Result<[FoundMessage], CurlError> {
        await client.search(recipient: attempt.recipient, since: attempt.startedAt.addingTimeInterval(-300))
    }

    /// Settles `keys` (in doubt now) by `decide`, asking each SMS gateway that has a status API
    /// (`search`). A message to the same number in that time counts as this one: restraint first.
    public static func settle(
        _ keys: [DeliveryKey], ledger: any LedgerStore, clients: [String: SMSStatusClient], logger: Logger, clock: @Sendable () -> Date
    ) async {
        for key in keys {
            do {
                guard let attempt = try await lastAttempt(key, in: ledger) else { continue }
                var answer: Result<[FoundMessage], CurlError>?
                if key.channel == .sms, let client = clients[attempt.transport] { answer = await search(client, for: attempt) }
                let verdict = decide(transport: attempt.transport, answer: answer)
                var logger = logger
                logger[metadataKey: "relance.reminder.id"] = "\(key.reminderID)"
                logger[metadataKey: "relance.delivery.channel"] = "\(key.channel.rawValue)"
                switch verdict {
                case .resend(let reason):
                    try await ledger.resolve(key, as: .resend, reason: reason, now: clock())
                    logger.notice("in-doubt delivery resent", metadata: ["relance.reason": "\(reason)"])
                case .sent(let reason):
                    try await ledger.resolve(key, as: .sent, reason: reason, now: clock())
                    logger.notice("in-doubt delivery recorded as sent: the provider says it went out", metadata: ["relance.reason": "\(reason)"])
                case .keep(let reason):
                    logger.error("in-doubt delivery left for relance resolve", metadata: ["relance.reason": "\(reason)"])
                }
            } catch {
                logger.error("cannot settle an in-doubt delivery; it stays in doubt", metadata: ["relance.delivery": "\(key)", "error": "\(error)"])
            }
        }
    }
}

/// Receipts collected from the ledger's `@Sendable` callback.
final class AttemptBox: @unchecked Sendable {
    // @unchecked: appended serially by the ledger's read, read after it returns.
    var items: [Receipt] = []
    func append(_ receipt: Receipt) { items.append(receipt) }
}
