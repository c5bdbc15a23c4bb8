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

    /// Nil when a token is there at `now`; otherwise the instant the next one will be. Takes nothing.
    public func nextToken(now: Date) -> Date? {
        guard rate > 0 else { return nil }
        let available = last.map { min(burst, tokens + max(0, now.timeIntervalSince($0)) * rate) } ?? tokens
        return available >= 1 ? nil : now.addingTimeInterval((1 - available) / rate)
    }

    /// How many whole tokens are there at `now` (`Int.max` when unlimited). Takes nothing.
    public func available(now: Date) -> Int {
        guard rate > 0 else { return .max }
        let available = last.map { min(burst, tokens + max(0, now.timeIntervalSince($0)) * rate) } ?? tokens
        return Int(available.rounded(.down))
    }

    /// Takes a token if one is there; otherwise returns the instant the next one will be.
    public mutating func take(now: Date) -> Date? {
        guard rate > 0 else { return nil }
        if let last { tokens = min(burst, tokens + max(0, now.timeIntervalSince(last)) * rate) }
        last = now
        if tokens >= 1 {
            tokens -= 1
            return nil
        }
        return now.addingTimeInterval((1 - tokens) / rate)
    }

    /// Gives back a token taken for a send that did not happen.
    public mutating func refund() {
        guard rate > 0 else { return }
        tokens = min(burst, tokens + 1)
    }
}

/// Pauses a provider that keeps failing instead of feeding it a retry storm: after `threshold`
/// consecutive transient failures it opens for `cooldown`, then lets one probe through
/// (half-open); the probe's success closes it, its failure opens it again, and a probe that
/// returns without calling the provider lets the next send be the probe.
public struct CircuitBreaker: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case closed(failures: Int)
        case open(until: Date)
        case halfOpen(probing: Bool)
    }

    /// What the breaker says of a send at some instant.
    public enum Admission: Sendable, Hashable {
        /// Closed: send.
        case go
        /// Half-open and no probe out: this send is the probe.
        case probe
        /// Open until then.
        case pausedUntil(Date)
        /// A probe is out: wait for its outcome.
        case probing
    }

    public var threshold: Int
    public var cooldown: Duration
    public private(set) var state: State = .closed(failures: 0)

    public init(threshold: Int = 5, cooldown: Duration = .seconds(60)) {
        self.threshold = threshold
        self.cooldown = cooldown
    }

    /// What a send at `now` would be; changes nothing.
    public func admission(now: Date) -> Admission {
        switch state {
        case .closed: return .go
        case .open(let until) where now < until: return .pausedUntil(until)
        case .open, .halfOpen(probing: false): return .probe
        case .halfOpen(probing: true): return .probing
        }
    }

    /// Puts the breaker in "probe out" (after `admission` said `.probe` and the send is started).
    public mutating func startProbe() { state = .halfOpen(probing: true) }

    /// A probe came back without calling the provider: the next send is the probe.
    public mutating func probeReturnedUnused() {
        if state == .halfOpen(probing: true) { state = .halfOpen(probing: false) }
    }

    /// Whether a send may go now (taking the probe when half-open); when not, the instant to look again.
    public mutating func allow(now: Date) -> (allowed: Bool, retryAt: Date?) {
        switch admission(now: now) {
        case .go: return (true, nil)
        case .probe:
            startProbe()
            return (true, nil)
        case .pausedUntil(let until): return (false, until)
        case .probing: return (false, now.addingTimeInterval(1))
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
