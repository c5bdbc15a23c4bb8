import Foundation
import Logging
import Metrics
import RelanceConfig
import RelanceCore
import RelanceSpool
import RelanceStore
import RelanceTemplates

/// One delivery, from one settings snapshot, as a sequence of named steps:
/// decide (the contact policy) → assemble (grouping, agency history, build) → claim (mark
/// `sending`) → send → settle (outcome, metrics). Every way out goes through `settle`, which says
/// what the state machine must hear: whether the provider was called and how it answered.
struct DeliveryRun {
    let due: Ledger.Due
    let settings: DispatchSettings
    let ledger: any LedgerStore
    let baseLogger: Logger
    let clock: @Sendable () -> Date

    init(due: Ledger.Due, settings: DispatchSettings, ledger: any LedgerStore, logger: Logger, clock: @escaping @Sendable () -> Date) {
        self.due = due
        self.settings = settings
        self.ledger = ledger
        self.clock = clock
        self.baseLogger = logger
    }

    /// The run's logger: every line names the reminder and the channel. Built when a line is
    /// written, not for every delivery (most write none at the default level).
    var logger: Logger {
        var logger = baseLogger
        logger[metadataKey: "relance.reminder.id"] = "\(due.key.reminderID)"
        logger[metadataKey: "relance.delivery.channel"] = "\(due.key.channel.rawValue)"
        return logger
    }

    var key: DeliveryKey { due.key }
    var channel: Channel { due.key.channel }

    /// What a run tells the dispatcher.
    struct Result: Sendable {
        var report: DispatchStateMachine.Report
        var counts = Counts()
        /// The ledger refused a read or a write: nothing more is sent until it accepts writes.
        var storeFault: (what: String, error: any Error)?
    }

    struct Counts: Sendable {
        var sent = 0
        var failed = 0
        var retried = 0
    }

    /// The reminders that go in one message, each with its payment-adjusted version.
    struct Assembly {
        var members: [(due: Ledger.Due, reminder: Reminder)]
        var history: LetterHistory?
        var message: OutgoingMessage
    }

    /// The members marked `sending`, with their attempt numbers, and the message that lists them.
    struct Claim {
        var members: [(due: Ledger.Due, reminder: Reminder, attempt: Int)]
        var message: OutgoingMessage
        var transport: String
    }

    func run() async -> Result {
        let now = clock()
        do {
            guard let (reminder, contacts) = try await decide(now: now) else { return settle(.notAttempted) }
            guard let assembly = try await assemble(reminder, now: now) else { return settle(.notAttempted, failed: 1) }
            guard let claim = try await claim(assembly, contacts: contacts) else { return settle(.notAttempted) }
            let (outcome, via) = await send(claim)
            return try await settle(claim, outcome: outcome, via: via, now: now)
        } catch let failure as SettleFailure {
            // The transport was called and its outcome could not be recorded: in doubt at the next start.
            return Result(report: failure.report, storeFault: ("cannot record the outcome of a send; the delivery stays in doubt", failure.error))
        } catch {
            return Result(report: .notAttempted, storeFault: ("the ledger refused a read or a write; not sending", error))
        }
    }

    // MARK: decide

    /// The contact policy's verdict, with the contact history it saw (the claim checks it again);
    /// nil when it settled the delivery without sending.
    func decide(now: Date) async throws -> (Reminder, Ledger.ContactFence)? {
        let debtor = due.reminder.debtor.id
        let fence: Ledger.ContactFence
        if let prefetched = due.prefetched {
            fence = .init(debtorID: debtor, reminderID: key.reminderID, since: prefetched.contactsSince, seen: prefetched.contacts)
        } else {
            let since = now.addingTimeInterval(-PolicyStep.contactHistory)
            fence = .init(
                debtorID: debtor, reminderID: key.reminderID, since: since,
                seen: try await ledger.contacts(debtorID: debtor, excludingReminder: key.reminderID, since: since))
        }
        switch try await settings.policy.decide(due.reminder, channel: channel, paid: due.paid, now: now, ledger: ledger, contacts: fence.seen) {
        case .send(let reminder): return (reminder, fence)
        case .deferred(let until, let reason):
            if let expiry = due.expiresAt, until >= expiry {
                try await ledger.expire(key, reason: "expired: the policy would defer it past expires_at (\(reason))", now: now)
                logger.notice("expired: the policy defers it past expires_at", metadata: ["relance.reason": "\(reason)"])
            } else {
                try await ledger.deferDelivery(key, until: until, reason: reason, now: now)
                logger.info("deferred by the contact policy", metadata: ["relance.reason": "\(reason)"])
            }
            Counter(label: "relance_policy_decisions_total", dimensions: [("channel", channel.rawValue), ("decision", "deferred")]).increment()
            return nil
        case .cancel(let reason):
            try await ledger.cancelDelivery(key, reason: reason, now: now)
            logger.notice("cancelled: nothing left to pay")
            return nil
        case .fail(let reason):
            try await ledger.fail(key, recipient: due.reminder.debtor.address(on: channel) ?? "-", reason: reason, now: now)
            logger.error("not sent: \(reason)")
            return nil
        }
    }

    // MARK: assemble

    /// At most this many other reminders join one message (50 in all).
    static let groupLimit = 49

    /// The debtor's other reminders due now on this channel (same stage, locale and recipient) go
    /// in this one message; in agency mode, later letters recall the first one (CPCE R124-4).
    /// Nil when the message cannot be built (recorded as failed).
    func assemble(_ reminder: Reminder, now: Date) async throws -> Assembly? {
        var members: [(due: Ledger.Due, reminder: Reminder)] = [(due, reminder)]
        if settings.policy.group {
            let recipient = { (r: Reminder) in r.debtor.address(on: channel)?.lowercased() }
            let candidates: [Ledger.Due]
            if let prefetched = due.prefetched?.groupCandidates {
                candidates = prefetched
            } else {
                candidates = try await ledger.groupCandidates(for: due, now: now, limit: Self.groupLimit)
            }
            for other in candidates {
                guard other.reminder.stage == reminder.stage, other.reminder.debtor.locale == reminder.debtor.locale,
                    recipient(other.reminder) == recipient(reminder), let adjusted = other.reminder.applyingPayments(other.paid)
                else { continue }
                members.append((other, adjusted))
            }
        }
        var history: LetterHistory?
        if settings.builder.settings.agency != nil,
            let first = try await ledger.firstLetter(invoices: members.flatMap { $0.reminder.invoices.map(\.number) }, excluding: key)
        {
            let zone = TimeZone(identifier: reminder.debtor.timezone) ?? .gmt
            history = LetterHistory(reference: MessageBuilder.reference(first.key.reminderID, channel: first.key.channel), date: CivilDate(first.at, in: zone))
        }
        do {
            return Assembly(members: members, history: history, message: try await build(members.map(\.reminder), history: history, now: now))
        } catch  where members.count > 1 {
            // A merged message that cannot be built (too many SMS segments…): the lead goes alone.
            logger.info("the grouped message cannot be built; the reminder goes alone", metadata: ["error": "\(error)"])
        } catch {
            try await failBeforeSending(reminder, error)
            return nil
        }
        do {
            return Assembly(members: [members[0]], history: history, message: try await build([reminder], history: history, now: now))
        } catch {
            try await failBeforeSending(reminder, error)
            return nil
        }
    }

    /// Renders and composes: in place (CPU only, well under a millisecond), or off the cooperative
    /// pool when attachments must be read from disk.
    func build(_ reminders: [Reminder], history: LetterHistory?, now: Date) async throws -> OutgoingMessage {
        let (builder, channel) = (settings.builder, channel)
        let merged = Reminder.merged(reminders)
        guard channel == .email && !merged.attachments.isEmpty else { return try builder.build(merged, channel: channel, now: now, history: history) }
        return try await offPool { try builder.build(merged, channel: channel, now: now, history: history) }
    }

    func failBeforeSending(_ reminder: Reminder, _ error: any Error) async throws {
        logger.error("delivery failed before sending", metadata: ["error": "\(error)"])
        try await ledger.fail(key, recipient: reminder.debtor.address(on: channel) ?? "-", reason: "\(error)", now: clock())
    }

    // MARK: claim

    /// Marks every member `sending` in one transaction (or finds it cancelled, paused, held,
    /// suppressed, over the daily volume, or its debtor contacted since `contacts` was read).
    /// Nil when none is marked.
    func claim(_ assembly: Assembly, contacts: Ledger.ContactFence) async throws -> Claim? {
        let transport = channel == .email ? settings.transports.emailName : settings.transports.smsName
        let markedAt = clock()
        let cap = settings.policy.dailyCap(channel, now: markedAt)
        let marks = try await ledger.markGroup(
            assembly.members.map(\.due.key), transport: transport, recipient: assembly.message.recipient, now: markedAt,
            dailyCap: cap.map { ($0.limit, $0.since) }, contacts: contacts)
        var marked: [(due: Ledger.Due, reminder: Reminder, attempt: Int)] = []
        for (member, mark) in zip(assembly.members, marks) {
            func memberLogger() -> Logger { logger.with("relance.reminder.id", member.due.key.reminderID) }
            switch mark {
            case .attempt(let n): marked.append((member.due, member.reminder, n))
            case .notPending: break
            case .held: memberLogger().info("channel on hold (relance pause): not sent")
            case .suppressed:
                memberLogger().notice("recipient opted out: not sent")
                Counter(label: "relance_deliveries_total", dimensions: [("channel", channel.rawValue), ("outcome", "suppressed")]).increment()
            case .cancelled(let reason):
                memberLogger().notice("cancelled before sending", metadata: ["relance.reason": "\(reason)"])
                Counter(label: "relance_deliveries_total", dimensions: [("channel", channel.rawValue), ("outcome", "cancelled")]).increment()
            case .paused(let reason, _):
                memberLogger().notice("paused before sending", metadata: ["relance.reason": "\(reason)"])
            case .contactedMeanwhile:
                // Another node reached the debtor since the policy read its history: still pending
                // and due, so the next look decides again (its frequency caps now count that contact).
                memberLogger().info("the debtor was contacted meanwhile (another node): the contact policy decides again")
            case .overDailyVolume:
                if let deferral = cap?.deferral {
                    try await ledger.deferDelivery(member.due.key, until: deferral.until, reason: deferral.reason, now: markedAt)
                    memberLogger().info("deferred by the daily volume cap")
                }
            }
        }
        guard !marked.isEmpty else { return nil }
        var message = assembly.message
        if marked.count != assembly.members.count {
            // Some members were stopped at the last moment: the message lists only the others.
            do {
                message = try await build(marked.map(\.reminder), history: assembly.history, now: markedAt)
            } catch {
                for member in marked {
                    try await ledger.recordOutcome(
                        member.due.key, attempt: member.attempt, outcome: .permanent(code: nil, detail: "cannot build the message: \(error)"), retryAt: nil,
                        now: clock())
                }
                logger.error("the message cannot be rebuilt without the members stopped at the last moment", metadata: ["error": "\(error)"])
                return nil
            }
        }
        return Claim(members: marked, message: message, transport: transport)
    }

    // MARK: send

    func send(_ claim: Claim) async -> (SendOutcome, via: String) {
        let started = ContinuousClock.now
        // Several nodes: the claim's lease is renewed while the call runs, so no other node takes
        // a long send for one whose node stopped.
        let renewal = ledger.claimRenewalInterval.map { interval in
            Task { [ledger, clock, logger] in
                let keys = claim.members.map(\.due.key)
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    if Task.isCancelled { return }
                    do { try await ledger.renewClaims(keys, now: clock()) } catch { logger.warning("cannot renew a claim's lease", metadata: ["error": "\(error)"]) }
                }
            }
        }
        defer { renewal?.cancel() }
        let result: (SendOutcome, via: String)
        switch claim.message {
        case .email(let from, let to, let data): result = await settings.transports.sendEmail(from, to, data)
        case .sms(let sms): result = await settings.transports.sendSMS(sms, claim.members[0].due.key.reminderID)
        }
        Timer(label: "relance_send_duration_seconds", dimensions: [("channel", channel.rawValue), ("transport", claim.transport)])
            .record(duration: ContinuousClock.now - started)
        return result
    }

    // MARK: settle

    /// An outcome that could not be recorded: the provider's answer still counts for its breaker.
    struct SettleFailure: Error {
        var report: DispatchStateMachine.Report
        var error: any Error
    }

    /// A run that ended without a transport call.
    func settle(_ report: DispatchStateMachine.Report, failed: Int = 0) -> Result {
        Result(report: report, counts: Counts(failed: failed))
    }

    /// Records the outcome for every member, counts and logs it.
    func settle(_ claim: Claim, outcome: SendOutcome, via: String, now: Date) async throws -> Result {
        let report: DispatchStateMachine.Report = outcome.isProviderFailure ? .providerFailed : .providerWorked
        let finished = clock()
        // Built only for a line that is written (every delivery settles; few log at the default level).
        var metadata: Logger.Metadata {
            var metadata: Logger.Metadata = ["relance.attempt": "\(claim.members[0].attempt)", "relance.transport": "\(via)"]
            if claim.members.count > 1 { metadata["relance.group"] = "\(claim.members.map(\.due.key.reminderID).joined(separator: ","))" }
            return metadata
        }
        var retryAt: Date?
        for member in claim.members {
            retryAt = nil
            if case .transient(_, _, let retryAfter) = outcome {
                retryAt = settings.retry.nextAttempt(
                    afterFailures: member.attempt, now: finished, firstAttempt: member.due.firstAttemptAt ?? now, random: Double.random(in: 0..<1))
                if let retryAfter, let r = retryAt { retryAt = max(r, finished.addingTimeInterval(retryAfter.seconds)) }
            }
            do {
                try await ledger.recordOutcome(
                    member.due.key, attempt: member.attempt, outcome: outcome, retryAt: retryAt, now: finished, via: via == claim.transport ? nil : via)
            } catch {
                logger.critical(
                    "cannot record the outcome of a send; the delivery stays in doubt",
                    metadata: metadata.merging(["relance.reminder.id": "\(member.due.key.reminderID)", "error": "\(error)"]) { _, b in b })
                throw SettleFailure(report: report, error: error)
            }
        }
        var counts = Counts()
        let label: String
        switch outcome {
        case .sent:
            counts.sent = claim.members.count
            label = "sent"
            if baseLogger.logLevel <= .info { logger.info("sent", metadata: metadata) }
        case .transient(let code, let detail, _):
            counts.retried = 1
            label = "transient"
            logger.warning(
                "transient failure",
                metadata: metadata.merging([
                    "relance.code": "\(code.map(String.init) ?? "-")", "relance.detail": "\(detail)",
                    "relance.retry_at": "\(retryAt.map(Timestamp.format) ?? "never (lifetime over)")",
                ]) { a, _ in a })
        case .permanent(let code, let detail):
            counts.failed = claim.members.count
            label = "permanent"
            logger.error(
                "permanent failure",
                metadata: metadata.merging(["relance.code": "\(code.map(String.init) ?? "-")", "relance.detail": "\(detail)"]) { a, _ in a })
        case .inDoubt(let detail):
            label = "unknown"
            logger.critical(
                "in doubt: the whole message was sent and no answer came; not resent, settle it with relance resolve",
                metadata: metadata.merging(["relance.detail": "\(detail)"]) { a, _ in a })
        }
        Counter(label: "relance_deliveries_total", dimensions: [("channel", channel.rawValue), ("outcome", label)]).increment(by: claim.members.count)
        return Result(report: report, counts: counts)
    }
}

extension Logger {
    /// A copy with one more metadata value.
    func with(_ key: String, _ value: String) -> Logger {
        var copy = self
        copy[metadataKey: key] = "\(value)"
        return copy
    }
}
