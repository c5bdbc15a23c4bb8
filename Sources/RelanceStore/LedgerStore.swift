import Foundation
import RelanceCore

/// What the dispatcher, intake, the webhooks and the daemon's services need of the ledger. SQLite
/// (`Ledger`) is one implementation; another backend (PostgreSQL for several nodes) implements the
/// same protocol and passes the same conformance suite (`Tests/RelanceStoreTests/LedgerStoreConformance`),
/// without any change to the code that uses it.
///
/// The contract every implementation keeps (the suite checks each point):
/// - A delivery moves only along `DeliveryStatus.canMove`, and every move is one event.
/// - `markGroup` is the intent to send, durable before it returns: it checks kill switches,
///   cancellations and pauses, the suppression list and the daily volume in the same transaction.
/// - `recordOutcome`, `apply` and the other writes on the send path are durable before they return
///   (they may share a transaction with concurrent writes: group commit).
/// - `due` hands out at most one delivery per debtor, highest priority, then riskiest band, then
///   oldest first, and never one that `skip` names; what it prefetches was true in the snapshot it read.
/// - Ingest is idempotent on the reminder id: the same content is a duplicate, other content a conflict.
///
/// The value types (`Ledger.Due`, `Ledger.Mark`, …) are shared by every implementation.
///
/// `LedgerStore` is every capability at once; each capability is its own protocol below (intake,
/// scheduling, policy, sending, callbacks, bounces, score, reconciliation, retention, health,
/// receivables), so that code can ask for only what it uses and a new backend can be built and
/// checked one capability at a time.
public typealias LedgerStore = IntakeStore & SchedulingStore & PolicyStore & SendingStore & CallbackStore & BounceStore & ScoreStore
    & ReconciliationStore & RetentionStore & HealthStore & ReceivablesStore & AuditStore

/// What an operator reads and settles by hand: receipts, a reminder's events and callbacks, an
/// in-doubt delivery resolved, an opt-out lifted.
public protocol AuditStore: AnyObject, Sendable {
    /// Receipts as `filter` says, oldest first, streamed to `body` (never all in memory).
    func receipts(_ filter: ReceiptFilter, _ body: @escaping @Sendable (Receipt) throws -> Void) async throws
    /// A reminder's status changes, oldest first.
    func events(reminderID: String) async throws -> [DeliveryEvent]
    /// The callbacks kept for one reminder (or every orphan, with nil), oldest first.
    func callbacks(reminderID: String?) async throws -> [CallbackRecord]
    /// An in-doubt delivery settled (by an operator, or after asking the provider):
    /// `unknown → sent`, or `unknown → pending` due now; `reason` is the event's.
    func resolve(_ key: DeliveryKey, as resolution: Ledger.Resolution, reason: String, now: Date) async throws
    /// Removes an address or number from the suppression list; whether it was there.
    func unsuppress(_ address: String) async throws -> Bool
}

/// Spool intake.
public protocol IntakeStore: AnyObject, Sendable {
    /// Records the reminders of one spool file in one transaction, idempotently on their ids.
    func ingest(_ reminders: [EncodedReminder], sourceFile: String, queue: String, priority: Int, now: Date) async throws -> Ledger.IngestResult
    func presence(of reminder: Reminder) async throws -> Ledger.Presence
    /// The spool file a reminder came from.
    func sourceFile(reminderID: String) async throws -> String?
}

/// What is due, in the dispatcher's order.
public protocol SchedulingStore: AnyObject, Sendable {
    /// The first `limit` deliveries due at `now` in the dispatcher's order (priority, risk band,
    /// age), at most one per debtor, none that `skip` names, and of each queue and on each channel
    /// at most its `room` (a queue or channel without room is not read: its backlog hides nothing).
    func due(
        now: Date, limit: Int, prefetch: Ledger.Prefetch?, room: DueRoom, skip: @escaping @Sendable (DeliveryKey, _ debtor: String) -> Bool
    ) async throws -> [Ledger.Due]
    func dueKeys(now: Date) async throws -> [DeliveryKey]
    func pendingDelivery(_ key: DeliveryKey) async throws -> Ledger.Due?
    func nextDueDate(now: Date) async throws -> Date?
    @discardableResult func expireOverdue(now: Date) async throws -> Int
}

/// The contact policy's reads and decisions, and cancellations.
public protocol PolicyStore: AnyObject, Sendable {
    /// Records a cancellation (or pause, or partial payment) and applies it to what is waiting.
    func cancel(_ request: CancellationRequest, source: String, origin: String?, now: Date) async throws -> Ledger.CancelResult
    /// Paused deliveries whose pause ended go back to pending (unless another is in force).
    func resumePaused(now: Date) async throws -> Int
    func contacts(debtorID: String, excludingReminder reminderID: String, since: Date) async throws -> [Date]
    func attemptCount(channel: Channel, since: Date) async throws -> Int
    func groupCandidates(for lead: Ledger.Due, now: Date, limit: Int) async throws -> [Ledger.Due]
    func firstLetter(invoices: [String], excluding key: DeliveryKey) async throws -> (key: DeliveryKey, at: Date)?
    func holds(now: Date) async throws -> [Ledger.Hold]
    /// Kill switch: holds one channel (nil: every channel) until `until` (nil: until released).
    func hold(channel: Channel?, until: Date?, reason: String, now: Date) async throws
    /// Lifts the kill switches of one channel (nil: every one); returns how many were lifted.
    func releaseHold(channel: Channel?) async throws -> Int
    /// Lifts the pauses recorded for a scope (`relance resume --invoice …`); returns how many.
    func lift(scope: CancellationRequest.Scope, value: String, now: Date) async throws -> Int
    func blocker(for reminder: Reminder, channel: Channel, recipient: String?, sourceFile: String?, now: Date) async throws -> String?
    /// Partial payments recorded on these invoices: invoice number → total paid.
    func paymentsFor(invoices: [String]) async throws -> [String: String]
    func deferDelivery(_ key: DeliveryKey, until: Date, reason: String, now: Date) async throws
    func expire(_ key: DeliveryKey, reason: String, now: Date) async throws
    func cancelDelivery(_ key: DeliveryKey, reason: String, now: Date) async throws
}

/// The send path: the intent to send, its outcome, and what a crash left in flight.
public protocol SendingStore: AnyObject, Sendable {
    func markGroup(
        _ keys: [DeliveryKey], transport: String, recipient: String, now: Date, dailyCap: (limit: Int, since: Date)?, contacts: Ledger.ContactFence?
    ) async throws -> [Ledger.Mark]
    func recordOutcome(_ key: DeliveryKey, attempt: Int, outcome: SendOutcome, retryAt: Date?, now: Date, via: String?) async throws
    func fail(_ key: DeliveryKey, recipient: String, reason: String, now: Date) async throws
    /// At start-up: what a crash left `sending` becomes `unknown` (or `pending` with `resend`).
    func recoverInDoubt(resend: Bool, now: Date) async throws -> [DeliveryKey]
    /// While running, with several nodes: the claims whose lease lapsed (their node stopped, froze
    /// or was cut off) become in doubt as after a crash. A store without leases has none.
    func rescueLapsedClaims(resend: Bool, now: Date) async throws -> [DeliveryKey]
    /// How often a claim must be renewed while its transport call runs (a third of its lease);
    /// nil when claims carry no lease.
    var claimRenewalInterval: Duration? { get }
    /// Renews this node's running claims on these deliveries: their lease starts again at `now`.
    func renewClaims(_ keys: [DeliveryKey], now: Date) async throws
}

/// Status callbacks and opt-outs.
public protocol CallbackStore: AnyObject, Sendable {
    func apply(_ callback: StatusCallback, replayID: String?, now: Date, orphanTTL: Duration, replayWindow: Duration) async throws
        -> CallbackResult
    func suppress(_ address: String, reason: String, source: String, now: Date) async throws
    func forEachSuppression(_ body: @escaping @Sendable (Ledger.Suppression) throws -> Void) async throws
}

/// Bounces.
public protocol BounceStore: AnyObject, Sendable {
    func applyBounce(_ notice: BounceNotice, rules: BounceRules, now: Date) async throws -> BounceResult
    func bounceCounts(since: Date) async throws -> [(channel: String, left: Int, bounced: Int)]
}

/// The risk score's models and the debtors' bands.
public protocol ScoreStore: AnyObject, Sendable {
    func saveScoreModel(_ model: ScoreModel, trainedAt: Date) async throws
    func latestScoreModel() async throws -> (model: ScoreModel, trainedAt: Date)?
    /// Replaces every debtor's risk band (0 lowest … 4 highest) with these, and gives the deliveries
    /// not settled yet their debtor's band (`Ledger.unscoredBand` for a debtor left out): `due`
    /// orders by it within a priority. New deliveries take their debtor's band when recorded.
    func replaceRiskBands(_ bands: [(debtor: String, band: Int)]) async throws
    func riskBand(debtorID: String) async throws -> Int?
}

/// SMS reconciliation.
public protocol ReconciliationStore: AnyObject, Sendable {
    func pollCandidates(dueBy: Date, limit: Int) async throws -> [Ledger.PollCandidate]
    func polled(_ key: DeliveryKey, next: Date?, giveUp: String?, now: Date) async throws
}

/// Retention and the right to erasure.
public protocol RetentionStore: AnyObject, Sendable {
    func retentionCandidates(before cutoff: Date, limit: Int) async throws -> [String]
    func reminderIDs(debtorID: String) async throws -> [String]
    func erase(reminderIDs: [String], reason: String, now: Date) async throws -> Ledger.Erasure
    /// Erases a debtor's contact details in the receivables ledger and its risk band.
    func eraseReceivablesDebtor(_ id: String, now: Date) async throws -> Bool
}

/// Health and queue depths.
public protocol HealthStore: AnyObject, Sendable {
    /// Why the store refuses a write now, or nil when it accepts them.
    func writeProblem(now: Date) async -> String?
    func statusCounts() async throws -> [(channel: String, status: String, count: Int)]
    /// Deliveries with their status, optionally of one reminder or in one status.
    func deliveries(reminderID: String?, status: DeliveryStatus?) async throws -> [DeliverySummary]
    /// The latest deliveries that went wrong (failed, in doubt, expired, opted out, bounced, or
    /// waiting after an error), newest first.
    func lastProblems(limit: Int) async throws -> [Ledger.Problem]
    /// The nodes that share the store, with when each was last seen and how many claims each
    /// holds (none for a one-daemon store).
    func clusterNodes() async throws -> [Ledger.ClusterNode]
}

/// Shorter forms of the requirements, with their usual arguments.
extension HealthStore {
    public func deliveries(reminderID: String) async throws -> [DeliverySummary] { try await deliveries(reminderID: reminderID, status: nil) }
}

extension PolicyStore {
    public func cancel(_ request: CancellationRequest, source: String, now: Date) async throws -> Ledger.CancelResult {
        try await cancel(request, source: source, origin: nil, now: now)
    }
}

extension IntakeStore {
    /// `ingest` of reminders not encoded yet (tests, tools).
    public func ingest(_ reminders: [Reminder], sourceFile: String, queue: String, priority: Int, now: Date) async throws -> Ledger.IngestResult {
        try await ingest(reminders.map(EncodedReminder.init), sourceFile: sourceFile, queue: queue, priority: priority, now: now)
    }
}

extension AuditStore {
    /// `relance resolve`: the decision recorded with the operator's name.
    public func resolve(_ key: DeliveryKey, as resolution: Ledger.Resolution, operator name: String, now: Date) async throws {
        try await resolve(key, as: resolution, reason: "resolved by \(name) as \(resolution.rawValue) (relance resolve)", now: now)
    }
}

extension SendingStore {
    public func markGroup(_ keys: [DeliveryKey], transport: String, recipient: String, now: Date) async throws -> [Ledger.Mark] {
        try await markGroup(keys, transport: transport, recipient: recipient, now: now, dailyCap: nil, contacts: nil)
    }

    /// `markGroup` without a contact history to check (tools, tests).
    public func markGroup(
        _ keys: [DeliveryKey], transport: String, recipient: String, now: Date, dailyCap: (limit: Int, since: Date)?
    ) async throws -> [Ledger.Mark] {
        try await markGroup(keys, transport: transport, recipient: recipient, now: now, dailyCap: dailyCap, contacts: nil)
    }

    /// One delivery's `markGroup`, reduced to the attempt number (nil when not marked).
    public func markSending(_ key: DeliveryKey, transport: String, recipient: String, now: Date) async throws -> Int? {
        if case .attempt(let n) = try await markGroup([key], transport: transport, recipient: recipient, now: now, dailyCap: nil, contacts: nil).first { return n }
        return nil
    }

    public func recordOutcome(_ key: DeliveryKey, attempt: Int, outcome: SendOutcome, retryAt: Date?, now: Date) async throws {
        try await recordOutcome(key, attempt: attempt, outcome: outcome, retryAt: retryAt, now: now, via: nil)
    }
}

extension SchedulingStore {
    /// `due` without queue shares or rate limits (tools, tests).
    public func due(
        now: Date, limit: Int, prefetch: Ledger.Prefetch? = nil, skip: @escaping @Sendable (DeliveryKey, _ debtor: String) -> Bool = { _, _ in false }
    ) async throws -> [Ledger.Due] {
        try await due(now: now, limit: limit, prefetch: prefetch, room: .unlimited, skip: skip)
    }
}

extension CallbackStore {
    public func apply(_ callback: StatusCallback, replayID: String? = nil, now: Date, orphanTTL: Duration = .seconds(86400)) async throws
        -> CallbackResult
    {
        try await apply(callback, replayID: replayID, now: now, orphanTTL: orphanTTL, replayWindow: .seconds(86400))
    }
}

extension Ledger: IntakeStore, SchedulingStore, PolicyStore, SendingStore, CallbackStore, BounceStore, ScoreStore, ReconciliationStore,
    RetentionStore, HealthStore, AuditStore
{}
