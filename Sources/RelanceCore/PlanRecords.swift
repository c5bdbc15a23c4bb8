import Foundation

/// A planned reminder as a spool record (version 1), so that it goes through the same validation,
/// policy, templates, transports and receipts as a reminder a producer dropped.
public enum PlanRecords {
    /// The record of `planned`: one invoice line per invoice (the instalments of one invoice at the
    /// same step add up, due on the earliest), the invoices' documents attached, the payment link
    /// when the reminder is about one invoice. It expires at `expiresAt`: a planned reminder that
    /// could not go out before the next step is not sent late.
    public static func record(_ planned: PlannedReminder, debtor: Debtor, invoices: [String: ReceivableInvoice], expiresAt: Date) -> JSONValue {
        var lines: [(number: String, amount: Int64, currency: String, issued: CivilDate, due: CivilDate)] = []
        for item in planned.items {
            if let i = lines.firstIndex(where: { $0.number == item.id.invoice }) {
                lines[i].amount += item.outstanding.units
                lines[i].due = min(lines[i].due, item.dueOn)
            } else {
                lines.append((item.id.invoice, item.outstanding.units, item.outstanding.currency, item.issuedOn, item.dueOn))
            }
        }
        var debtorObject: [String: JSONValue] = [
            "id": .string(debtor.id), "name": .string(debtor.name), "country": .string(debtor.country), "locale": .string(debtor.locale),
            "timezone": .string(debtor.timezone), "kind": .string(debtor.kind.rawValue),
        ]
        if let email = debtor.email { debtorObject["email"] = .string(email) }
        if let phone = debtor.phone { debtorObject["phone"] = .string(phone) }
        var root: [String: JSONValue] = [
            "id": .string(planned.id), "stage": .string(planned.stage), "channels": .array(planned.channels.map { .string($0.rawValue) }),
            "expires_at": .string(Timestamp.format(expiresAt)), "debtor": .object(debtorObject),
            "invoices": .array(
                lines.map {
                    .object([
                        "number": .string($0.number), "amount": .string(MinorAmount(units: $0.amount, currency: $0.currency).text),
                        "currency": .string($0.currency), "issued_on": .string($0.issued.description), "due_on": .string(max($0.due, $0.issued).description),
                    ])
                }),
        ]
        if !planned.fallback.isEmpty { root["fallback"] = .array(planned.fallback.map { .string($0.rawValue) }) }
        let numbers = lines.map(\.number)
        if numbers.count == 1, let url = invoices[numbers[0]]?.paymentURL { root["payment_url"] = .string(url) }
        var documents: [String] = []
        for number in numbers { if let document = invoices[number]?.document, !documents.contains(document) { documents.append(document) } }
        if !documents.isEmpty { root["attachments"] = .array(documents.map { .string($0) }) }
        return .object(root)
    }
}

/// One item taking one step of the ladder at a committed run.
public struct PlanStepRecord: Sendable, Hashable {
    public var item: ItemID
    public var stage: String
    /// The reminder that carries it; for a hand-off, which sends nothing, the planned id no reminder row has.
    public var reminderID: String

    public init(item: ItemID, stage: String, reminderID: String) {
        self.item = item
        self.stage = stage
        self.reminderID = reminderID
    }
}

/// What a run commits for one debtor: its reminders, already validated as spool records, and the
/// steps its items take.
public struct DebtorPlanCommit: Sendable {
    public var reminders: [EncodedReminder] = []
    public var steps: [PlanStepRecord] = []
    public var held = 0
    public var handoffs = 0
    /// Planned reminders that failed validation (id, why): their items take no step.
    public var rejected: [(id: String, reason: String)] = []

    public init() {}
}

extension PlanRecords {
    /// What a committed run records for one debtor: the planner's decisions, each planned
    /// reminder as a spool record through the spool's own validation (a rejected one takes no step).
    public static func commit(
        _ snapshot: DebtorSnapshot, previousRun: CivilDate?, rules: PlanRules, date: CivilDate, expiresAt: Date, validator: RecordValidator
    ) -> DebtorPlanCommit {
        let part = Planner.plan(snapshot, rules: rules, asOf: date, previousRun: previousRun)
        var commit = DebtorPlanCommit()
        commit.held = part.held.count
        let invoices = Dictionary(snapshot.invoices.map { ($0.number, $0) }, uniquingKeysWith: { a, _ in a })
        for planned in part.reminders {
            let steps = planned.items.map { PlanStepRecord(item: $0.id, stage: planned.stage, reminderID: planned.id) }
            if planned.action == .handoff {
                commit.handoffs += planned.items.count
                commit.steps += steps
                continue
            }
            switch validator.validate(record(planned, debtor: snapshot.debtor.debtor, invoices: invoices, expiresAt: expiresAt)) {
            case .success(let reminder):
                commit.reminders.append(EncodedReminder(reminder))
                commit.steps += steps
            case .failure(let issues):
                commit.rejected.append((planned.id, issues.issues.map(\.description).joined(separator: "; ")))
            }
        }
        return commit
    }
}
