import Foundation
import RelanceCore

/// What the ledger records for an attempt's outcome and for a provider's report, whatever the
/// backend: the attempt's outcome word, the delivery's next status, the event's reason, and how
/// the parts of a multi-part message combine. Pure, shared by SQLite and PostgreSQL.
public struct Settlement: Sendable, Hashable {
    /// `sent`, `transient`, `permanent` or `unknown`, as kept on the attempt.
    public var attemptOutcome: String
    /// The delivery's status after `sending`.
    public var status: DeliveryStatus
    /// The provider's message id(s), when it accepted the message.
    public var providerID: String?
    /// The event's reason.
    public var reason: String

    public init(_ outcome: SendOutcome, retryAt: Date?) {
        switch outcome {
        case .sent(let id, _, _): (attemptOutcome, status, providerID) = ("sent", .sent, id)
        case .transient: (attemptOutcome, status, providerID) = ("transient", .pending, nil)
        case .permanent: (attemptOutcome, status, providerID) = ("permanent", .failed, nil)
        case .inDoubt: (attemptOutcome, status, providerID) = ("unknown", .unknown, nil)
        }
        switch outcome {
        case .inDoubt: reason = "in doubt: \(outcome.detail); not resent by itself, settle with relance resolve"
        case .transient:
            reason =
                retryAt.map { "transient failure, retry at \(Timestamp.format($0)): \(outcome.detail)" }
                ?? "transient failures past the retry lifetime: \(outcome.detail)"
        default: reason = outcome.detail
        }
    }

    /// Whether the delivery is then polled for its final status (SMS reconciliation): an SMS
    /// accepted, with an id, by a gateway that has a status API.
    public func polled(channel: Channel, transport: String?) -> Bool {
        status == .sent && channel == .sms && providerID != nil && PollSchedule.gatewaysWithStatusAPI.contains(transport ?? "")
    }

    /// A message's status from its parts' reported statuses (nil: a part not reported yet): any
    /// bounced part bounces it, then any undelivered one; delivered when every part is; else
    /// nothing is settled yet.
    public static func combined(parts: [String?]) -> DeliveryStatus? {
        if parts.contains(StatusCallback.Status.bounced.rawValue) { return .bounced }
        if parts.contains(StatusCallback.Status.undelivered.rawValue) { return .undelivered }
        if parts.allSatisfy({ $0 == StatusCallback.Status.delivered.rawValue }) { return .delivered }
        return nil
    }
}

/// What applying a status callback needs of the provider message's part it names, as both
/// backends read it in one query: the part, its delivery's status and group lead, and whether a
/// callback with this status was applied to the part already.
public struct CallbackPart: Sendable, Hashable {
    public var key: DeliveryKey
    /// The part's own status, nil until a callback gave one.
    public var partStatus: String?
    /// How many parts the message has.
    public var parts: Int
    public var deliveryStatus: DeliveryStatus?
    public var groupLead: String?
    public var duplicate: Bool

    public init(key: DeliveryKey, partStatus: String?, parts: Int, deliveryStatus: DeliveryStatus?, groupLead: String?, duplicate: Bool) {
        self.key = key
        self.partStatus = partStatus
        self.parts = parts
        self.deliveryStatus = deliveryStatus
        self.groupLead = groupLead
        self.duplicate = duplicate
    }
}
