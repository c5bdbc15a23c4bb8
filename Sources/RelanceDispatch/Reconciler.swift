import Foundation
import Logging
import Metrics
import RelanceConfig
import RelanceCore
import RelanceStore
import RelanceTransport
import Synchronization

/// SMS reconciliation (issue 14, DESIGN.md "Bounces and reconciliation"): SMS still `sent`
/// `sms.reconcile_after` after the gateway accepted them are asked about every
/// `sms.reconcile_every`, at most `sms.reconcile_rate` requests a second per gateway, until
/// `sms.reconcile_give_up`. An answer is applied with the same rules as a status callback (the
/// ledger's forward-only moves, duplicates as no-ops) and polling stops at the first final status.
/// A gateway that answers 429 or 5xx is left alone until its `Retry-After`. `unknown` deliveries
/// are never polled: only an operator settles them (`relance resolve`).
public final class Reconciler: Sendable {
    let ledger: any LedgerStore
    let clients: [String: SMSStatusClient]
    public let schedule: PollSchedule
    let rate: Double
    let logger: Logger
    let clock: @Sendable () -> Date
    /// Per gateway: its token bucket and the instant it may be asked again after a 429 or 5xx.
    let gates: GatewayGates

    /// Deliveries read from the ledger per round.
    static let batch = 200

    public init(
        ledger: any LedgerStore, clients: [String: SMSStatusClient], schedule: PollSchedule, rate: Double, logger: Logger,
        clock: @escaping @Sendable () -> Date
    ) {
        self.ledger = ledger
        self.clients = clients
        self.schedule = schedule
        self.rate = rate
        self.logger = logger
        self.clock = clock
        self.gates = GatewayGates(rate: rate)
    }

    /// From the configuration in force: a status client per gateway in use that has a status API
    /// (`PollSchedule.gatewaysWithStatusAPI`, which decides what the ledger schedules; a test keeps
    /// the two in step).
    public static func clients(_ configuration: RelanceConfiguration) throws -> [String: SMSStatusClient] {
        let sms = configuration.sms
        var gateways: [(RelanceConfiguration.SMS.Provider, String?)] = [(sms.provider, sms.baseURL)]
        if let secondary = sms.secondary { gateways.append((secondary.provider, secondary.baseURL)) }
        var clients: [String: SMSStatusClient] = [:]
        for (provider, base) in gateways where clients[provider.rawValue] == nil {
            let query: any SMSStatusQuery
            let secrets: [String]
            switch provider {
            case .twilio:
                query = TwilioStatusQuery(baseURL: base ?? "https://api.twilio.com", accountSID: sms.twilio.accountSID, authToken: sms.twilio.authToken)
                secrets = [sms.twilio.authToken]
            case .vonage:
                query = VonageStatusQuery(baseURL: base ?? "https://api.nexmo.com", apiKey: sms.vonage.apiKey, apiSecret: sms.vonage.apiSecret)
                secrets = [sms.vonage.apiSecret]
            case .brevo:
                query = BrevoStatusQuery(baseURL: base ?? "https://api.brevo.com", apiKey: sms.brevo.apiKey)
                secrets = [sms.brevo.apiKey]
            case .generic, .outbox: continue
            }
            let http = try HTTPClient(configuration: HTTPClientConfiguration(connections: min(4, sms.connections), timeout: sms.timeout.value))
            clients[provider.rawValue] = SMSStatusClient(query: query, client: http, secrets: secrets)
        }
        return clients
    }

    /// What one round did.
    public struct Round: Sendable, Hashable {
        public var polled = 0
        public var requests = 0
        /// Answers that moved a delivery to a final status.
        public var settled = 0
        public var gaveUp = 0
        /// The batch was full: more may be due now.
        public var more = false
    }

    /// Polls what is due now, once: each gateway's deliveries in order, one request at a time
    /// at its rate, the gateways side by side.
    public func round() async throws -> Round {
        let now = clock()
        let due = try await ledger.pollCandidates(dueBy: schedule.dueBy(now), limit: Self.batch)
        var byGateway: [String: [Ledger.PollCandidate]] = [:]
        for candidate in due { byGateway[candidate.transport, default: []].append(candidate) }
        var round = Round(polled: due.count, more: due.count == Self.batch)
        try await withThrowingTaskGroup(of: Round.self) { group in
            for (gateway, candidates) in byGateway {
                group.addTask {
                    var tally = Round()
                    for candidate in candidates { tally.add(try await self.poll(candidate, gateway: gateway)) }
                    return tally
                }
            }
            for try await tally in group { round.add(tally) }
        }
        return round
    }

    /// Asks about each part still without a final status, applies the answers, and schedules the
    /// next poll (or gives up).
    func poll(_ candidate: Ledger.PollCandidate, gateway: String) async throws -> Round {
        var result = Round()
        var logger = self.logger
        logger[metadataKey: "relance.reminder.id"] = "\(candidate.key.reminderID)"
        logger[metadataKey: "relance.provider"] = "\(gateway)"
        guard let client = clients[gateway] else {
            // The gateway left the configuration: nothing can be asked any more.
            try await ledger.polled(candidate.key, next: nil, giveUp: "\(gateway) is no longer configured; nothing to ask", now: clock())
            return result
        }
        var settled = false
        for id in candidate.messageIDs {
            await gates.wait(gateway, clock: clock)
            result.requests += 1
            Counter(label: "relance_reconcile_requests_total", dimensions: [("provider", gateway)]).increment()
            switch await client.status(messageID: id, recipient: candidate.recipient, sentAt: candidate.sentAt) {
            case .status(let status):
                guard status.isFinal else {
                    logger.debug("still without a final status", metadata: ["relance.status": "\(status.text)"])
                    continue
                }
                let mapped: StatusCallback.Status =
                    switch status {
                    case .delivered: .delivered
                    case .bounced: .bounced
                    default: .undelivered
                    }
                let applied = try await ledger.apply(
                    StatusCallback(provider: gateway, messageID: id, status: mapped, raw: ["source": "reconciliation", "status": status.text]),
                    replayID: nil, now: clock(), orphanTTL: .seconds(86_400), replayWindow: .seconds(86_400))
                if applied == .applied {
                    settled = true
                    logger.info("status reconciled from the gateway", metadata: ["relance.status": "\(status.text)"])
                }
            case .later(let retryAfter, let detail):
                gates.pause(gateway, for: retryAfter ?? .seconds(30), now: clock())
                logger.notice("the gateway asks to wait; reconciliation pauses", metadata: ["relance.detail": "\(detail)"])
            case .failed(let detail):
                logger.warning("cannot read the gateway's status answer", metadata: ["relance.detail": "\(detail)"])
            }
        }
        let now = clock()
        if settled { result.settled += 1 }
        if !settled && schedule.givesUp(sentAt: candidate.sentAt, now: now) {
            let hours = Int(schedule.giveUp.seconds / 3600)
            try await ledger.polled(
                candidate.key, next: nil, giveUp: "\(gateway) gave no final status within \(hours)h (sms.reconcile_give_up); it stays sent", now: now)
            result.gaveUp += 1
            logger.notice("no final status: reconciliation gives up, the delivery stays sent")
        } else {
            try await ledger.polled(candidate.key, next: schedule.next(after: now), giveUp: nil, now: now)
        }
        return result
    }
}

extension Reconciler.Round {
    mutating func add(_ other: Self) {
        polled += other.polled
        requests += other.requests
        settled += other.settled
        gaveUp += other.gaveUp
    }
}

/// Each gateway's request rate and pause, shared by the rounds.
final class GatewayGates: Sendable {
    private let state: Mutex<[String: (bucket: TokenBucket, pausedUntil: Date?)]>
    let rate: Double

    init(rate: Double) {
        self.rate = rate
        self.state = Mutex([:])
    }

    /// Waits for the gateway's pause to end and a token of its bucket.
    func wait(_ gateway: String, clock: @Sendable () -> Date) async {
        while true {
            let now = clock()
            let until: Date? = state.withLock { gates in
                var gate = gates[gateway] ?? (TokenBucket(rate: rate), nil)
                defer { gates[gateway] = gate }
                if let paused = gate.pausedUntil, paused > now { return paused }
                gate.pausedUntil = nil
                return gate.bucket.take(now: now)
            }
            guard let until else { return }
            try? await Task.sleep(for: .milliseconds(max(1, Int64(until.timeIntervalSince(now) * 1000))))
        }
    }

    func pause(_ gateway: String, for duration: Duration, now: Date) {
        state.withLock { gates in
            var gate = gates[gateway] ?? (TokenBucket(rate: rate), nil)
            gate.pausedUntil = now.addingTimeInterval(duration.seconds)
            gates[gateway] = gate
        }
    }
}
