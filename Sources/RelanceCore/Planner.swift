/// A step an item already took, as recorded by a committed run.
public struct TakenStep: Sendable, Hashable {
    public var stage: String
    public var on: CivilDate

    public init(stage: String, on: CivilDate) {
        self.stage = stage
        self.on = on
    }
}

/// Everything the planner needs of one debtor, read in one snapshot of the receivables ledger.
public struct DebtorSnapshot: Sendable {
    public var debtor: ReceivableDebtor
    public var invoices: [ReceivableInvoice]
    public var movements: [ReceivableMovement]
    /// The steps each item took, in order.
    public var taken: [ItemID: [TakenStep]]

    public init(debtor: ReceivableDebtor, invoices: [ReceivableInvoice], movements: [ReceivableMovement], taken: [ItemID: [TakenStep]] = [:]) {
        self.debtor = debtor
        self.invoices = invoices
        self.movements = movements
        self.taken = taken
    }
}

/// Why an item is not chased at this run.
public enum HoldReason: String, Sendable, Hashable, CaseIterable, Codable {
    /// Settled by payments or credit notes (listed once, at the first run after it was being chased).
    case paid
    case writtenOff = "written_off"
    /// A dispute is open on the invoice (through its `closed_on` day).
    case disputed
    /// The debtor promised to pay (through `until`); a broken promise resumes at the next step.
    case promised
    case onHold = "on_hold"
    /// Outstanding below `plan.min_amount` for its currency.
    case belowMinimum = "below_minimum"
    /// Its step is due but the debtor has no channel it can receive.
    case noContact = "no_contact"
    /// It reached the hand-off step: litigation has it.
    case handedOff = "handed_off"
    /// Its next step is not due yet (`next_stage`, `next_on`), or the debtor's next contact is
    /// not yet allowed (`min_gap`, `after_payment`), or the ladder is finished (no next step).
    case notDue = "not_due"
}

/// An item in a planned reminder.
public struct PlannedItem: Sendable, Hashable {
    public var id: ItemID
    public var outstanding: MinorAmount
    public var dueOn: CivilDate
    public var issuedOn: CivilDate
    public var daysOverdue: Int
}

/// A reminder the plan creates (or, for a hand-off step, the items it hands to litigation).
public struct PlannedReminder: Sendable, Hashable {
    /// Derived from the debtor, the stage, the date and the item set: a second run at the same
    /// `as_of` plans the same id, which the ledger records once.
    public var id: String
    public var debtor: String
    public var stage: String
    public var action: LadderStep.Action
    /// Empty for a hand-off.
    public var channels: [Channel]
    /// The other channels the debtor can receive, tried if these fail for good.
    public var fallback: [Channel]
    public var items: [PlannedItem]
}

/// An item held at this run, with its reason.
public struct HeldItem: Sendable, Hashable {
    public var debtor: String
    public var item: ItemID
    public var reason: HoldReason
    /// Through which day the hold lasts, when it ends.
    public var until: CivilDate?
    public var nextStage: String?
    public var nextOn: CivilDate?
}

/// What a run decides: the reminders to create and the items held, with their reasons.
public struct Plan: Sendable {
    public var asOf: CivilDate
    public var reminders: [PlannedReminder]
    public var held: [HeldItem]

    public init(asOf: CivilDate, reminders: [PlannedReminder] = [], held: [HeldItem] = []) {
        self.asOf = asOf
        self.reminders = reminders
        self.held = held
    }
}

/// The dunning planner: a pure function of the ledger's snapshot, the rules and the date.
///
/// Rules (DESIGN.md): an open item climbs its ladder one step at a time, in order, never
/// skipping; a step is due at `due_on + at`; a courtesy step (`at < 0`) is dropped once the due
/// date has come. A run that advances any of a debtor's items is a contact; the next comes no
/// sooner than `min_gap` after it, nor than `after_payment` after a partial payment. At a contact
/// every item whose next step is due advances exactly one step; items at the same step go in one
/// reminder.
public enum Planner {
    /// The plan for every debtor. `previousRun`: the `as_of` of the last committed run, which
    /// bounds the settled items the plan lists (those settled since, that were being chased).
    public static func plan(_ snapshots: [DebtorSnapshot], rules: PlanRules, asOf: CivilDate, previousRun: CivilDate? = nil) -> Plan {
        var result = Plan(asOf: asOf)
        for snapshot in snapshots {
            let (reminders, held) = plan(snapshot, rules: rules, asOf: asOf, previousRun: previousRun)
            result.reminders += reminders
            result.held += held
        }
        return result
    }

    /// One debtor's part of the plan (the ledger streams debtors one at a time through this).
    public static func plan(
        _ snapshot: DebtorSnapshot, rules: PlanRules, asOf: CivilDate, previousRun: CivilDate? = nil
    ) -> (reminders: [PlannedReminder], held: [HeldItem]) {
        let debtorID = snapshot.debtor.debtor.id
        var ladder = snapshot.debtor.ladder.flatMap { rules.ladders[$0] } ?? rules.ladders["default"] ?? PlanRules.defaultLadder
        // The risk score's courtesy step, for the risky items only, on a ladder without one.
        var risky: Set<String> = []
        if let courtesy = rules.riskCourtesy, !ladder.steps.contains(where: { $0.at < 0 || $0.stage == courtesy.step.stage }) {
            risky = courtesy.riskyInvoices(snapshot, asOf: asOf)
            if !risky.isEmpty { ladder.steps.insert(courtesy.step, at: 0) }
        }
        let standing = DebtorStanding.compute(invoices: snapshot.invoices, movements: snapshot.movements, on: asOf)
        let issued = Dictionary(snapshot.invoices.map { ($0.number, $0.issuedOn) }, uniquingKeysWith: { a, _ in a })
        var held: [HeldItem] = []
        var due: [(step: Int, item: ItemStanding)] = []
        var waiting: [(item: ItemID, step: Int?, on: CivilDate?)] = []

        let lastContact = snapshot.taken.values.lazy.flatMap { $0 }.map(\.on).max()
        var nextContact: CivilDate?
        if let lastContact { nextContact = lastContact.adding(days: rules.minGap) }
        if let paid = standing.lastPartialPayment {
            let afterPayment = paid.adding(days: rules.afterPayment)
            nextContact = max(nextContact ?? afterPayment, afterPayment)
        }

        for item in standing.items {
            let taken = snapshot.taken[item.id] ?? []
            let lastIndex = taken.compactMap { step in ladder.steps.firstIndex { $0.stage == step.stage } }.max() ?? -1
            let handedOff = lastIndex >= 0 && ladder.steps[lastIndex].action == .handoff
            func hold(_ reason: HoldReason, until: CivilDate? = nil) {
                held.append(HeldItem(debtor: debtorID, item: item.id, reason: reason, until: until))
            }
            if let settled = item.settled {
                // Listed when it stopped a chase since the last run; older settlements are history.
                if !taken.isEmpty && !handedOff && previousRun.map({ settled.on >= $0 }) ?? true {
                    hold(settled.by == .paid ? .paid : .writtenOff)
                }
                continue
            }
            if handedOff {
                hold(.handedOff)
                continue
            }
            if let dispute = activeDispute(snapshot.movements, invoice: item.id.invoice, on: asOf) {
                hold(.disputed, until: dispute)
                continue
            }
            if let onHold = activeHold(snapshot.movements, invoice: item.id.invoice, on: asOf) {
                hold(.onHold, until: onHold)
                continue
            }
            if let promised = activePromise(snapshot.movements, invoice: item.id.invoice, on: asOf) {
                hold(.promised, until: promised)
                continue
            }
            if let minimum = rules.minAmount[item.currency], item.outstanding < minimum {
                hold(.belowMinimum)
                continue
            }
            var next = lastIndex + 1
            // A courtesy before the due date is dropped, not sent, once the due date has come; the
            // risk score's courtesy is only for the risky items.
            while next < ladder.steps.count && ladder.steps[next].at < 0
                && (asOf >= item.dueOn || (!risky.isEmpty && next == 0 && !risky.contains(item.id.invoice)))
            {
                next += 1
            }
            guard next < ladder.steps.count else {
                waiting.append((item.id, nil, nil))  // the ladder is finished
                continue
            }
            let stepOn = item.dueOn.adding(days: ladder.steps[next].at)
            if stepOn > asOf {
                waiting.append((item.id, next, stepOn))
            } else {
                due.append((next, item))
            }
        }

        func notDue(_ item: ItemID, step: Int?, on: CivilDate?) -> HeldItem {
            var nextOn = on
            if let on, let nextContact { nextOn = max(on, nextContact) }
            return HeldItem(debtor: debtorID, item: item, reason: .notDue, nextStage: step.map { ladder.steps[$0].stage }, nextOn: nextOn)
        }
        held += waiting.map { notDue($0.item, step: $0.step, on: $0.on) }

        guard !due.isEmpty else { return ([], held) }
        if let nextContact, asOf < nextContact {
            held += due.map { notDue($0.item.id, step: $0.step, on: nextContact) }
            return ([], held)
        }
        var reminders: [PlannedReminder] = []
        let reachable = snapshot.debtor.reachable
        for stepIndex in Set(due.map(\.step)).sorted() {
            let step = ladder.steps[stepIndex]
            let items = due.filter { $0.step == stepIndex }.map(\.item)
            var channels: [Channel] = []
            if step.action == .send {
                channels = step.channels.filter(reachable.contains)
                if channels.isEmpty { channels = reachable }
                guard !channels.isEmpty else {
                    held += items.map { HeldItem(debtor: debtorID, item: $0.id, reason: .noContact, nextStage: step.stage, nextOn: asOf) }
                    continue
                }
            }
            let planned = items.map {
                PlannedItem(
                    id: $0.id, outstanding: MinorAmount(units: $0.outstanding, currency: $0.currency), dueOn: $0.dueOn,
                    issuedOn: issued[$0.id.invoice] ?? $0.dueOn, daysOverdue: max(0, asOf.dayNumber - $0.dueOn.dayNumber))
            }
            reminders.append(
                PlannedReminder(
                    id: reminderID(debtor: debtorID, stage: step.stage, on: asOf, items: planned.map(\.id)), debtor: debtorID, stage: step.stage,
                    action: step.action, channels: channels, fallback: step.action == .send ? reachable.filter { !channels.contains($0) } : [],
                    items: planned))
        }
        return (reminders, held)
    }

    /// `plan-<debtor>-<stage>-<yyyymmdd>-<hash of the items>`, at most 128 characters (a long
    /// debtor id is replaced by its hash).
    public static func reminderID(debtor: String, stage: String, on date: CivilDate, items: [ItemID]) -> String {
        let day = String(date.description.filter { $0 != "-" })
        let itemHash = hex(fnv1a(items.sorted().map(\.description).joined(separator: "\n")))
        let id = "plan-\(debtor)-\(stage)-\(day)-\(itemHash)"
        return id.utf8.count <= 128 ? id : "plan-\(hex(fnv1a(debtor)))-\(stage)-\(day)-\(itemHash)"
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Through which day a dispute open on `asOf` holds the invoice (`CivilDate.distantFuture` while not closed).
    public static func activeDispute(_ movements: [ReceivableMovement], invoice: String, on asOf: CivilDate) -> CivilDate? {
        var until: CivilDate?
        for case .dispute(_, invoice, let opened, let closed, _) in movements where opened <= asOf && closed.map({ asOf <= $0 }) ?? true {
            let end = closed ?? .distantFuture
            until = max(until ?? end, end)
        }
        return until
    }

    public static func activeHold(_ movements: [ReceivableMovement], invoice: String, on asOf: CivilDate) -> CivilDate? {
        var until: CivilDate?
        for case .hold(_, let scope, let end, _, let from) in movements
        where scope.covers(invoice) && from.map({ $0 <= asOf }) ?? true && end.map({ asOf <= $0 }) ?? true {
            let last = end ?? .distantFuture
            until = max(until ?? last, last)
        }
        return until
    }

    public static func activePromise(_ movements: [ReceivableMovement], invoice: String, on asOf: CivilDate) -> CivilDate? {
        var until: CivilDate?
        for case .promise(_, let scope, _, let end, let made) in movements where scope.covers(invoice) && made.map({ $0 <= asOf }) ?? true && asOf <= end {
            until = max(until ?? end, end)
        }
        return until
    }
}

extension CivilDate {
    /// A date after any real one: an open-ended hold or dispute.
    public static let distantFuture = CivilDate(year: 9999, month: 12, day: 31)
}
