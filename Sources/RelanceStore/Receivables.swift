import Foundation
import GRDB
import RelanceCore

/// The receivables ledger: debtors, invoices and their instalments, movements (payments, credit
/// notes, write-offs, disputes, promises, holds), each change an event. Outstanding amounts are
/// never stored: the planner and the reports derive them (`DebtorStanding`).
public protocol ReceivablesStore: AnyObject, Sendable {
    /// Records one file's records in one transaction; re-importing the same file changes nothing.
    func importReceivables(_ records: [ReceivablesImport.Line], source: String, defaults: ReceivablesImport.Defaults, now: Date) async throws
        -> ReceivablesImport.Result
    /// Every debtor's snapshot (or one debtor's), in debtor id order, one at a time.
    func forEachDebtorSnapshot(debtor: String?, _ body: @escaping @Sendable (DebtorSnapshot) throws -> Void) async throws
    /// Every debtor's snapshot with the reminders that reached a transport, for `relance report`.
    func forEachReportSnapshot(_ body: @escaping @Sendable (DebtorSnapshot, [SentReminder]) throws -> Void) async throws
    /// Deliveries per channel and status as they stood at `asOf` (from their events).
    func deliveryCounts(asOf: Date) async throws -> [(channel: String, stage: String, status: String, count: Int)]
    /// The `as_of` of the last committed plan run, if any.
    func lastPlanRun() async throws -> CivilDate?
    /// When the last plan run was committed, if any.
    func lastPlanCommit() async throws -> Date?
    /// Every reminder about an invoice (planned or from the spool), each channel's delivery, for
    /// the hand-off export.
    func reminderHistory(invoice: String) async throws -> [ReminderTrace]
    /// Commits a plan run as of `date`, all or nothing, planning each debtor inside the transaction.
    func commitPlan(
        asOf: Date, date: CivilDate, now: Date, _ plan: @escaping @Sendable (DebtorSnapshot, _ previousRun: CivilDate?) throws -> DebtorPlanCommit
    ) async throws -> PlanCommitResult
}

/// One delivery of a reminder about an invoice: what a lawyer needs to show the debtor was told.
public struct ReminderTrace: Sendable, Hashable {
    public var reminderID: String
    public var stage: String
    public var channel: String
    public var status: String
    /// When it went out (its first attempt that reached the transport), if it did.
    public var sentAt: Date?
    public var recipient: String?

    public init(reminderID: String, stage: String, channel: String, status: String, sentAt: Date?, recipient: String?) {
        self.reminderID = reminderID
        self.stage = stage
        self.channel = channel
        self.status = status
        self.sentAt = sentAt
        self.recipient = recipient
    }
}

public enum ReceivablesImport {
    /// A validated record and the line it came from.
    public struct Line: Sendable {
        public var line: Int
        public var record: ReceivableRecord
        public init(line: Int, record: ReceivableRecord) {
            self.line = line
            self.record = record
        }
    }

    /// What a record leaves unsaid: a debtor known only from its invoices gets these until its own
    /// record comes; an invoice without `due_on` gets the debtor's terms, else `terms`.
    public struct Defaults: Sendable {
        public var country: String
        public var locale: String
        public var timezone: String
        public var terms: PaymentTerms
        public init(
            country: String = "FR", locale: String = "fr-FR", timezone: String = "Europe/Paris", terms: PaymentTerms = PaymentTerms(kind: .days, days: 30)
        ) {
            self.country = country
            self.locale = locale
            self.timezone = timezone
            self.terms = terms
        }
    }

    public struct Rejection: Sendable, Hashable {
        public var line: Int
        public var issue: FieldIssue
        public init(line: Int, issue: FieldIssue) {
            self.line = line
            self.issue = issue
        }
    }

    public struct Result: Sendable {
        /// Records that changed the ledger (new, or amended).
        public var applied = 0
        /// Records already there with the same content.
        public var unchanged = 0
        public var rejected: [Rejection] = []
        public init() {}
    }
}

extension Ledger: ReceivablesStore {
    public func importReceivables(_ lines: [ReceivablesImport.Line], source: String, defaults: ReceivablesImport.Defaults, now: Date) async throws
        -> ReceivablesImport.Result
    {
        // Debtors, then invoices, then instalments, then movements: a file may name an invoice
        // before the line that creates it.
        let ordered = lines.enumerated().sorted { (Self.rank($0.element.record), $0.offset) < (Self.rank($1.element.record), $1.offset) }.map(\.element)
        return try await pool.write { db in
            var result = ReceivablesImport.Result()
            var touched: Set<String> = []
            for line in ordered {
                do {
                    let (changed, debtor) = try Self.apply(db, line.record, source: source, defaults: defaults, now: now)
                    if changed { result.applied += 1 } else { result.unchanged += 1 }
                    if changed, let debtor { touched.insert(debtor) }
                } catch let rejection as RecordRejection {
                    result.rejected.append(.init(line: line.line, issue: rejection.issue))
                }
            }
            // What was settled, disputed, held or promised stops its waiting reminders, in this transaction.
            let today = CivilDate(now, in: TimeZone(identifier: defaults.timezone) ?? .gmt)
            for debtor in touched.sorted() { try Self.stopChases(db, debtor: debtor, on: today, now: now) }
            result.rejected.sort { $0.line < $1.line }
            return result
        }
    }

    struct RecordRejection: Error {
        var issue: FieldIssue
        init(_ field: String, _ reason: String) { issue = FieldIssue(field: field, reason: reason) }
    }

    static func rank(_ record: ReceivableRecord) -> Int {
        switch record {
        case .debtor: 0
        case .invoice: 1
        case .instalment: 2
        case .creditNote, .movement: 3
        }
    }

    /// Applies one record: whether it changed the ledger, and the debtor whose items it may have
    /// settled or held (nil for a debtor record).
    static func apply(_ db: Database, _ record: ReceivableRecord, source: String, defaults: ReceivablesImport.Defaults, now: Date) throws -> (Bool, String?) {
        let t = now.timeIntervalSince1970
        switch record {
        case .debtor(let debtor):
            let d = debtor.debtor
            let values: [(any DatabaseValueConvertible)?] = [
                d.name, d.email, d.phone, d.country, d.locale, d.timezone, d.kind.rawValue, debtor.paymentTerms?.description, debtor.ladder,
            ]
            let existing = try Row.fetchOne(
                db, cachedSQL: "SELECT name, email, phone, country, locale, timezone, kind, payment_terms, ladder, known FROM rec_debtor WHERE id = ?",
                arguments: [d.id])
            if let existing, existing["known"] as Int == 1,
                (0..<values.count).allSatisfy({ (existing[$0] as DatabaseValue) == (values[$0]?.databaseValue ?? .null) })
            {
                return (false, nil)
            }
            try db.run(
                sql: """
                    INSERT INTO rec_debtor (id, name, email, phone, country, locale, timezone, kind, payment_terms, ladder, known, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)
                    ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, phone = excluded.phone, country = excluded.country,
                      locale = excluded.locale, timezone = excluded.timezone, kind = excluded.kind, payment_terms = excluded.payment_terms,
                      ladder = excluded.ladder, known = 1, updated_at = excluded.updated_at
                    """, arguments: StatementArguments([d.id] + values + [t]))
            try event(
                db, debtor: d.id, subject: d.id, kind: existing == nil || existing?["known"] as Int? == 0 ? "debtor" : "debtor_amended", source: source, at: t)
            // Invoices whose due date came from terms follow the debtor's terms.
            let terms = debtor.paymentTerms ?? defaults.terms
            for row in try Row.fetchAll(
                db, cachedSQL: "SELECT number, issued_on, due_on FROM rec_invoice WHERE debtor_id = ? AND due_from_terms = 1", arguments: [d.id])
            {
                guard let issued = CivilDate(row["issued_on"] as String) else { continue }
                let due = terms.dueDate(issued: issued).description
                if due != row["due_on"] as String {
                    try db.run(sql: "UPDATE rec_invoice SET due_on = ? WHERE number = ?", arguments: [due, row["number"] as String])
                }
            }
            return (true, nil)

        case .invoice(let parsed):
            try ensureDebtor(db, parsed.debtor, defaults: defaults, at: t)
            var dueFromTerms = 0
            var due = parsed.dueOn
            if due == nil {
                let terms = try String.fetchOne(db, cachedSQL: "SELECT payment_terms FROM rec_debtor WHERE id = ?", arguments: [parsed.debtor]).flatMap(
                    PaymentTerms.init)
                due = (terms ?? defaults.terms).dueDate(issued: parsed.issuedOn)
                dueFromTerms = 1
            }
            guard let due else { return (false, nil) }
            let values: [(any DatabaseValueConvertible)?] = [
                parsed.debtor, parsed.issuedOn.description, due.description, dueFromTerms, parsed.amount, parsed.currency, parsed.paymentURL,
                parsed.document,
            ]
            let existing = try Row.fetchOne(
                db, cachedSQL: "SELECT debtor_id, issued_on, due_on, due_from_terms, amount, currency, payment_url, document FROM rec_invoice WHERE number = ?",
                arguments: [parsed.number])
            let instalments = parsed.instalments.map { "\($0.dueOn)=\($0.amount)" }
            let stored = try Row.fetchAll(
                db, cachedSQL: "SELECT due_on, amount FROM rec_instalment WHERE invoice = ? ORDER BY due_on", arguments: [parsed.number]
            )
            .map { "\($0["due_on"] as String)=\($0["amount"] as Int64)" }
            if let existing {
                if existing["debtor_id"] as String != parsed.debtor {
                    throw RecordRejection("debtor", "invoice \(parsed.number) belongs to debtor \(existing["debtor_id"] as String), not \(parsed.debtor)")
                }
                if existing["currency"] as String != parsed.currency {
                    throw RecordRejection("currency", "invoice \(parsed.number) is in \(existing["currency"] as String): its currency cannot change")
                }
                let same = (0..<values.count).allSatisfy { (existing[$0] as DatabaseValue) == (values[$0]?.databaseValue ?? .null) }
                if same && (parsed.instalments.isEmpty || instalments == stored) { return (false, parsed.debtor) }
            }
            try db.run(
                sql: """
                    INSERT INTO rec_invoice (number, debtor_id, issued_on, due_on, due_from_terms, amount, currency, payment_url, document, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (number) DO UPDATE SET issued_on = excluded.issued_on, due_on = excluded.due_on, due_from_terms = excluded.due_from_terms,
                      amount = excluded.amount, payment_url = excluded.payment_url, document = excluded.document, updated_at = excluded.updated_at
                    """, arguments: StatementArguments([parsed.number] + values + [t]))
            if !parsed.instalments.isEmpty && instalments != stored {
                try db.run(sql: "DELETE FROM rec_instalment WHERE invoice = ?", arguments: [parsed.number])
                for instalment in parsed.instalments {
                    try db.run(
                        sql: "INSERT INTO rec_instalment (invoice, due_on, amount) VALUES (?, ?, ?)",
                        arguments: [parsed.number, instalment.dueOn.description, instalment.amount])
                }
            }
            let detail = "\(MinorAmount(units: parsed.amount, currency: parsed.currency)) due \(due)"
            try event(
                db, debtor: parsed.debtor, subject: parsed.number, kind: existing == nil ? "invoice" : "invoice_amended", detail: detail, source: source, at: t)
            return (true, parsed.debtor)

        case .instalment(let number, let dueOn, let text):
            guard let invoice = try Row.fetchOne(db, cachedSQL: "SELECT debtor_id, currency FROM rec_invoice WHERE number = ?", arguments: [number]) else {
                throw RecordRejection("invoice", "unknown invoice '\(number)' (import the invoice first)")
            }
            let currency: String = invoice["currency"]
            guard let amount = MinorAmount(text, currency: currency), amount.units > 0 else {
                throw RecordRejection("amount", "'\(text)' is not a positive \(currency) amount")
            }
            let stored = try Int64.fetchOne(
                db, cachedSQL: "SELECT amount FROM rec_instalment WHERE invoice = ? AND due_on = ?", arguments: [number, dueOn.description])
            if stored == amount.units { return (false, invoice["debtor_id"]) }
            try db.run(
                sql: "INSERT INTO rec_instalment (invoice, due_on, amount) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET amount = excluded.amount",
                arguments: [number, dueOn.description, amount.units])
            try event(db, debtor: invoice["debtor_id"], subject: number, kind: "instalment", detail: "\(amount) due \(dueOn)", source: source, at: t)
            return (true, invoice["debtor_id"])

        case .creditNote(let id, let number, let text, let issuedOn):
            guard let currency = try String.fetchOne(db, cachedSQL: "SELECT currency FROM rec_invoice WHERE number = ?", arguments: [number]) else {
                throw RecordRejection("invoice", "unknown invoice '\(number)' (import the invoice first)")
            }
            guard let amount = MinorAmount(text, currency: currency), amount.units > 0 else {
                throw RecordRejection("amount", Money.amountProblem(text, currency: currency) ?? "'\(text)' is not a positive \(currency) amount")
            }
            return try applyMovement(
                db, key: "credit_note:\(id)", debtor: nil, .creditNote(id: id, invoice: number, amount: amount.units, issuedOn: issuedOn), source: source, at: t
            )

        case .movement(let key, let debtor, let movement):
            return try applyMovement(db, key: key, debtor: debtor, movement, source: source, at: t)
        }
    }

    static func applyMovement(_ db: Database, key: String, debtor named: String?, _ movement: ReceivableMovement, source: String, at t: Double) throws -> (
        Bool, String?
    ) {
        var debtor = named
        if let invoice = movement.invoice {
            let owner = try String.fetchOne(db, cachedSQL: "SELECT debtor_id FROM rec_invoice WHERE number = ?", arguments: [invoice])
            switch (owner, named, movement) {
            case (nil, _, .payment): break  // a payment naming an invoice not imported yet: unallocated until it is
            case (nil, _, _): throw RecordRejection("invoice", "unknown invoice '\(invoice)' (import the invoice first)")
            case (let owner?, let named?, _) where owner != named:
                throw RecordRejection("debtor", "invoice \(invoice) belongs to debtor \(owner), not \(named)")
            default: debtor = owner ?? named
            }
        }
        guard let debtor else { throw RecordRejection("debtor", "is required") }
        let content = JSONText.object(movement.fields)
        let stored = try String.fetchOne(db, cachedSQL: "SELECT content FROM rec_movement WHERE key = ?", arguments: [key])
        if stored == content { return (false, debtor) }
        if stored != nil && !movement.isAmendable {
            throw RecordRejection("id", "\(key) is already recorded with other content (movements are immutable: record a new one)")
        }
        try ensureDebtor(db, debtor, defaults: nil, at: t)
        try db.run(
            sql: """
                INSERT INTO rec_movement (key, kind, debtor_id, invoice, content, recorded_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (key) DO UPDATE SET content = excluded.content, recorded_at = excluded.recorded_at
                """, arguments: [key, movement.fields["type"], debtor, movement.invoice, content, t])
        try event(
            db, debtor: debtor, subject: movement.invoice ?? debtor, kind: stored == nil ? movement.fields["type"] ?? "movement" : "amended", detail: content,
            source: source, at: t)
        return (true, debtor)
    }

    /// A debtor known only from an invoice or a movement: a placeholder without contact details,
    /// completed when its own record comes (the plan lists it as `no_contact` until then).
    static func ensureDebtor(_ db: Database, _ id: String, defaults: ReceivablesImport.Defaults?, at t: Double) throws {
        let d = defaults ?? ReceivablesImport.Defaults()
        try db.run(
            sql: """
                INSERT INTO rec_debtor (id, name, country, locale, timezone, kind, known, updated_at) VALUES (?, ?, ?, ?, ?, 'business', 0, ?)
                ON CONFLICT (id) DO NOTHING
                """, arguments: [id, id, d.country, d.locale, d.timezone, t])
    }

    static func event(_ db: Database, debtor: String, subject: String, kind: String, detail: String = "", source: String, at t: Double) throws {
        try db.run(
            sql: "INSERT INTO rec_event (debtor_id, subject, kind, detail, source, at) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [debtor, subject, kind, detail, source, t])
    }

    // MARK: Snapshots

    public func forEachDebtorSnapshot(debtor only: String?, _ body: @escaping @Sendable (DebtorSnapshot) throws -> Void) async throws {
        try await pool.read { db in
            guard let only else { return try Self.forEachSnapshot(db, body) }
            if let row = try Row.fetchOne(db, cachedSQL: "SELECT \(Self.debtorColumns) FROM rec_debtor WHERE id = ?", arguments: [only]) {
                try body(try Self.snapshot(db, row))
            }
        }
    }

    /// Every debtor's snapshot in debtor id order, from one cursor per table, each in debtor order,
    /// merged as they go: five statements for the whole ledger instead of five per debtor (half of
    /// the time of reading a million invoices went to those per-debtor statements). The same
    /// snapshots as `snapshot(_:_:)` (tested).
    static func forEachSnapshot(_ db: Database, _ body: (DebtorSnapshot) throws -> Void) throws {
        let debtors = try Row.fetchCursor(db, sql: "SELECT \(debtorColumns) FROM rec_debtor ORDER BY id")
        let invoices = try Row.fetchCursor(
            db, sql: "SELECT debtor_id, number, issued_on, due_on, amount, currency, payment_url, document FROM rec_invoice ORDER BY debtor_id, number")
        let instalments = try Row.fetchCursor(
            db,
            sql: """
                SELECT v.debtor_id, i.invoice, i.due_on, i.amount FROM rec_instalment i JOIN rec_invoice v ON v.number = i.invoice
                ORDER BY v.debtor_id, i.invoice, i.due_on
                """)
        let movements = try Row.fetchCursor(db, sql: "SELECT debtor_id, content FROM rec_movement ORDER BY debtor_id, key")
        let steps = try Row.fetchCursor(
            db,
            sql: """
                SELECT s.debtor_id, s.invoice, s.instalment, s.stage, s.on_date FROM plan_step s
                WHERE NOT (EXISTS (SELECT 1 FROM delivery d WHERE d.reminder_id = s.reminder_id)
                    AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.reminder_id = s.reminder_id AND d.status != 'expired'))
                ORDER BY s.debtor_id, s.on_date, s.stage
                """)
        // SQLite orders text by its bytes: so must the merge.
        func before(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
        /// The rows of `cursor` for `id`, skipping any for an earlier id (none: every row has its debtor).
        func rows(_ cursor: RowCursor, _ pending: inout Row?, for id: String) throws -> [Row] {
            var out: [Row] = []
            while let row = try pending ?? cursor.next() {
                let owner: String = row[0]
                if before(owner, id) {
                    pending = nil
                    continue
                }
                guard owner == id else {
                    pending = row
                    break
                }
                out.append(row.copy())
                pending = nil
            }
            return out
        }
        var (nextInvoice, nextInstalment, nextMovement, nextStep): (Row?, Row?, Row?, Row?) = (nil, nil, nil, nil)
        while let row = try debtors.next() {
            let id: String = row["id"]
            var byInvoice: [String: [Instalment]] = [:]
            for r in try rows(instalments, &nextInstalment, for: id) {
                guard let due = CivilDate(r[2] as String) else { throw LedgerCorruption(description: "instalment of \(r[1] as String): unreadable date") }
                byInvoice[r[1], default: []].append(Instalment(dueOn: due, amount: r[3]))
            }
            let invoiceRows = try rows(invoices, &nextInvoice, for: id)
            let movementRows = try rows(movements, &nextMovement, for: id)
            let stepRows = try rows(steps, &nextStep, for: id)
            try body(
                try snapshot(
                    debtorRow: row, invoiceRows: invoiceRows, instalments: byInvoice, movements: movementRows.map { $0[1] as String }, stepRows: stepRows,
                    offset: 1))
        }
    }

    /// The columns `snapshot(_:_:)` reads of a `rec_debtor` row.
    static let debtorColumns = "id, name, email, phone, country, locale, timezone, kind, payment_terms, ladder"

    /// One debtor's snapshot, nil when the ledger has no such debtor.
    static func snapshot(_ db: Database, debtor id: String) throws -> DebtorSnapshot? {
        guard let row = try Row.fetchOne(db, cachedSQL: "SELECT \(debtorColumns) FROM rec_debtor WHERE id = ?", arguments: [id]) else { return nil }
        return try snapshot(db, row)
    }

    static func snapshot(_ db: Database, _ row: Row) throws -> DebtorSnapshot {
        let id: String = row["id"]
        // The debtor's instalments in one query (one per invoice was a million queries for a
        // million invoices).
        var instalments: [String: [Instalment]] = [:]
        for row in try Row.fetchAll(
            db,
            cachedSQL: """
                SELECT i.invoice, i.due_on, i.amount FROM rec_instalment i JOIN rec_invoice v ON v.number = i.invoice
                WHERE v.debtor_id = ? ORDER BY i.invoice, i.due_on
                """, arguments: [id])
        {
            guard let due = CivilDate(row["due_on"] as String) else {
                throw LedgerCorruption(description: "instalment of \(row["invoice"] as String): unreadable date")
            }
            instalments[row["invoice"], default: []].append(Instalment(dueOn: due, amount: row["amount"]))
        }
        let invoiceRows = try Row.fetchAll(
            db, cachedSQL: "SELECT number, issued_on, due_on, amount, currency, payment_url, document FROM rec_invoice WHERE debtor_id = ? ORDER BY number",
            arguments: [id])
        let movements = try String.fetchAll(db, cachedSQL: "SELECT content FROM rec_movement WHERE debtor_id = ? ORDER BY key", arguments: [id])
        let stepRows = try Row.fetchAll(
            db,
            cachedSQL: """
                SELECT s.invoice, s.instalment, s.stage, s.on_date FROM plan_step s
                WHERE s.debtor_id = ?
                  AND NOT (EXISTS (SELECT 1 FROM delivery d WHERE d.reminder_id = s.reminder_id)
                    AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.reminder_id = s.reminder_id AND d.status != 'expired'))
                ORDER BY s.on_date, s.stage
                """, arguments: [id])
        return try snapshot(debtorRow: row, invoiceRows: invoiceRows, instalments: instalments, movements: movements, stepRows: stepRows, offset: 0)
    }

    /// A snapshot from its rows: the debtor's (`debtorColumns`), its invoices' (`number, issued_on,
    /// due_on, amount, currency, payment_url, document`) and plan steps' (`invoice, instalment,
    /// stage, on_date`), each after `offset` leading columns, and its movements' stored content.
    static func snapshot(
        debtorRow row: Row, invoiceRows: [Row], instalments: [String: [Instalment]], movements contents: [String], stepRows: [Row], offset o: Int
    ) throws -> DebtorSnapshot {
        let id: String = row["id"]
        let debtor = StoredSnapshot.debtor(
            id: id, name: row["name"], email: row["email"], phone: row["phone"], country: row["country"], locale: row["locale"], timezone: row["timezone"],
            kind: row["kind"], paymentTerms: row["payment_terms"], ladder: row["ladder"])
        // Columns by position: a lookup by name lower-cases and hashes it, for each of a million rows.
        var invoices: [ReceivableInvoice] = []
        invoices.reserveCapacity(invoiceRows.count)
        for inv in invoiceRows {
            let number: String = inv[o]
            guard let issued = CivilDate(inv[o + 1] as String), let due = CivilDate(inv[o + 2] as String) else {
                throw LedgerCorruption(description: "invoice \(number): unreadable dates")
            }
            invoices.append(
                ReceivableInvoice(
                    number: number, debtor: id, issuedOn: issued, dueOn: due, amount: inv[o + 3], currency: inv[o + 4],
                    instalments: instalments[number] ?? [], paymentURL: inv[o + 5], document: inv[o + 6]))
        }
        let movements = try StoredSnapshot.movements(contents, debtor: id)
        let taken = StoredSnapshot.taken(stepRows.map { (invoice: $0[o] as String, instalment: $0[o + 1] as Int, stage: $0[o + 2] as String, on: $0[o + 3] as String) })
        return DebtorSnapshot(debtor: debtor, invoices: invoices, movements: movements, taken: taken)
    }

    public func reminderHistory(invoice: String) async throws -> [ReminderTrace] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                cachedSQL: """
                    SELECT r.id, r.record, d.channel, d.status,
                      (SELECT MIN(a.started_at) FROM attempt a WHERE a.reminder_id = d.reminder_id AND a.channel = d.channel AND a.outcome IN ('sent', 'unknown')) AS sent_at,
                      (SELECT a.recipient FROM attempt a WHERE a.reminder_id = d.reminder_id AND a.channel = d.channel AND a.outcome IN ('sent', 'unknown') ORDER BY a.number LIMIT 1) AS recipient
                    FROM reminder_invoice ri JOIN reminder r ON r.id = ri.reminder_id JOIN delivery d ON d.reminder_id = r.id
                    WHERE ri.invoice = ? ORDER BY r.ingested_at, r.id, d.channel
                    """, arguments: [invoice]
            ).map { row in
                let id: String = row["id"]
                return ReminderTrace(
                    reminderID: id, stage: (try? Reminder.stored(row["record"], id: id).stage) ?? "", channel: row["channel"], status: row["status"],
                    sentAt: (row["sent_at"] as Double?).map(Date.init(timeIntervalSince1970:)), recipient: row["recipient"])
            }
        }
    }

    public func lastPlanCommit() async throws -> Date? {
        try await pool.read { db in
            try Double.fetchOne(db, cachedSQL: "SELECT MAX(committed_at) FROM plan_run").map(Date.init(timeIntervalSince1970:))
        }
    }

    public func lastPlanRun() async throws -> CivilDate? {
        try await pool.read { db in
            try String.fetchOne(db, cachedSQL: "SELECT as_of_date FROM plan_run ORDER BY as_of_date DESC LIMIT 1").flatMap(CivilDate.init)
        }
    }
}

/// A debtor's snapshot from what a backend stored, in plain values: shared by every backend.
public enum StoredSnapshot {
    public static func debtor(
        id: String, name: String, email: String?, phone: String?, country: String, locale: String, timezone: String, kind: String, paymentTerms: String?,
        ladder: String?
    ) -> ReceivableDebtor {
        ReceivableDebtor(
            debtor: Debtor(
                id: id, name: name, email: email, phone: phone, country: country, locale: locale, timezone: timezone, kind: DebtorKind(rawValue: kind) ?? .business),
            paymentTerms: paymentTerms.flatMap(PaymentTerms.init), ladder: ladder)
    }

    /// The stored movements (one JSON object of strings each), read back as the ledger wrote them
    /// (one pass), else through the general parser.
    public static func movements(_ contents: [String], debtor id: String) throws -> [ReceivableMovement] {
        var movements: [ReceivableMovement] = []
        movements.reserveCapacity(contents.count)
        for content in contents {
            var fields = JSONText.stringObject(content)
            if fields == nil, case .object(let object) = try JSONParser.parse(Array(content.utf8)) {
                fields = object.compactMapValues { if case .string(let s) = $0 { s } else { nil } }
            }
            guard let fields, let movement = ReceivableMovement(fields: fields) else {
                throw LedgerCorruption(description: "debtor \(id): an unreadable movement \(content)")
            }
            movements.append(movement)
        }
        return movements
    }

    /// The plan steps each item took (`instalment` 0: the whole invoice); unreadable dates skipped.
    public static func taken(_ steps: [(invoice: String, instalment: Int, stage: String, on: String)]) -> [ItemID: [TakenStep]] {
        var taken: [ItemID: [TakenStep]] = [:]
        for step in steps {
            guard let on = CivilDate(step.on) else { continue }
            taken[ItemID(invoice: step.invoice, instalment: step.instalment == 0 ? nil : step.instalment), default: []].append(TakenStep(stage: step.stage, on: on))
        }
        return taken
    }
}
