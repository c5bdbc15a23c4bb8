import Foundation

/// The status of one delivery (one reminder on one channel). See DESIGN.md, "Delivery semantics".
public enum DeliveryStatus: String, Sendable, Codable, CaseIterable, Hashable {
    // Waiting
    case pending, paused
    // In flight
    case sending
    // Accepted by the transport
    case sent
    // Terminal
    case delivered, undelivered, bounced, failed, expired, cancelled, suppressed
    // In doubt after a crash: left only by an operator
    case unknown

    public var isWaiting: Bool { self == .pending || self == .paused }

    public var isTerminal: Bool {
        switch self {
        case .delivered, .undelivered, .bounced, .failed, .expired, .cancelled, .suppressed: return true
        default: return false
        }
    }

    /// Whether the status machine allows moving from `self` to `next`.
    public func canMove(to next: DeliveryStatus) -> Bool {
        switch (self, next) {
        case (.pending, .paused), (.paused, .pending): return true
        case (.pending, .sending): return true
        case (.sending, .sent), (.sending, .failed), (.sending, .pending), (.sending, .unknown): return true
        case (.sent, .delivered), (.sent, .undelivered), (.sent, .bounced): return true
        case (.pending, .cancelled), (.pending, .expired), (.pending, .suppressed): return true
        // A delivery that cannot be built (template error, no address, landline) fails without a transport call.
        case (.pending, .failed): return true
        case (.paused, .cancelled), (.paused, .expired), (.paused, .suppressed): return true
        // An operator settles an in-doubt delivery.
        case (.unknown, .sent), (.unknown, .pending): return true
        default: return false
        }
    }
}

/// An illegal status move: a bug or a race, never applied.
public struct StatusTransitionError: Error, CustomStringConvertible {
    public var from: DeliveryStatus
    public var to: DeliveryStatus
    public init(from: DeliveryStatus, to: DeliveryStatus) {
        self.from = from
        self.to = to
    }
    public var description: String { "illegal delivery status move \(from.rawValue) → \(to.rawValue)" }
}

/// Exponential backoff with a lifetime (Postfix-like defaults: 5 min doubling to 1 h, 2 days).
public struct RetrySchedule: Sendable, Hashable {
    public var first: Duration
    public var max: Duration
    public var lifetime: Duration
    /// Spread of each delay, as a fraction (0.1: ±10 %), so retries after an outage do not all land at once.
    public var jitter: Double

    public init(first: Duration = .seconds(300), max: Duration = .seconds(3600), lifetime: Duration = .seconds(2 * 86400), jitter: Double = 0.1) {
        self.first = first
        self.max = max
        self.lifetime = lifetime
        self.jitter = jitter
    }

    /// The delay before retry number `failures` (1 = first retry), without jitter.
    public func delay(afterFailures failures: Int) -> Duration {
        var delay = first
        var n = 1
        while n < failures && delay < max {
            delay = delay * 2
            n += 1
        }
        return delay < max ? delay : max
    }

    /// When to try again after `failures` failed attempts of a delivery first tried at `firstAttempt`,
    /// or nil when that would be past the lifetime (the delivery then expires).
    /// `random` is a number in [0, 1) (injected so tests are deterministic); 0.5 means no jitter.
    public func nextAttempt(afterFailures failures: Int, now: Date, firstAttempt: Date, random: Double = 0.5) -> Date? {
        let spread = 1 + jitter * (2 * random - 1)
        let next = now.addingTimeInterval(delay(afterFailures: failures).seconds * spread)
        return next.timeIntervalSince(firstAttempt) > lifetime.seconds ? nil : next
    }
}

extension Duration {
    public var seconds: TimeInterval {
        let c = components
        return TimeInterval(c.seconds) + TimeInterval(c.attoseconds) / 1e18
    }

    /// Parses `500ms`, `30s`, `5m`, `1h`, `2d` (or a bare number of seconds).
    public init?(text: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400), ("y", 365 * 86400)]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var number = Substring(trimmed)
        var factor = 1.0
        for (suffix, f) in units where trimmed.hasSuffix(suffix) {
            if suffix == "s" && trimmed.dropLast(1).hasSuffix("m") { continue }
            number = trimmed.dropLast(suffix.count)
            factor = f
            break
        }
        // ASCII digits only, and at most a thousand years: no `inf`, no overflow.
        guard let value = ASCIIDigits.decimal(number), value * factor <= 1000 * 365 * 86400 else { return nil }
        self = .milliseconds(Int64((value * factor * 1000).rounded()))
    }
}
