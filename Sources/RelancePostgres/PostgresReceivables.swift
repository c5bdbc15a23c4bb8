import Foundation
import PostgresNIO
import RelanceCore
import RelanceStore

/// The receivables ledger on PostgreSQL, as `Ledger`'s (Receivables.swift, PlanRuns.swift,
/// ReportQueries.swift): one transaction per imported file, which also stops the waiting reminders
/// of what it settled, disputed, held or promised; snapshots one debtor at a time; a plan committed
/// all or nothing, each debtor planned inside the transaction.
extension PostgresLedger: ReceivablesStore {
    struct Rejection: Error {
        var issue: FieldIssue
        init(_ field: String, _ reason: String) { issue = FieldIssue(field: field, reason: reason) }
    }

    public func importReceivables(_ lines: [ReceivablesImport.Line], source: String, defaults: ReceivablesImport.Defaults, now: Date) async throws
        -> ReceivablesImport.Result
    {
        // Debtors, then invoices, then instalments, then movements: a file may name an invoice
        // before the line that creates it.
        func rank(_ record: ReceivableRecord) -> Int {
            switch record {
            case .debtor: 0
            case .invoice: 1
            case .instalment: 2
            case .creditNote, .movement: 3
            }
        }
        let ordered = lines.enumerated().sorted { (rank($0.element.record), $0.offset) < (rank($1.element.record), $1.offset) }.map(\.element)
        return try await transaction { connection in
            var result = ReceivablesImport.Result()
            var touched: Set<String> = []
            for line in ordered {
                // Each record in a savepoint: a rejected one leaves no trace, the others stay.
                try await connection.query("SAVEPOINT record", logger: logger)
                do {
                    let (changed, debtor) = try await apply(connection, line.record, source: source, defaults: defaults, now: now)
                    try await connection.query("RELEASE SAVEPOINT record", logger: logger)
                    if changed { result.applied += 1 } else { result.unchanged += 1 }
                    if changed, let debtor { touched.insert(debtor) }
                } catch let rejection as Rejection {
                    try await connection.query("ROLLBACK TO SAVEPOINT record", logger: logger)
                    result.rejected.append(.init(line: line.line, issue: rejection.issue))
                }
            }
            let today = CivilDate(now, in: TimeZone(identifier: defaults.timezone) ?? .gmt)
            for debtor in touched.sorted() { try await stopChases(connection, debtor: debtor, on: today, now: now) }
            result.rejected.sort { $0.line < $1.line }
            return result
        }
    }

    /// One record: whether it changed the ledger, and the debtor whose items it may have settled or held.
    func apply(_ connection: PostgresConnection, _ record: ReceivableRecord, source: String, defaults: ReceivablesImport.Defaults, now: Date) async throws -> (
        Bool, String?
    ) {
        let t = now.timeIntervalSince1970
        switch record {
        case .debtor(let debtor):
            let d = debtor.debtor
            let (terms, ladder, kind) = (debtor.paymentTerms?.description, debtor.ladder, d.kind.rawValue)
            var existing: (known: Int, same: Bool)?
            for try await (known, same) in try await connection.query(
                """
                SELECT known, (name, email, phone, country, locale, timezone, kind, payment_terms, ladder)
                  IS NOT DISTINCT FROM (\(d.name), \(d.email), \(d.phone), \(d.country), \(d.locale), \(d.timezone), \(kind), \(terms), \(ladder))
                FROM rec_debtor WHERE id = \(d.id) FOR UPDATE
                """, logger: logger
            ).decode((Int, Bool).self) {
                existing = (known, same)
            }
            if let existing, existing.known == 1, existing.same { return (false, nil) }
            try await connection.query(
                """
                INSERT INTO rec_debtor (id, name, email, phone, country, locale, timezone, kind, payment_terms, ladder, known, updated_at)
                VALUES (\(d.id), \(d.name), \(d.email), \(d.phone), \(d.country), \(d.locale), \(d.timezone), \(kind), \(terms), \(ladder), 1, \(t))
                ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, phone = EXCLUDED.phone, country = EXCLUDED.country,
                  locale = EXCLUDED.locale, timezone = EXCLUDED.timezone, kind = EXCLUDED.kind, payment_terms = EXCLUDED.payment_terms,
                  ladder = EXCLUDED.ladder, known = 1, updated_at = EXCLUDED.updated_at
                """, logger: logger)
            try await Self.event(connection, debtor: d.id, subject: d.id, kind: existing == nil || existing?.known == 0 ? "debtor" : "debtor_amended", source: source, at: t, logger: logger)
            // Invoices whose due date came from terms follow the debtor's terms.
            let effective = debtor.paymentTerms ?? defaults.terms
            var dated: [(String, String, String)] = []
            for try await row in try await connection.query(
                "SELECT number, issued_on, due_on FROM rec_invoice WHERE debtor_id = \(d.id) AND due_from_terms = 1 ORDER BY number", logger: logger
            ).decode((String, String, String).self) {
                dated.append(row)
            }
            for (number, issuedOn, dueOn) in dated {
                guard let issued = CivilDate(issuedOn) else { continue }
                let due = effective.dueDate(issued: issued).description
                if due != dueOn { try await connection.query("UPDATE rec_invoice SET due_on = \(due) WHERE number = \(number)", logger: logger) }
            }
            return (true, nil)

        case .invoice(let parsed):
            try await Self.ensureDebtor(connection, parsed.debtor, defaults: defaults, at: t, logger: logger)
            var dueFromTerms = 0
            var due = parsed.dueOn
            if due == nil {
                var terms: PaymentTerms?
                for try await (text) in try await connection.query("SELECT payment_terms FROM rec_debtor WHERE id = \(parsed.debtor)", logger: logger).decode(
                    String?.self)
                {
                    terms = text.flatMap(PaymentTerms.init)
                }
                due = (terms ?? defaults.terms).dueDate(issued: parsed.issuedOn)
                dueFromTerms = 1
            }
            guard let due else { return (false, parsed.debtor) }
            let (issuedOn, dueOn) = (parsed.issuedOn.description, due.description)
            var existing: (debtor: String, currency: String, same: Bool)?
            for try await (debtor, currency, same) in try await connection.query(
                """
                SELECT debtor_id, currency, (issued_on, due_on, due_from_terms, amount, payment_url, document)
                  IS NOT DISTINCT FROM (\(issuedOn), \(dueOn), \(dueFromTerms), \(parsed.amount), \(parsed.paymentURL), \(parsed.document))
                FROM rec_invoice WHERE number = \(parsed.number) FOR UPDATE
                """, logger: logger
            ).decode((String, String, Bool).self) {
                existing = (debtor, currency, same)
            }
            let instalments = parsed.instalments.map { "\($0.dueOn)=\($0.amount)" }
            var stored: [String] = []
            for try await (dueOnText, amount) in try await connection.query(
                "SELECT due_on, amount FROM rec_instalment WHERE invoice = \(parsed.number) ORDER BY due_on", logger: logger
            ).decode((String, Int64).self) {
                stored.append("\(dueOnText)=\(amount)")
            }
            if let existing {
                if existing.debtor != parsed.debtor {
                    throw Rejection("debtor", "invoice \(parsed.number) belongs to debtor \(existing.debtor), not \(parsed.debtor)")
                }
                if existing.currency != parsed.currency {
                    throw Rejection("currency", "invoice \(parsed.number) is in \(existing.currency): its currency cannot change")
                }
                if existing.same && (parsed.instalments.isEmpty || instalments == stored) { return (false, parsed.debtor) }
            }
            try await connection.query(
                """
                INSERT INTO rec_invoice (number, debtor_id, issued_on, due_on, due_from_terms, amount, currency, payment_url, document, updated_at)
                VALUES (\(parsed.number), \(parsed.debtor), \(issuedOn), \(dueOn), \(dueFromTerms), \(parsed.amount), \(parsed.currency), \(parsed.paymentURL),
                        \(parsed.document), \(t))
                ON CONFLICT (number) DO UPDATE SET issued_on = EXCLUDED.issued_on, due_on = EXCLUDED.due_on, due_from_terms = EXCLUDED.due_from_terms,
                  amount = EXCLUDED.amount, payment_url = EXCLUDED.payment_url, document = EXCLUDED.document, updated_at = EXCLUDED.updated_at
                """, logger: logger)
            if !parsed.instalments.isEmpty && instalments != stored {
                try await connection.query("DELETE FROM rec_instalment WHERE invoice = \(parsed.number)", logger: logger)
                for instalment in parsed.instalments {
                    let on = instalment.dueOn.description
                    try await connection.query(
                        "INSERT INTO rec_instalment (invoice, due_on, amount) VALUES (\(parsed.number), \(on), \(instalment.amount))", logger: logger)
                }
            }
            let detail = "\(MinorAmount(units: parsed.amount, currency: parsed.currency)) due \(due)"
            try await Self.event(
                connection, debtor: parsed.debtor, subject: parsed.number, kind: existing == nil ? "invoice" : "invoice_amended", detail: detail, source: source,
                at: t, logger: logger)
            return (true, parsed.debtor)

        case .instalment(let number, let dueOn, let text):
            var invoice: (String, String)?
            for try await row in try await connection.query("SELECT debtor_id, currency FROM rec_invoice WHERE number = \(number)", logger: logger).decode(
                (String, String).self)
            {
                invoice = row
            }
            guard let (debtor, currency) = invoice else { throw Rejection("invoice", "unknown invoice '\(number)' (import the invoice first)") }
            guard let amount = MinorAmount(text, currency: currency), amount.units > 0 else {
                throw Rejection("amount", "'\(text)' is not a positive \(currency) amount")
            }
            let on = dueOn.description
            var stored: Int64?
            for try await (units) in try await connection.query(
                "SELECT amount FROM rec_instalment WHERE invoice = \(number) AND due_on = \(on)", logger: logger
            ).decode(Int64.self) {
                stored = units
            }
            if stored == amount.units { return (false, debtor) }
            let units = amount.units
            try await connection.query(
                """
                INSERT INTO rec_instalment (invoice, due_on, amount) VALUES (\(number), \(on), \(units))
                ON CONFLICT (invoice, due_on) DO UPDATE SET amount = EXCLUDED.amount
                """, logger: logger)
            try await Self.event(connection, debtor: debtor, subject: number, kind: "instalment", detail: "\(amount) due \(dueOn)", source: source, at: t, logger: logger)
            return (true, debtor)

        case .creditNote(let id, let number, let text, let issuedOn):
            var currency: String?
            for try await (code) in try await connection.query("SELECT currency FROM rec_invoice WHERE number = \(number)", logger: logger).decode(String.self) {
                currency = code
            }
            guard let currency else { throw Rejection("invoice", "unknown invoice '\(number)' (import the invoice first)") }
            guard let amount = MinorAmount(text, currency: currency), amount.units > 0 else {
                throw Rejection("amount", Money.amountProblem(text, currency: currency) ?? "'\(text)' is not a positive \(currency) amount")
            }
            return try await applyMovement(
                connection, key: "credit_note:\(id)", debtor: nil, .creditNote(id: id, invoice: number, amount: amount.units, issuedOn: issuedOn), source: source,
                at: t)

        case .movement(let key, let debtor, let movement):
            return try await applyMovement(connection, key: key, debtor: debtor, movement, source: source, at: t)
        }
    }

    func applyMovement(_ connection: PostgresConnection, key: String, debtor named: String?, _ movement: ReceivableMovement, source: String, at t: Double)
        async throws -> (Bool, String?)
    {
        var debtor = named
        if let invoice = movement.invoice {
            var owner: String?
            for try await (id) in try await connection.query("SELECT debtor_id FROM rec_invoice WHERE number = \(invoice)", logger: logger).decode(String.self) {
                owner = id
            }
            switch (owner, named, movement) {
            case (nil, _, .payment): break  // a payment naming an invoice not imported yet: unallocated until it is
            case (nil, _, _): throw Rejection("invoice", "unknown invoice '\(invoice)' (import the invoice first)")
            case (let owner?, let named?, _) where owner != named: throw Rejection("debtor", "invoice \(invoice) belongs to debtor \(owner), not \(named)")
            default: debtor = owner ?? named
            }
        }
        guard let debtor else { throw Rejection("debtor", "is required") }
        let content = JSONText.object(movement.fields)
        var stored: String?
        for try await (text) in try await connection.query("SELECT content FROM rec_movement WHERE key = \(key) FOR UPDATE", logger: logger).decode(String.self) {
            stored = text
        }
        if stored == content { return (false, debtor) }
        if stored != nil && !movement.isAmendable {
            throw Rejection("id", "\(key) is already recorded with other content (movements are immutable: record a new one)")
        }
        try await Self.ensureDebtor(connection, debtor, defaults: nil, at: t, logger: logger)
        let (kind, invoice) = (movement.fields["type"], movement.invoice)
        try await connection.query(
            """
            INSERT INTO rec_movement (key, kind, debtor_id, invoice, content, recorded_at) VALUES (\(key), \(kind), \(debtor), \(invoice), \(content), \(t))
            ON CONFLICT (key) DO UPDATE SET content = EXCLUDED.content, recorded_at = EXCLUDED.recorded_at
            """, logger: logger)
        try await Self.event(
            connection, debtor: debtor, subject: invoice ?? debtor, kind: stored == nil ? kind ?? "movement" : "amended", detail: content, source: source, at: t,
            logger: logger)
        return (true, debtor)
    }

    /// A debtor known only from an invoice or a movement: a placeholder without contact details.
    static func ensureDebtor(_ connection: PostgresConnection, _ id: String, defaults: ReceivablesImport.Defaults?, at t: Double, logger: Logger) async throws {
        let d = defaults ?? ReceivablesImport.Defaults()
        try await connection.query(
            """
            INSERT INTO rec_debtor (id, name, country, locale, timezone, kind, known, updated_at) VALUES (\(id), \(id), \(d.country), \(d.locale), \(d.timezone), 'business', 0, \(t))
            ON CONFLICT (id) DO NOTHING
            """, logger: logger)
    }

    static func event(
        _ connection: PostgresConnection, debtor: String, subject: String, kind: String, detail: String = "", source: String, at t: Double, logger: Logger
    ) async throws {
        try await connection.query(
            "INSERT INTO rec_event (debtor_id, subject, kind, detail, source, at) VALUES (\(debtor), \(subject), \(kind), \(detail), \(source), \(t))",
            logger: logger)
    }

    /// After an import: the waiting reminders of items settled, disputed, held or promised stop,
    /// in the import's transaction (as `Ledger.stopChases`).
    func stopChases(_ connection: PostgresConnection, debtor: String, on date: CivilDate, now: Date) async throws {
        guard let snapshot = try await snapshot(connection, debtor: debtor) else { return }
        let standing = DebtorStanding.compute(invoices: snapshot.invoices, movements: snapshot.movements, on: date)
        let byItem = Dictionary(standing.items.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        func stop(_ item: ItemID) -> CancellationRequest.Reason? { Ledger.chaseStop(item, byItem: byItem, movements: snapshot.movements, on: date) }
        var planned: [String] = []
        for try await (id) in try await connection.query(
            "SELECT DISTINCT s.reminder_id FROM plan_step s JOIN reminder r ON r.id = s.reminder_id WHERE s.debtor_id = \(debtor) ORDER BY s.reminder_id",
            logger: logger
        ).decode(String.self) {
            planned.append(id)
        }
        for reminderID in planned {
            var items: [(ItemID, String)] = []
            for try await (invoice, instalment, stage) in try await connection.query(
                "SELECT invoice, instalment, stage FROM plan_step WHERE reminder_id = \(reminderID) ORDER BY invoice, instalment, stage", logger: logger
            ).decode((String, Int, String).self) {
                items.append((ItemID(invoice: invoice, instalment: instalment == 0 ? nil : instalment), stage))
            }
            guard let reason = items.lazy.compactMap({ stop($0.0) }).first else { continue }
            let result = try await Self.applyCancellation(
                connection,
                CancellationRequest(scope: .reminder, value: reminderID, reason: reason, note: "receivables: an item changed before the reminder went out"),
                source: "receivables", origin: "receivables:\(reminderID):\(reason.rawValue)", now: now, logger: logger)
            guard result.cancelled > 0 else { continue }
            // Cancelled before it went out: its items still open take the step again at the next run.
            for (item, stage) in items where byItem[item]?.settled == nil {
                let instalment = item.instalment ?? 0
                try await connection.query(
                    "DELETE FROM plan_step WHERE invoice = \(item.invoice) AND instalment = \(instalment) AND stage = \(stage)", logger: logger)
            }
        }
        // Spool reminders name invoices: an invoice with nothing left stops them.
        let settledInvoices = Set(standing.items.map(\.id.invoice)).filter { number in
            standing.items.allSatisfy { $0.id.invoice != number || $0.settled != nil }
        }
        for number in settledInvoices.sorted() {
            var waiting = false
            for try await (any) in try await connection.query(
                """
                SELECT EXISTS (SELECT 1 FROM reminder_invoice ri JOIN delivery d ON d.reminder_id = ri.reminder_id
                WHERE ri.invoice = \(number) AND d.status IN ('pending', 'paused'))
                """, logger: logger
            ).decode(Bool.self) {
                waiting = any
            }
            guard waiting else { continue }
            _ = try await Self.applyCancellation(
                connection, CancellationRequest(scope: .invoice, value: number, reason: .paid, note: "settled in the receivables ledger"), source: "receivables",
                origin: "receivables-settled:\(number)", now: now, logger: logger)
        }
    }

    // MARK: Snapshots

    public func forEachDebtorSnapshot(debtor only: String?, _ body: @escaping @Sendable (DebtorSnapshot) throws -> Void) async throws {
        try await forEachSnapshot(only: only) { snapshot, _ in try body(snapshot) }
    }

    public func forEachReportSnapshot(_ body: @escaping @Sendable (DebtorSnapshot, [SentReminder]) throws -> Void) async throws {
        try await forEachSnapshot(only: nil, withSent: true) { snapshot, sent in try body(snapshot, sent) }
    }

    /// Debtor by debtor in id order, in one repeatable-read transaction (one consistent state),
    /// the ids read in pages of 1,000.
    func forEachSnapshot(only: String?, withSent: Bool = false, _ body: (DebtorSnapshot, [SentReminder]) throws -> Void) async throws {
        try await translatingErrors {
            try await client.withConnection { connection in
                try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
                do {
                    var after = ""
                    var first = true
                    while true {
                        var ids: [String] = []
                        if let only {
                            if !first { break }
                            ids = [only]
                        } else {
                            for try await (id) in try await connection.query(
                                "SELECT id FROM rec_debtor WHERE \(first) OR id > \(after) ORDER BY id LIMIT 1000", logger: logger
                            ).decode(String.self) {
                                ids.append(id)
                            }
                        }
                        first = false
                        if ids.isEmpty { break }
                        for id in ids {
                            guard let snapshot = try await snapshot(connection, debtor: id) else { continue }
                            try body(snapshot, withSent ? try await sentReminders(connection, debtor: id) : [])
                        }
                        after = ids.last ?? after
                        if only != nil || ids.count < 1000 { break }
                    }
                    try await connection.query("COMMIT", logger: logger)
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        }
    }

    /// One debtor's snapshot, nil when the ledger has no such debtor.
    func snapshot(_ connection: PostgresConnection, debtor id: String) async throws -> DebtorSnapshot? {
        var found: ReceivableDebtor?
        for try await (name, email, phone, country, locale, timezone, kind, terms, ladder) in try await connection.query(
            "SELECT name, email, phone, country, locale, timezone, kind, payment_terms, ladder FROM rec_debtor WHERE id = \(id)", logger: logger
        ).decode((String, String?, String?, String, String, String, String, String?, String?).self) {
            found = StoredSnapshot.debtor(
                id: id, name: name, email: email, phone: phone, country: country, locale: locale, timezone: timezone, kind: kind, paymentTerms: terms, ladder: ladder)
        }
        guard let debtor = found else { return nil }
        var instalments: [String: [Instalment]] = [:]
        for try await (invoice, dueOn, amount) in try await connection.query(
            """
            SELECT i.invoice, i.due_on, i.amount FROM rec_instalment i JOIN rec_invoice v ON v.number = i.invoice
            WHERE v.debtor_id = \(id) ORDER BY i.invoice, i.due_on
            """, logger: logger
        ).decode((String, String, Int64).self) {
            guard let due = CivilDate(dueOn) else { throw LedgerCorruption(description: "instalment of \(invoice): unreadable date") }
            instalments[invoice, default: []].append(Instalment(dueOn: due, amount: amount))
        }
        var invoices: [ReceivableInvoice] = []
        for try await (number, issuedOn, dueOn, amount, currency, url, document) in try await connection.query(
            "SELECT number, issued_on, due_on, amount, currency, payment_url, document FROM rec_invoice WHERE debtor_id = \(id) ORDER BY number COLLATE \"C\"",
            logger: logger
        ).decode((String, String, String, Int64, String, String?, String?).self) {
            guard let issued = CivilDate(issuedOn), let due = CivilDate(dueOn) else { throw LedgerCorruption(description: "invoice \(number): unreadable dates") }
            invoices.append(
                ReceivableInvoice(
                    number: number, debtor: id, issuedOn: issued, dueOn: due, amount: amount, currency: currency, instalments: instalments[number] ?? [],
                    paymentURL: url, document: document))
        }
        var contents: [String] = []
        for try await (content) in try await connection.query(
            "SELECT content FROM rec_movement WHERE debtor_id = \(id) ORDER BY key COLLATE \"C\"", logger: logger
        ).decode(String.self) {
            contents.append(content)
        }
        var steps: [(invoice: String, instalment: Int, stage: String, on: String)] = []
        for try await (invoice, instalment, stage, on) in try await connection.query(
            """
            SELECT s.invoice, s.instalment, s.stage, s.on_date FROM plan_step s
            WHERE s.debtor_id = \(id)
              AND NOT (EXISTS (SELECT 1 FROM delivery d WHERE d.reminder_id = s.reminder_id)
                AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.reminder_id = s.reminder_id AND d.status != 'expired'))
            ORDER BY s.on_date, s.stage COLLATE "C"
            """, logger: logger
        ).decode((String, Int, String, String).self) {
            steps.append((invoice, instalment, stage, on))
        }
        return DebtorSnapshot(
            debtor: debtor, invoices: invoices, movements: try StoredSnapshot.movements(contents, debtor: id), taken: StoredSnapshot.taken(steps))
    }

    /// The debtor's reminders that reached a transport, each with its first such attempt.
    func sentReminders(_ connection: PostgresConnection, debtor: String) async throws -> [SentReminder] {
        var sent: [SentReminder] = []
        for try await (id, record, at) in try await connection.query(
            """
            SELECT r.id, r.record, MIN(a.started_at) FROM reminder r JOIN attempt a ON a.reminder_id = r.id
            WHERE r.debtor_id = \(debtor) AND a.outcome IN ('sent', 'unknown') GROUP BY r.id, r.record ORDER BY r.id
            """, logger: logger
        ).decode((String, String, Double).self) {
            guard let reminder = try? Reminder.stored(record, id: id) else { continue }
            sent.append(SentReminder(id: id, stage: reminder.stage, sentAt: Date(timeIntervalSince1970: at), invoices: reminder.invoices.map(\.number)))
        }
        return sent
    }

    public func deliveryCounts(asOf: Date) async throws -> [(channel: String, stage: String, status: String, count: Int)] {
        let t = asOf.timeIntervalSince1970
        return try await translatingErrors {
            var counts: [(channel: String, stage: String, status: String, count: Int)] = []
            for try await (channel, stage, status, count) in try await client.query(
                """
                SELECT d.channel, COALESCE(r.record::json->>'stage', ''), s.status, COUNT(*)
                FROM delivery d JOIN reminder r ON r.id = d.reminder_id
                CROSS JOIN LATERAL (SELECT e.to_status AS status FROM event e
                                    WHERE e.reminder_id = d.reminder_id AND e.channel = d.channel AND e.at <= \(t) ORDER BY e.id DESC LIMIT 1) s
                GROUP BY 1, 2, 3
                ORDER BY d.channel COLLATE "C", COALESCE(r.record::json->>'stage', '') COLLATE "C", s.status COLLATE "C"
                """, logger: logger
            ).decode((String, String, String, Int).self) {
                counts.append((channel: channel, stage: stage, status: status, count: count))
            }
            return counts
        }
    }

    public func lastPlanRun() async throws -> CivilDate? {
        try await translatingErrors {
            for try await (day) in try await client.query("SELECT as_of_date FROM plan_run ORDER BY as_of_date DESC LIMIT 1", logger: logger).decode(String.self) {
                return CivilDate(day)
            }
            return nil
        }
    }

    public func lastPlanCommit() async throws -> Date? {
        try await translatingErrors {
            for try await (at) in try await client.query("SELECT MAX(committed_at) FROM plan_run", logger: logger).decode(Double?.self) {
                return at.map(Date.init(timeIntervalSince1970:))
            }
            return nil
        }
    }

    public func reminderHistory(invoice: String) async throws -> [ReminderTrace] {
        try await translatingErrors {
            var traces: [ReminderTrace] = []
            for try await (id, record, channel, status, sentAt, recipient) in try await client.query(
                """
                SELECT r.id, r.record, d.channel, d.status,
                  (SELECT MIN(a.started_at) FROM attempt a WHERE a.reminder_id = d.reminder_id AND a.channel = d.channel AND a.outcome IN ('sent', 'unknown')),
                  (SELECT a.recipient FROM attempt a WHERE a.reminder_id = d.reminder_id AND a.channel = d.channel AND a.outcome IN ('sent', 'unknown')
                   ORDER BY a.number LIMIT 1)
                FROM reminder_invoice ri JOIN reminder r ON r.id = ri.reminder_id JOIN delivery d ON d.reminder_id = r.id
                WHERE ri.invoice = \(invoice) ORDER BY r.ingested_at, r.id, d.channel
                """, logger: logger
            ).decode((String, String, String, String, Double?, String?).self) {
                traces.append(
                    ReminderTrace(
                        reminderID: id, stage: (try? Reminder.stored(record, id: id).stage) ?? "", channel: channel, status: status,
                        sentAt: sentAt.map(Date.init(timeIntervalSince1970:)), recipient: recipient))
            }
            return traces
        }
    }
}
