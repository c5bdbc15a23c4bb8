import Foundation

/// The key of a delivery: one reminder on one channel.
public struct DeliveryKey: Sendable, Hashable, Codable, CustomStringConvertible {
    public var reminderID: String
    public var channel: Channel

    public init(reminderID: String, channel: Channel) {
        self.reminderID = reminderID
        self.channel = channel
    }

    public var description: String { "\(reminderID)/\(channel.rawValue)" }
}

/// What a transport reports for one send.
public enum SendOutcome: Sendable, Hashable {
    /// Accepted; the provider's message id when it gives one.
    case sent(providerID: String?, code: Int?, detail: String)
    /// Failed, try again later (SMTP 4xx, HTTP 429/5xx, timeouts, connection errors).
    case transient(code: Int?, detail: String, retryAfter: Duration?)
    /// Failed for good (SMTP 5xx, HTTP 4xx other than 408/429, invalid recipient).
    case permanent(code: Int?, detail: String)
    /// The whole message reached the provider and then no answer came (a timeout or a dropped
    /// connection after the last byte of DATA or of the request body): it may have been accepted.
    /// Never resent by itself (DESIGN.md's in-doubt rule); an operator settles it.
    case inDoubt(detail: String)

    public var code: Int? {
        switch self {
        case .sent(_, let code, _), .transient(let code, _, _), .permanent(let code, _): return code
        case .inDoubt: return nil
        }
    }

    public var detail: String {
        switch self {
        case .sent(_, _, let d), .transient(_, let d, _), .permanent(_, let d), .inDoubt(let d): return d
        }
    }
}
