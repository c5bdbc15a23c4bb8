import Foundation
import Logging
import PostgresNIO

/// A statement of the send path, run once or more per delivery: a named prepared statement, so
/// PostgreSQL parses and plans it once per connection instead of at every run (parsing and
/// planning were a third of the machine's time with three nodes sending). Its SQL numbers its
/// parameters; `bindingDataTypes` says their types, in the order the bindings are appended.
protocol SendPathStatement: PostgresPreparedStatement where Row == PostgresRow {
    var bindings: PostgresBindings { get }
}

extension SendPathStatement {
    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }

    /// Runs a statement that returns no rows, to its end (an error surfaces here, not later).
    func run(on connection: PostgresConnection, logger: Logger) async throws {
        for try await _ in try await connection.execute(self, logger: logger) {}
    }
}

/// The send path's statements (PostgresSending.swift, PostgresPolicy.swift).
enum SendPath {
    /// The debtor's contact history (`PostgresLedger.contactsSQL`): debtor, reminder left out, since.
    struct Contacts: SendPathStatement {
        static let sql = PostgresLedger.contactsSQL
        static let bindingDataTypes: [PostgresDataType] = [.text, .text, .float8]
        let bindings: PostgresBindings
    }

    /// Takes the per-debtor advisory lock of a claim: seed, reminder, channel → the debtor.
    struct LockDebtor: SendPathStatement {
        static let sql = """
            SELECT debtor_id FROM delivery, LATERAL (SELECT pg_advisory_xact_lock(hashtextextended(debtor_id, $1))) AS locked
            WHERE reminder_id = $2 AND channel = $3
            """
        static let bindingDataTypes: [PostgresDataType] = [.int8, .text, .text]
        let bindings: PostgresBindings
    }

    /// After the lock: whether another claim is sending to the debtor, and its contact history.
    struct BusyAndContacts: SendPathStatement {
        static let sql = "SELECT EXISTS (SELECT 1 FROM delivery WHERE debtor_id = $1 AND status = 'sending'), ARRAY(\(PostgresLedger.contactsSQL))"
        static let bindingDataTypes: [PostgresDataType] = [.text, .text, .float8]
        let bindings: PostgresBindings
    }

    /// A delivery's row locked for its claim, with the kill switches, the suppression of the
    /// recipient and the cancellation in force: now, address (lowercased), reminder, channel.
    struct Look: SendPathStatement {
        static let sql = """
            SELECT d.status, d.attempts,
              EXISTS (SELECT 1 FROM hold h WHERE h.channel IN ('*', d.channel) AND (h.until IS NULL OR h.until > $1)),
              EXISTS (SELECT 1 FROM suppression WHERE address = $2),
              c.scope, c.value, c.reason, c.until, c.source
            FROM delivery d
            LEFT JOIN LATERAL (
              SELECT c.scope, c.value, c.reason, c.until, c.source FROM cancellation c, reminder r
              WHERE r.id = d.reminder_id AND c.lifted_at IS NULL AND c.amount_paid IS NULL AND (c.until IS NULL OR c.until > $1)
                AND ((c.scope = 'reminder' AND c.value = r.id) OR (c.scope = 'debtor' AND c.value = r.debtor_id)
                  OR (c.scope = 'file' AND c.value = r.source_file)
                  OR (c.scope = 'invoice' AND c.value IN (SELECT invoice FROM reminder_invoice WHERE reminder_id = r.id)))
              ORDER BY c.until IS NOT NULL, c.until DESC
              LIMIT 1) c ON true
            WHERE d.reminder_id = $3 AND d.channel = $4
            FOR UPDATE OF d
            """
        static let bindingDataTypes: [PostgresDataType] = [.float8, .text, .text, .text]
        let bindings: PostgresBindings
    }

    /// The claim: the delivery `sending` under this node's lease, its attempt and its event.
    /// Attempt number, now, group lead, node, lease end, reminder, channel, transport, recipient, reason.
    struct Claim: SendPathStatement {
        static let sql = """
            WITH claimed AS (
              UPDATE delivery SET status = 'sending', attempts = $1, first_attempt_at = COALESCE(first_attempt_at, $2), updated_at = $2,
                group_lead = $3, locked_by = $4, lease_until = $5
              WHERE reminder_id = $6 AND channel = $7
              RETURNING 1
            ), tried AS (
              INSERT INTO attempt (reminder_id, channel, number, transport, recipient, started_at, outcome, group_id, node)
              VALUES ($6, $7, $1, $8, $9, $2, 'sending', $3, $4)
            )
            INSERT INTO event (reminder_id, channel, at, from_status, to_status, reason) VALUES ($6, $7, $2, 'pending', 'sending', $10)
            """
        static let bindingDataTypes: [PostgresDataType] = [.int8, .float8, .text, .text, .float8, .text, .text, .text, .text, .text]
        let bindings: PostgresBindings
    }

    /// An outcome that needs nothing more (`PostgresLedger.settlesInOneStatement`): the attempt,
    /// then the delivery if this node still holds that attempt, with its event, or else an event
    /// keeping the late outcome. Transport used (or null), now, attempt outcome, code, detail,
    /// provider id, reminder, channel, attempt number, new status, last error, due at, node,
    /// reason, late-outcome reason.
    struct Settle: SendPathStatement {
        static let sql = """
            WITH tried AS (
              UPDATE attempt SET transport = COALESCE($1, transport), finished_at = $2, outcome = $3, code = $4, detail = $5, provider_id = $6
              WHERE reminder_id = $7 AND channel = $8 AND number = $9
            ), settled AS (
              UPDATE delivery SET status = $10, updated_at = $2, provider_id = COALESCE($6, provider_id), last_code = $4,
                last_error = $11, due_at = COALESCE($12, due_at), poll_at = NULL, locked_by = NULL, lease_until = NULL
              WHERE reminder_id = $7 AND channel = $8 AND status = 'sending' AND locked_by = $13 AND attempts = $9
              RETURNING status
            ), recorded AS (
              INSERT INTO event (reminder_id, channel, at, from_status, to_status, reason)
              SELECT $7, $8, $2, 'sending', status, $14 FROM settled
            )
            INSERT INTO event (reminder_id, channel, at, from_status, to_status, reason)
            SELECT d.reminder_id, d.channel, $2, d.status, d.status, $15 FROM delivery d
            WHERE d.reminder_id = $7 AND d.channel = $8 AND NOT EXISTS (SELECT 1 FROM settled)
            """
        static let bindingDataTypes: [PostgresDataType] = [
            .text, .float8, .text, .int8, .text, .text, .text, .text, .int8, .text, .text, .float8, .text, .text, .text,
        ]
        let bindings: PostgresBindings
    }

    /// A reminder taken in: the reminder (unless its id is there already), its invoices, a
    /// delivery per channel and their events. Id, record, source file, queue, now, debtor,
    /// invoices, channels, priority, due at, expires at, unscored band, reason → the id if new.
    struct Ingest: SendPathStatement {
        static let sql = """
            WITH new AS (
              INSERT INTO reminder (id, record, source_file, queue, ingested_at, debtor_id)
              VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING id
            ), invoices AS (
              INSERT INTO reminder_invoice (invoice, reminder_id) SELECT invoice, new.id FROM new, unnest($7::text[]) AS invoice
            ), deliveries AS (
              INSERT INTO delivery (reminder_id, channel, status, queue, priority, due_at, expires_at, updated_at, debtor_id, risk)
              SELECT new.id, channel, 'pending', $4, $9, $10, $11, $5, $6, COALESCE((SELECT band FROM debtor_risk WHERE debtor_id = $6), $12)
              FROM new, unnest($8::text[]) AS channel
            ), events AS (
              INSERT INTO event (reminder_id, channel, at, from_status, to_status, reason)
              SELECT new.id, c.channel, $5, NULL, 'pending', $13 FROM new, unnest($8::text[]) WITH ORDINALITY AS c(channel, n) ORDER BY c.n
            )
            SELECT id FROM new
            """
        static let bindingDataTypes: [PostgresDataType] = [
            .text, .text, .text, .text, .float8, .text, .textArray, .textArray, .int8, .float8, .float8, .int8, .text,
        ]
        let bindings: PostgresBindings
    }

    /// `relance_claim` (`PostgresSchema.claimFunction`): reminder, channel, now, address
    /// (lowercased), recipient, transport, node, lease end, the debtor-lock seed, and the contact
    /// history the policy saw (debtor, reminder left out, since, instants; nulls without one).
    struct ClaimOne: SendPathStatement {
        static let sql = "SELECT claim_verdict, claim_attempt FROM relance_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        static let bindingDataTypes: [PostgresDataType] = [
            .text, .text, .float8, .text, .text, .text, .text, .float8, .int8, .text, .text, .float8, .float8Array,
        ]
        let bindings: PostgresBindings
    }

    /// Reminders taken in, several at once (`PostgresLedger.insertBatch`): ids, records, debtors,
    /// due at, expires at (infinity: none), source file, queue, now, invoices (owner, number),
    /// channels (owner, channel), priority, unscored band, reason → the ids that were new.
    struct IngestBatch: SendPathStatement {
        static let sql = """
            WITH input AS (
              SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[]) AS i(id, record, debtor_id, due_at, expires_at)
            ), new AS (
              INSERT INTO reminder (id, record, source_file, queue, ingested_at, debtor_id)
              SELECT id, record, $6, $7, $8, debtor_id FROM input ORDER BY id
              ON CONFLICT (id) DO NOTHING RETURNING id
            ), invoices AS (
              INSERT INTO reminder_invoice (invoice, reminder_id)
              SELECT v.invoice, v.id FROM unnest($9::text[], $10::text[]) AS v(id, invoice) JOIN new ON new.id = v.id
            ), channels AS (
              SELECT c.id, c.channel, c.n FROM unnest($11::text[], $12::text[]) WITH ORDINALITY AS c(id, channel, n) JOIN new ON new.id = c.id
            ), deliveries AS (
              INSERT INTO delivery (reminder_id, channel, status, queue, priority, due_at, expires_at, updated_at, debtor_id, risk)
              SELECT c.id, c.channel, 'pending', $7, $13, i.due_at, NULLIF(i.expires_at, 'infinity'::float8), $8, i.debtor_id, COALESCE(b.band, $14)
              FROM channels c JOIN input i ON i.id = c.id LEFT JOIN debtor_risk b ON b.debtor_id = i.debtor_id
            ), events AS (
              INSERT INTO event (reminder_id, channel, at, from_status, to_status, reason)
              SELECT c.id, c.channel, $8, NULL, 'pending', $15 FROM channels c ORDER BY c.n
            )
            SELECT id FROM new
            """
        static let bindingDataTypes: [PostgresDataType] = [
            .textArray, .textArray, .textArray, .float8Array, .float8Array, .text, .text, .float8, .textArray, .textArray, .textArray, .textArray,
            .int8, .int8, .text,
        ]
        let bindings: PostgresBindings
    }
}
