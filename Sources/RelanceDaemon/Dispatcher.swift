import Foundation
import Logging
import Metrics
import RelanceCore
import RelanceStore
import RelanceTemplates
import RelanceTransport
import Synchronization

/// The transports of each channel, behind one call that also says which transport was used
/// (a failover may have routed the message to the secondary).
public struct Transports: Sendable {
    public var emailName: String
    public var smsName: String
    public var sendEmail: @Sendable (_ from: String, _ to: String, _ data: Data) async -> (SendOutcome, via: String)
    public var sendSMS: @Sendable (_ message: SMSMessage, _ reminderID: String) async -> (SendOutcome, via: String)

    /// Fixed transports (no failover).
    public init(
        emailName: String, smsName: String, sendEmail: @escaping @Sendable (String, String, Data) async -> SendOutcome,
        sendSMS: @escaping @Sendable (SMSMessage, String) async -> SendOutcome
    ) {
        self.init(
            emailName: emailName, smsName: smsName, routedEmail: { (await sendEmail($0, $1, $2), emailName) }, routedSMS: { (await sendSMS($0, $1), smsName) })
    }

    public init(
        emailName: String, smsName: String, routedEmail: @escaping @Sendable (String, String, Data) async -> (SendOutcome, via: String),
        routedSMS: @escaping @Sendable (SMSMessage, String) async -> (SendOutcome, via: String)
    ) {
        self.emailName = emailName
        self.smsName = smsName
        self.sendEmail = routedEmail
        self.sendSMS = routedSMS
    }
}

/// A primary transport and an optional secondary used while the primary is down: the primary's
/// own circuit breaker decides. The message that found the primary failing is retried later like
/// any transient failure (it may then go through the secondary): never sent twice at once.
public final class Failover<Message: Sendable>: Sendable {
    public typealias Send = @Sendable (Message) async -> SendOutcome
    let primary: (name: String, send: Send)
    let secondary: (name: String, send: Send)?
    let breaker: Mutex<CircuitBreaker>
    let clock: @Sendable () -> Date

    public init(primary: (String, Send), secondary: (String, Send)?, breaker: CircuitBreaker, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.primary = (primary.0, primary.1)
        self.secondary = secondary.map { ($0.0, $0.1) }
        self.breaker = Mutex(breaker)
        self.clock = clock
    }

    public func send(_ message: Message) async -> (SendOutcome, via: String) {
        guard let secondary else { return (await primary.send(message), primary.name) }
        let usePrimary = breaker.withLock { $0.allow(now: clock()).allowed }
        guard usePrimary else { return (await secondary.send(message), secondary.name) }
        let outcome = await primary.send(message)
        let failed: Bool
        if case .transient = outcome { failed = true } else { failed = false }
        breaker.withLock { $0.record(success: !failed, now: clock()) }
        return (outcome, primary.name)
    }
}

/// The flow control of one provider: its token bucket and its circuit breaker.
final class ProviderGate: Sendable {
    private let state: Mutex<(bucket: TokenBucket, breaker: CircuitBreaker)>

    init(rate: Double, breaker: CircuitBreaker) { state = Mutex((TokenBucket(rate: rate), breaker)) }

    enum Admission { case go, wait(until: Date), paused(until: Date) }

    func admit(now: Date) -> Admission {
        state.withLock { s in
            let (allowed, retryAt) = s.breaker.allow(now: now)
            if !allowed { return .paused(until: retryAt ?? now.addingTimeInterval(1)) }
            if let next = s.bucket.take(now: now) { return .wait(until: next) }
            return .go
        }
    }

    func record(success: Bool, now: Date) { state.withLock { $0.breaker.record(success: success, now: now) } }
    var isOpen: Bool { state.withLock { $0.breaker.isOpen } }
}

/// Picks due deliveries and sends them with bounded concurrency: records the intent (`sending`)
/// durably, calls the transport, records the outcome. Fair across queues by priority and share.
public final class Dispatcher: Sendable {
    let ledger: Ledger
    /// Swapped whole by a reload (templates, creditor, SMS settings).
    private let currentBuilder: Mutex<MessageBuilder>
    /// The contact policy; swapped whole by a reload.
    private let currentPolicy: Mutex<PolicyStep>
    let transports: Transports
    let configuration: RelanceConfiguration
    let logger: Logger
    let clock: @Sendable () -> Date
    let nudge = Nudge()
    /// In-flight deliveries: their queue and debtor.
    private let inFlight = Mutex<[DeliveryKey: (queue: String, debtor: String)]>([:])
    private let counters = Mutex<(sent: Int, failed: Int, retried: Int)>((0, 0, 0))
    let gates: [Channel: ProviderGate]
    /// Counts finished deliveries: a delivery that finishes can add work (a fallback), so the
    /// dispatcher is idle only if none finished since it last looked.
    private let finishedCount = Atomic<Int>(0)
    /// Set when the ledger refuses a write: claiming and sending stop until it accepts one again.
    private let storeFault = Mutex<String?>(nil)

    public init(
        ledger: Ledger, builder: MessageBuilder, transports: Transports, configuration: RelanceConfiguration, logger: Logger,
        clock: @escaping @Sendable () -> Date
    ) {
        self.ledger = ledger
        self.currentBuilder = Mutex(builder)
        self.currentPolicy = Mutex(PolicyStep(configuration))
        let breaker = CircuitBreaker(threshold: configuration.delivery.breaker.failures, cooldown: configuration.delivery.breaker.cooldown.value)
        // With a secondary, the failover's own breaker reroutes instead of pausing the channel.
        let unbroken = CircuitBreaker(threshold: .max, cooldown: .zero)
        let emailFailover = configuration.email.transport == .smtp && configuration.email.secondarySMTP != nil
        self.gates = [
            .email: ProviderGate(rate: configuration.email.rate, breaker: emailFailover ? unbroken : breaker),
            .sms: ProviderGate(rate: configuration.sms.rate, breaker: configuration.sms.secondary != nil ? unbroken : breaker),
        ]
        self.transports = transports
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
    }

    public var builder: MessageBuilder { currentBuilder.withLock { $0 } }

    /// Puts a validated new builder in force for the deliveries built from now on.
    public func replaceBuilder(_ builder: MessageBuilder) { currentBuilder.withLock { $0 = builder } }

    /// Puts a validated new contact policy in force for the decisions taken from now on.
    public func replacePolicy(_ configuration: RelanceConfiguration) { currentPolicy.withLock { $0 = PolicyStep(configuration) } }

    /// Wake the loop: new deliveries were ingested.
    public func wake() { nudge.signal() }

    public var totals: (sent: Int, failed: Int, retried: Int) { counters.withLock { $0 } }

    /// The deliveries whose transport call is under way.
    public var inFlightKeys: [DeliveryKey] { inFlight.withLock { Array($0.keys) } }

    /// Runs until `shouldStop` says so; then stops claiming and waits for in-flight sends.
    /// With `untilIdle` (`serve --once`): one pass over what is due when the pass starts, each
    /// delivery tried at most once (a transient failure waits for the next pass); returns once
    /// nothing of it is left and nothing is in flight.
    public func run(untilIdle: Bool, shouldStop: @escaping @Sendable () -> Bool) async {
        let passStart = clock()
        var attempted: Set<DeliveryKey> = []
        let concurrency = configuration.delivery.concurrency
        var lastExpiry = Date.distantPast
        await withDiscardingTaskGroup { group in
            while !shouldStop() {
                if storeFault.withLock({ $0 }) != nil {
                    // Store fault (disk full, read-only): claim and send nothing; probe once a second.
                    if inFlight.withLock({ $0.isEmpty }), await ledger.writeProblem(now: clock()) == nil {
                        storeFault.withLock { $0 = nil }
                        logger.notice("the ledger accepts writes again: sending resumes")
                    } else {
                        if untilIdle && inFlight.withLock({ $0.isEmpty }) { break }
                        await nudge.wait(upTo: .seconds(1))
                        continue
                    }
                }
                let now = untilIdle ? passStart : clock()
                if now.timeIntervalSince(lastExpiry) >= 1 {
                    lastExpiry = now
                    do {
                        try await ledger.expireOverdue(now: now)
                        if try await ledger.resumePaused(now: now) > 0 { nudge.signal() }
                    } catch {
                        logger.error("the ledger refuses writes: claiming and sending stop until it accepts them", metadata: ["error": "\(error)"])
                        storeFault.withLock { $0 = "\(error)" }
                        continue
                    }
                }
                let finishedBefore = finishedCount.load(ordering: .sequentiallyConsistent)
                let busy = inFlight.withLock { $0 }
                var started = 0
                // Due now but held back by a queue's share or a rate limit: not idle yet.
                var heldBack = 0
                // When a held-back provider may go again.
                var gateWake: Date?
                if busy.count < concurrency {
                    let due: [Ledger.Due]
                    do {
                        due = try await ledger.due(
                            now: now, limit: (concurrency - busy.count) * 2, excluding: Set(busy.keys).union(attempted),
                            busyDebtors: Set(busy.values.map(\.debtor)))
                    } catch {
                        logger.error("cannot read due deliveries", metadata: ["error": "\(error)"])
                        storeFault.withLock { $0 = "\(error)" }
                        due = []
                    }
                    var perQueue: [String: Int] = [:]
                    for (_, held) in busy { perQueue[held.queue, default: 0] += 1 }
                    for item in due {
                        let current = inFlight.withLock { $0.count }
                        if current >= concurrency { break }
                        let cap = max(1, Int((Double(concurrency) * configuration.queue(item.queue).share).rounded(.down)))
                        if perQueue[item.queue, default: 0] >= cap {
                            heldBack += 1
                            continue
                        }
                        // Flow control: a rate limit waits for its token; an open breaker pauses the provider.
                        switch gates[item.key.channel]?.admit(now: clock()) ?? .go {
                        case .go: break
                        case .wait(let until):
                            gateWake = min(gateWake ?? until, until)
                            heldBack += 1
                            continue
                        case .paused(let until):
                            if !untilIdle { gateWake = min(gateWake ?? until, until) }
                            continue
                        }
                        perQueue[item.queue, default: 0] += 1
                        inFlight.withLock { $0[item.key] = (item.queue, item.reminder.debtor.id) }
                        if untilIdle { attempted.insert(item.key) }
                        started += 1
                        group.addTask {
                            await self.deliver(item)
                            self.inFlight.withLock { _ = $0.removeValue(forKey: item.key) }
                            self.finishedCount.add(1, ordering: .sequentiallyConsistent)
                            self.nudge.signal()
                        }
                    }
                }
                let stillBusy = inFlight.withLock { $0.count }
                if untilIdle && started == 0 && heldBack == 0 && stillBusy == 0 {
                    // Idle only if nothing finished meanwhile (a finished delivery may have added a fallback).
                    if finishedCount.load(ordering: .sequentiallyConsistent) == finishedBefore { break }
                    continue
                }
                if started == 0, let gateWake {
                    // Waiting for a token or the end of a provider's pause.
                    await nudge.wait(upTo: .milliseconds(Int64(max(5, min(1000, gateWake.timeIntervalSince(clock()) * 1000)))))
                    continue
                }
                // Held back while the queue's sends finished in between: look again at once.
                if started == 0 && heldBack > 0 && stillBusy == 0 { continue }
                if started == 0 || stillBusy >= concurrency {
                    // Sleep until a send finishes, new work is ingested, or the next due time.
                    var timeout = Duration.seconds(1)
                    if stillBusy == 0, let next = try? await ledger.nextDueDate(now: clock()) {
                        let wait = next.timeIntervalSince(clock())
                        timeout = .milliseconds(Int64(max(10, min(1000, wait * 1000))))
                    }
                    await nudge.wait(upTo: timeout)
                }
            }
        }
    }

    func deliver(_ due: Ledger.Due) async {
        let key = due.key
        var metadata: Logger.Metadata = ["relance.reminder.id": "\(key.reminderID)", "relance.delivery.channel": "\(key.channel.rawValue)"]
        let builder = self.builder
        // One snapshot of the policy for the whole delivery (a reload swaps it whole).
        let step = currentPolicy.withLock { $0 }
        let now = clock()
        let reminder: Reminder
        do {
            switch try await step.decide(due.reminder, channel: key.channel, paid: due.paid, now: now, ledger: ledger) {
            case .send(let r): reminder = r
            case .deferred(let until, let reason):
                if let expiry = due.expiresAt, until >= expiry {
                    try await ledger.expire(key, reason: "expired: the policy would defer it past expires_at (\(reason))", now: now)
                    logger.notice("expired: the policy defers it past expires_at", metadata: metadata.merging(["relance.reason": "\(reason)"]) { a, _ in a })
                } else {
                    try await ledger.deferDelivery(key, until: until, reason: reason, now: now)
                    logger.info("deferred by the contact policy", metadata: metadata.merging(["relance.reason": "\(reason)"]) { a, _ in a })
                }
                Counter(label: "relance_policy_decisions_total", dimensions: [("channel", key.channel.rawValue), ("decision", "deferred")]).increment()
                return
            case .cancel(let reason):
                try await ledger.cancelDelivery(key, reason: reason, now: now)
                logger.notice("cancelled: nothing left to pay", metadata: metadata)
                return
            case .fail(let reason):
                try await ledger.fail(key, recipient: due.reminder.debtor.address(on: key.channel) ?? "-", reason: reason, now: now)
                logger.error("not sent: \(reason)", metadata: metadata)
                return
            }
        } catch {
            logger.error("the policy step cannot read or write the ledger", metadata: metadata.merging(["error": "\(error)"]) { a, _ in a })
            storeFault.withLock { $0 = "\(error)" }
            return
        }
        // Grouping: the debtor's other reminders due now on this channel, same stage, locale and
        // recipient, go in this one message (a formal notice is never merged with a reminder).
        var group: [(due: Ledger.Due, reminder: Reminder)] = [(due, reminder)]
        if step.group {
            let recipient = { (r: Reminder) in r.debtor.address(on: key.channel)?.lowercased() }
            for other in (try? await ledger.groupCandidates(for: due, now: now, limit: 49)) ?? [] {
                guard other.reminder.stage == reminder.stage, other.reminder.debtor.locale == reminder.debtor.locale,
                    recipient(other.reminder) == recipient(reminder), let adjusted = other.reminder.applyingPayments(other.paid)
                else { continue }
                group.append((other, adjusted))
            }
        }
        let channel = key.channel
        // Agency mode: later letters recall the first one's reference and date (CPCE R124-4).
        var history: LetterHistory?
        if builder.settings.agency != nil,
            let first = try? await ledger.firstLetter(invoices: group.flatMap { $0.reminder.invoices.map(\.number) }, excluding: key)
        {
            let zone = TimeZone(identifier: reminder.debtor.timezone) ?? .gmt
            history = LetterHistory(reference: MessageBuilder.reference(first.key.reminderID, channel: first.key.channel), date: CivilDate(first.at, in: zone))
        }
        var message: OutgoingMessage
        do {
            let members = group.map(\.reminder)
            message = try await offPool { [history] in try builder.build(Reminder.merged(members), channel: channel, now: now, history: history) }
        } catch {
            // A merged message that cannot be built (too many SMS segments…): the lead goes alone.
            if group.count > 1, let alone = try? await offPool({ [history] in try builder.build(reminder, channel: channel, now: now, history: history) }) {
                group = [group[0]]
                message = alone
            } else {
                logger.error("delivery failed before sending", metadata: metadata.merging(["error": "\(error)"]) { a, _ in a })
                do {
                    try await ledger.fail(key, recipient: reminder.debtor.address(on: channel) ?? "-", reason: "\(error)", now: clock())
                } catch {
                    logger.error("cannot record failure", metadata: metadata.merging(["error": "\(error)"]) { a, _ in a })
                }
                counters.withLock { $0.failed += 1 }
                return
            }
        }
        if group.count > 1 { metadata["relance.group"] = "\(group.map(\.due.key.reminderID).joined(separator: ","))" }
        let transportName = key.channel == .email ? transports.emailName : transports.smsName
        metadata["relance.transport"] = "\(transportName)"
        // Each member is marked `sending` (or found cancelled, paused, held, suppressed) in one transaction.
        var marked: [(due: Ledger.Due, reminder: Reminder, attempt: Int)] = []
        do {
            let markedAt = clock()
            let cap = step.dailyCap(channel, now: markedAt)
            let marks = try await ledger.markGroup(
                group.map(\.due.key), transport: transportName, recipient: message.recipient, now: markedAt, dailyCap: cap.map { ($0.limit, $0.since) })
            for (member, mark) in zip(group, marks) {
                let memberMetadata = metadata.merging(["relance.reminder.id": "\(member.due.key.reminderID)"]) { _, b in b }
                switch mark {
                case .attempt(let n): marked.append((member.due, member.reminder, n))
                case .notPending: break
                case .held: logger.info("channel on hold (relance pause): not sent", metadata: memberMetadata)
                case .suppressed:
                    logger.notice("recipient opted out: not sent", metadata: memberMetadata)
                    Counter(label: "relance_deliveries_total", dimensions: [("channel", key.channel.rawValue), ("outcome", "suppressed")]).increment()
                case .cancelled(let reason):
                    logger.notice("cancelled before sending", metadata: memberMetadata.merging(["relance.reason": "\(reason)"]) { a, _ in a })
                    Counter(label: "relance_deliveries_total", dimensions: [("channel", key.channel.rawValue), ("outcome", "cancelled")]).increment()
                case .paused(let reason, _):
                    logger.notice("paused before sending", metadata: memberMetadata.merging(["relance.reason": "\(reason)"]) { a, _ in a })
                case .overDailyVolume:
                    if let deferral = cap?.deferral {
                        try await ledger.deferDelivery(member.due.key, until: deferral.until, reason: deferral.reason, now: markedAt)
                        logger.info("deferred by the daily volume cap", metadata: memberMetadata)
                    }
                }
            }
        } catch {
            logger.error("cannot record the intent to send; not sending", metadata: metadata.merging(["error": "\(error)"]) { a, _ in a })
            storeFault.withLock { $0 = "\(error)" }
            return
        }
        guard let first = marked.first else { return }
        if marked.count != group.count {
            // Some members were stopped at the last moment: the message lists only the others.
            let members = marked.map(\.reminder)
            do {
                message = try await offPool { [history] in try builder.build(Reminder.merged(members), channel: channel, now: now, history: history) }
            } catch {
                for member in marked {
                    try? await ledger.recordOutcome(
                        member.due.key, attempt: member.attempt, outcome: .permanent(code: nil, detail: "cannot build the message: \(error)"), retryAt: nil,
                        now: clock())
                }
                return
            }
        }
        let attempt = first.attempt
        metadata["relance.attempt"] = "\(attempt)"
        let outcome: SendOutcome
        let via: String
        let started = ContinuousClock.now
        switch message {
        case .email(let from, let to, let data): (outcome, via) = await transports.sendEmail(from, to, data)
        case .sms(let sms): (outcome, via) = await transports.sendSMS(sms, first.due.key.reminderID)
        }
        if via != transportName { metadata["relance.transport"] = "\(via)" }
        Timer(label: "relance_send_duration_seconds", dimensions: [("channel", key.channel.rawValue), ("transport", transportName)])
            .record(duration: ContinuousClock.now - started)
        let finished = clock()
        if case .transient = outcome {
            gates[key.channel]?.record(success: false, now: finished)
            if gates[key.channel]?.isOpen == true {
                logger.error("provider paused after repeated failures (circuit breaker open)", metadata: metadata)
            }
        } else {
            gates[key.channel]?.record(success: true, now: finished)
        }
        var retryAt: Date?
        for member in marked {
            retryAt = nil
            if case .transient(_, _, let retryAfter) = outcome {
                let schedule = configuration.delivery.retry.schedule
                retryAt = schedule.nextAttempt(
                    afterFailures: member.attempt, now: finished, firstAttempt: member.due.firstAttemptAt ?? now, random: Double.random(in: 0..<1))
                if let retryAfter, let r = retryAt { retryAt = max(r, finished.addingTimeInterval(retryAfter.seconds)) }
            }
            do {
                try await ledger.recordOutcome(member.due.key, attempt: member.attempt, outcome: outcome, retryAt: retryAt, now: finished, via: via)
            } catch {
                logger.critical(
                    "cannot record the outcome of a send; the delivery stays in doubt",
                    metadata: metadata.merging(["relance.reminder.id": "\(member.due.key.reminderID)", "error": "\(error)"]) { _, b in b })
            }
        }
        switch outcome {
        case .sent:
            counters.withLock { $0.sent += marked.count }
            Counter(label: "relance_deliveries_total", dimensions: [("channel", key.channel.rawValue), ("outcome", "sent")]).increment(by: marked.count)
            logger.info("sent", metadata: metadata)
        case .transient(let code, let detail, _):
            counters.withLock { $0.retried += 1 }
            Counter(label: "relance_deliveries_total", dimensions: [("channel", key.channel.rawValue), ("outcome", "transient")]).increment()
            logger.warning(
                "transient failure",
                metadata: metadata.merging([
                    "relance.code": "\(code.map(String.init) ?? "-")", "relance.detail": "\(detail)",
                    "relance.retry_at": "\(retryAt.map(Timestamp.format) ?? "never (lifetime over)")",
                ]) { a, _ in a })
        case .permanent(let code, let detail):
            counters.withLock { $0.failed += marked.count }
            logger.error(
                "permanent failure",
                metadata: metadata.merging(["relance.code": "\(code.map(String.init) ?? "-")", "relance.detail": "\(detail)"]) { a, _ in a })
        }
    }
}
