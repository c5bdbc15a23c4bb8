import Foundation

/// A token bucket: at most `rate` sends a second on average, bursts of `burst`. Time is given, not read.
public struct TokenBucket: Sendable, Hashable {
    public var rate: Double
    public var burst: Double
    var tokens: Double
    var last: Date?

    /// `rate` ≤ 0 means unlimited.
    public init(rate: Double, burst: Double? = nil) {
        self.rate = rate
        self.burst = max(1, burst ?? max(1, rate))
        self.tokens = self.burst
    }

    /// Takes a token if one is there; otherwise returns the instant the next one will be.
    public mutating func take(now: Date) -> Date? {
        guard rate > 0 else { return nil }
        if let last { tokens = min(burst, tokens + now.timeIntervalSince(last) * rate) }
        last = now
        if tokens >= 1 {
            tokens -= 1
            return nil
        }
        return now.addingTimeInterval((1 - tokens) / rate)
    }
}

/// Pauses a provider that keeps failing instead of feeding it a retry storm: after `threshold`
/// consecutive transient failures it opens for `cooldown`, then lets one probe through
/// (half-open); the probe's success closes it, its failure opens it again.
public struct CircuitBreaker: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case closed(failures: Int)
        case open(until: Date)
        case halfOpen(probing: Bool)
    }

    public var threshold: Int
    public var cooldown: Duration
    public private(set) var state: State = .closed(failures: 0)

    public init(threshold: Int = 5, cooldown: Duration = .seconds(60)) {
        self.threshold = threshold
        self.cooldown = cooldown
    }

    /// Whether a send may go now; when not, the instant to look again.
    public mutating func allow(now: Date) -> (allowed: Bool, retryAt: Date?) {
        switch state {
        case .closed: return (true, nil)
        case .open(let until) where now < until: return (false, until)
        case .open, .halfOpen(probing: false):
            state = .halfOpen(probing: true)
            return (true, nil)
        case .halfOpen(probing: true):
            return (false, now.addingTimeInterval(1))
        }
    }

    /// The outcome of an allowed send: `true` when the provider worked (a permanent refusal of one
    /// recipient counts as working).
    public mutating func record(success: Bool, now: Date) {
        switch (state, success) {
        case (_, true): state = .closed(failures: 0)
        case (.closed(let failures), false):
            state = failures + 1 >= threshold ? .open(until: now.addingTimeInterval(cooldown.seconds)) : .closed(failures: failures + 1)
        case (.halfOpen, false), (.open, false):
            state = .open(until: now.addingTimeInterval(cooldown.seconds))
        }
    }

    public var isOpen: Bool {
        if case .open = state { return true }
        return false
    }
}
