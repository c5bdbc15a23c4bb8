import Foundation

/// What an authenticated bounce does to its delivery and its address (DESIGN.md "Bounces and
/// reconciliation"), decided without I/O; the ledger applies the decision in one transaction.
///
/// - A hard bounce suppresses the address (reason `bounced`); a delivery still `sent` becomes
///   `bounced` (forward-only: a later status is kept, with the bounce as an event) and the
///   reminder's fallback channel takes over.
/// - A soft bounce is counted. When the address has soft-bounced for `softLimit` different
///   messages within `softWindow`, it counts as a hard bounce. A delay warning followed by the
///   final failure of the same message counts once.
/// - A bounce for a message whose send is not recorded yet (`sending`: Postfix's own error
///   transport can answer in milliseconds) is retried later; an in-doubt (`unknown`) delivery is
///   not settled by a bounce: the event tells the operator, who settles it with `relance resolve`.
public struct BounceRules: Sendable, Hashable {
    public var softLimit: Int
    public var softWindow: Duration

    public init(softLimit: Int = 3, softWindow: Duration = .seconds(30 * 86_400)) {
        self.softLimit = softLimit
        self.softWindow = softWindow
    }

    public struct Decision: Sendable, Hashable {
        /// Counts as a hard bounce (itself hard, or the soft limit reached).
        public var hard: Bool
        /// The address goes on the suppression list, reason `bounced`.
        public var suppress: Bool
        /// `sent → bounced`, and the fallback channels take over.
        public var bounce: Bool
        /// The send is not recorded yet: try again later, change nothing now.
        public var retryLater: Bool
        /// The event's reason on the delivery.
        public var reason: String
    }

    /// `softCount`: the distinct messages to this address that soft-bounced within the window,
    /// this one included (ignored for a hard bounce). `source`: how it came (`pipe`, `maildir`, …).
    public func decide(_ recipient: BounceClassifier.Recipient, softCount: Int, current: DeliveryStatus, source: String) -> Decision {
        let detail = [recipient.status, recipient.diagnostic.map { Self.shortened($0) }].compactMap { $0 }.joined(separator: " ")
        let what = "\(recipient.kind.rawValue) bounce for \(recipient.address)\(detail.isEmpty ? "" : " (\(detail))") via \(source)"
        if current == .sending {
            return Decision(hard: false, suppress: false, bounce: false, retryLater: true, reason: "\(what): the send is not recorded yet")
        }
        let hard = recipient.kind == .hard || softCount >= softLimit
        var reason = what
        if recipient.kind == .soft {
            let days = Int(softWindow.components.seconds / 86_400)
            reason += hard ? "; \(softCount) messages soft-bounced within \(days) days: counts as hard" : "; \(softCount) of \(softLimit) within \(days) days"
        }
        let bounce = hard && current == .sent
        if hard && !bounce {
            reason += current == .unknown ? "; the delivery is in doubt: settle it with relance resolve" : "; the delivery stays \(current.rawValue)"
        }
        return Decision(hard: hard, suppress: hard, bounce: bounce, retryLater: false, reason: reason)
    }

    /// Of the recipients a bounce reports, the one about the address the delivery was sent to:
    /// those with that address (several blocks for one address: the worst), else — an alias or
    /// a forward rewrote it — the worst of all. Nil when the report names none. Whatever address
    /// it reports, the one suppressed and counted is the one the delivery was sent to.
    public static func concerning(_ recipients: [BounceClassifier.Recipient], sentTo: String) -> BounceClassifier.Recipient? {
        let target = sentTo.lowercased()
        let matching = recipients.filter { $0.address.lowercased() == target }
        let pool = matching.isEmpty ? recipients : matching
        return pool.first(where: { $0.kind == .hard }) ?? pool.first
    }

    /// A diagnostic kept to one line of reasonable length (they quote whole SMTP dialogues).
    static func shortened(_ text: String) -> String {
        let line = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
        return line.count > 200 ? String(line.prefix(200)) + "…" : line
    }
}
