import Foundation

/// The dispatcher's decisions, without I/O (after PostgresNIO's `PoolStateMachine`): which due
/// deliveries start now, given what is in flight, the queues' shares, one delivery per debtor at a
/// time, each provider's rate limit and circuit breaker. The I/O layer feeds it the due deliveries
/// (`candidates`) and the end of each one it started (`finished`), and performs the actions.
///
/// Invariant: every started key is in flight until exactly one `finished` for it; a breaker is
/// half-open with a probe out only while that probe is in flight.
public struct DispatchStateMachine: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Deliveries in flight at most.
        public var concurrency: Int
        /// Share (0–1] of `concurrency` each named queue may use; others: 1.
        public var shares: [String: Double]
        /// Sends a second per channel (0 or absent: unlimited).
        public var rates: [Channel: Double]
        /// The breaker of each channel's provider (absent: none, e.g. a failover reroutes instead).
        public var breakers: [Channel: CircuitBreaker]
        /// `serve --once`: each delivery is tried at most once in the pass, and a paused provider's
        /// deliveries wait for the next pass instead of holding this one.
        public var onePass: Bool

        public init(
            concurrency: Int, shares: [String: Double] = [:], rates: [Channel: Double] = [:], breakers: [Channel: CircuitBreaker] = [:], onePass: Bool = false
        ) {
            self.concurrency = concurrency
            self.shares = shares
            self.rates = rates
            self.breakers = breakers
            self.onePass = onePass
        }

        /// Deliveries of `queue` in flight at most.
        public func cap(_ queue: String) -> Int { max(1, Int((Double(concurrency) * (shares[queue] ?? 1)).rounded(.down))) }
    }

    /// A due delivery, as the ledger hands it over.
    public struct Candidate: Sendable, Hashable {
        public var key: DeliveryKey
        public var queue: String
        public var debtor: String
        public init(key: DeliveryKey, queue: String, debtor: String) {
            self.key = key
            self.queue = queue
            self.debtor = debtor
        }
    }

    /// What the I/O layer does next.
    public enum Action: Sendable, Hashable {
        /// Send these now.
        case start([Candidate])
        /// Send this one now as the probe of its channel's paused provider.
        case probe(Channel, Candidate)
        /// Something due is held back until this instant (a rate token, the end of a provider's pause).
        case sleep(until: Date)
        /// Nothing more can start until a delivery finishes or new work is due.
        case idle
    }

    /// How a started delivery ended, as far as flow control cares.
    public enum Report: Sendable, Hashable {
        /// The provider answered (accepted, or refused this one recipient for good).
        case providerWorked
        /// The provider failed (a transient failure, a timeout).
        case providerFailed
        /// No transport call was made (deferred, cancelled, not buildable, not marked).
        case notAttempted
    }

    /// What finishing a delivery changed.
    public enum Finish: Sendable, Hashable {
        case done
        /// The channel's breaker opened (a pause to log).
        case breakerOpened(Channel)
        /// The channel's breaker closed after a pause.
        case breakerClosed(Channel)
        /// Not in flight: a bug in the caller (reported, never trusted).
        case unknownKey
    }

    struct InFlight: Sendable, Hashable {
        var queue: String
        var debtor: String
        var probe: Bool
    }

    public private(set) var configuration: Configuration
    private(set) var inFlight: [DeliveryKey: InFlight] = [:]
    private(set) var perQueue: [String: Int] = [:]
    private(set) var busyDebtors: Set<String> = []
    private(set) var buckets: [Channel: TokenBucket] = [:]
    public private(set) var breakers: [Channel: CircuitBreaker]
    /// One pass: the keys already started in it.
    private(set) var attempted: Set<DeliveryKey> = []
    public private(set) var stopping = false

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        self.breakers = configuration.breakers
        for (channel, rate) in configuration.rates where rate > 0 { buckets[channel] = TokenBucket(rate: rate) }
    }

    /// Puts a reloaded configuration in force. A breaker keeps its state when its provider is
    /// still configured; rate buckets start full.
    public mutating func reconfigure(_ next: Configuration) {
        var breakers: [Channel: CircuitBreaker] = [:]
        for (channel, var breaker) in next.breakers {
            if let current = self.breakers[channel] {
                let settings = (breaker.threshold, breaker.cooldown)
                breaker = current
                (breaker.threshold, breaker.cooldown) = settings
            }
            breakers[channel] = breaker
        }
        self.breakers = breakers
        buckets = [:]
        for (channel, rate) in next.rates where rate > 0 { buckets[channel] = TokenBucket(rate: rate) }
        configuration = next
    }

    public var inFlightKeys: [DeliveryKey] { Array(inFlight.keys) }
    public var inFlightCount: Int { inFlight.count }
    public var isDrained: Bool { inFlight.isEmpty }
    /// How many due deliveries are worth reading for one `candidates` call.
    public var room: Int { stopping ? 0 : max(0, configuration.concurrency - inFlight.count) }

    /// How many more deliveries of `queue` may start now (its share of the concurrency, less what
    /// it has in flight): the due walk reads no more of it, and none of a queue at its share.
    public func room(inQueue queue: String) -> Int {
        stopping ? 0 : max(0, configuration.cap(queue) - perQueue[queue, default: 0])
    }

    /// How many deliveries on `channel` the due walk should read at `now`: as many as its rate
    /// limit has tokens for, one while it has none or its provider is paused (that one's refusal
    /// says when to look again), one when the next send is the paused provider's probe, and none
    /// while the probe is out (its end wakes the dispatcher) or, in one pass, while the provider
    /// is paused (its deliveries wait for the next pass).
    public func room(onChannel channel: Channel, now: Date) -> Int {
        guard !stopping else { return 0 }
        if let breaker = breakers[channel] {
            switch breaker.admission(now: now) {
            case .go: break
            case .probe: return 1
            case .probing: return 0
            case .pausedUntil: return configuration.onePass ? 0 : 1
            }
        }
        return max(1, buckets[channel]?.available(now: now) ?? .max)
    }

    /// Whether the due walk can skip this delivery before decoding it: in flight, its debtor
    /// busy, or already tried in this pass.
    public func isExcluded(_ key: DeliveryKey, debtor: String) -> Bool {
        inFlight[key] != nil || busyDebtors.contains(debtor) || attempted.contains(key)
    }

    /// A new run over the ledger (each `serve --once` pass): nothing tried in it yet, not stopping.
    public mutating func beginRun() {
        attempted = []
        stopping = false
    }

    /// Stop starting; what is in flight finishes.
    public mutating func stop() { stopping = true }

    /// Decides which of the due deliveries (highest priority and oldest first) start at `now`.
    public mutating func candidates(_ due: [Candidate], now: Date) -> [Action] {
        guard !stopping else { return [.idle] }
        var started: [Candidate] = []
        var actions: [Action] = []
        var wake: Date?
        for candidate in due {
            guard inFlight.count < configuration.concurrency else { break }
            let key = candidate.key
            if isExcluded(key, debtor: candidate.debtor) { continue }
            if perQueue[candidate.queue, default: 0] >= configuration.cap(candidate.queue) { continue }
            var probe = false
            if let breaker = breakers[key.channel] {
                switch breaker.admission(now: now) {
                case .go: break
                case .probe: probe = true
                case .probing: continue  // its outcome will wake the dispatcher
                case .pausedUntil(let until):
                    if configuration.onePass {
                        attempted.insert(key)  // waits for the next pass
                    } else {
                        wake = min(wake ?? until, until)
                    }
                    continue
                }
            }
            // The rate limit is asked before anything is taken: a probe never waits half-taken.
            if let next = buckets[key.channel]?.nextToken(now: now) {
                wake = min(wake ?? next, next)
                continue
            }
            _ = buckets[key.channel]?.take(now: now)
            if probe { breakers[key.channel]?.startProbe() }
            inFlight[key] = InFlight(queue: candidate.queue, debtor: candidate.debtor, probe: probe)
            perQueue[candidate.queue, default: 0] += 1
            busyDebtors.insert(candidate.debtor)
            if configuration.onePass { attempted.insert(key) }
            if probe { actions.append(.probe(key.channel, candidate)) } else { started.append(candidate) }
        }
        if !started.isEmpty { actions.insert(.start(started), at: 0) }
        // A held-back delivery's instant is said even when others started, so no wait is lost.
        if let wake {
            actions.append(.sleep(until: wake))
        } else if actions.isEmpty {
            actions.append(.idle)
        }
        return actions
    }

    /// A started delivery ended. Exactly once per started key.
    public mutating func finished(_ key: DeliveryKey, _ report: Report, now: Date) -> Finish {
        guard let entry = inFlight.removeValue(forKey: key) else { return .unknownKey }
        perQueue[entry.queue, default: 1] -= 1
        if perQueue[entry.queue] == 0 { perQueue[entry.queue] = nil }
        busyDebtors.remove(entry.debtor)
        guard var breaker = breakers[key.channel] else {
            if report == .notAttempted { buckets[key.channel]?.refund() }
            return .done
        }
        let before = breaker
        switch report {
        case .providerWorked: breaker.record(success: true, now: now)
        case .providerFailed: breaker.record(success: false, now: now)
        case .notAttempted:
            buckets[key.channel]?.refund()
            if entry.probe { breaker.probeReturnedUnused() }
        }
        breakers[key.channel] = breaker
        if !before.isOpen && breaker.isOpen { return .breakerOpened(key.channel) }
        if !before.state.isClosed && breaker.state.isClosed { return .breakerClosed(key.channel) }
        return .done
    }
}

extension CircuitBreaker.State {
    var isClosed: Bool {
        if case .closed = self { return true }
        return false
    }
}
