import Foundation
import GRDB

/// The ledger's schema: every migration, in order. A ledger of any earlier version is brought up to
/// date when it is opened for writing.
extension Ledger {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE reminder (
                        id TEXT PRIMARY KEY NOT NULL,
                        record TEXT NOT NULL,
                        source_file TEXT NOT NULL,
                        queue TEXT NOT NULL,
                        ingested_at DOUBLE NOT NULL
                    );
                    CREATE TABLE delivery (
                        reminder_id TEXT NOT NULL REFERENCES reminder(id),
                        channel TEXT NOT NULL,
                        status TEXT NOT NULL,
                        queue TEXT NOT NULL,
                        priority INTEGER NOT NULL,
                        due_at DOUBLE NOT NULL,
                        expires_at DOUBLE,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        first_attempt_at DOUBLE,
                        provider_id TEXT,
                        last_code INTEGER,
                        last_error TEXT,
                        updated_at DOUBLE NOT NULL,
                        PRIMARY KEY (reminder_id, channel)
                    ) WITHOUT ROWID;
                    CREATE INDEX delivery_due ON delivery(status, priority DESC, due_at);
                    CREATE TABLE attempt (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        reminder_id TEXT NOT NULL,
                        channel TEXT NOT NULL,
                        number INTEGER NOT NULL,
                        transport TEXT NOT NULL,
                        recipient TEXT NOT NULL,
                        started_at DOUBLE NOT NULL,
                        finished_at DOUBLE,
                        outcome TEXT NOT NULL,
                        code INTEGER,
                        detail TEXT,
                        provider_id TEXT,
                        FOREIGN KEY (reminder_id, channel) REFERENCES delivery(reminder_id, channel)
                    );
                    CREATE INDEX attempt_delivery ON attempt(reminder_id, channel);
                    CREATE INDEX attempt_started ON attempt(started_at);
                    CREATE TABLE event (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        reminder_id TEXT NOT NULL,
                        channel TEXT NOT NULL,
                        at DOUBLE NOT NULL,
                        from_status TEXT,
                        to_status TEXT NOT NULL,
                        reason TEXT NOT NULL
                    );
                    CREATE INDEX event_delivery ON event(reminder_id, channel);
                    """)
        }
        m.registerMigration("v2-callbacks") { db in
            try db.execute(
                sql: """
                    CREATE TABLE provider_message (
                        provider TEXT NOT NULL,
                        message_id TEXT NOT NULL,
                        reminder_id TEXT NOT NULL,
                        channel TEXT NOT NULL,
                        part INTEGER NOT NULL,
                        parts INTEGER NOT NULL,
                        status TEXT,
                        PRIMARY KEY (provider, message_id)
                    ) WITHOUT ROWID;
                    CREATE INDEX provider_message_delivery ON provider_message(reminder_id, channel);
                    CREATE TABLE callback (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        provider TEXT NOT NULL,
                        message_id TEXT NOT NULL,
                        reminder_id TEXT,
                        channel TEXT,
                        received_at DOUBLE NOT NULL,
                        status TEXT NOT NULL,
                        raw TEXT NOT NULL,
                        result TEXT NOT NULL
                    );
                    CREATE INDEX callback_message ON callback(provider, message_id);
                    CREATE INDEX callback_delivery ON callback(reminder_id, channel);
                    CREATE TABLE suppression (
                        address TEXT PRIMARY KEY NOT NULL,
                        reason TEXT NOT NULL,
                        source TEXT NOT NULL,
                        created_at DOUBLE NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE webhook_seen (
                        id TEXT PRIMARY KEY NOT NULL,
                        seen_at DOUBLE NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE health (id INTEGER PRIMARY KEY, checked_at DOUBLE NOT NULL);
                    """)
        }
        m.registerMigration("v3-purge-indexes") { db in
            // The orphan TTL and replay-window purges run on every callback: keep them off full scans.
            try db.execute(
                sql: """
                    CREATE INDEX callback_result_received ON callback(result, received_at);
                    CREATE INDEX webhook_seen_at ON webhook_seen(seen_at);
                    """)
        }
        m.registerMigration("v4-debtors") { db in
            // Who each reminder is for and which invoices it is about: fairness across debtors,
            // frequency caps, and cancellation by debtor or invoice, all without decoding records.
            try db.execute(
                sql: """
                    ALTER TABLE reminder ADD COLUMN debtor_id TEXT NOT NULL DEFAULT '';
                    UPDATE reminder SET debtor_id = json_extract(record, '$.debtor.id');
                    CREATE INDEX reminder_debtor ON reminder(debtor_id);
                    CREATE INDEX reminder_source ON reminder(source_file);
                    ALTER TABLE delivery ADD COLUMN debtor_id TEXT NOT NULL DEFAULT '';
                    UPDATE delivery SET debtor_id = (SELECT debtor_id FROM reminder WHERE reminder.id = delivery.reminder_id);
                    CREATE INDEX delivery_debtor ON delivery(debtor_id, status);
                    CREATE TABLE reminder_invoice (
                        invoice TEXT NOT NULL,
                        reminder_id TEXT NOT NULL REFERENCES reminder(id),
                        PRIMARY KEY (invoice, reminder_id)
                    ) WITHOUT ROWID;
                    INSERT OR IGNORE INTO reminder_invoice (invoice, reminder_id)
                        SELECT json_extract(j.value, '$.number'), r.id FROM reminder r, json_each(r.record, '$.invoices') j;
                    """)
        }
        m.registerMigration("v5-policy") { db in
            try db.execute(
                sql: """
                    CREATE TABLE cancellation (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        scope TEXT NOT NULL,
                        value TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        until DOUBLE,
                        amount_paid TEXT,
                        note TEXT,
                        source TEXT NOT NULL,
                        created_at DOUBLE NOT NULL,
                        lifted_at DOUBLE
                    );
                    CREATE INDEX cancellation_scope ON cancellation(scope, value);
                    CREATE TABLE hold (
                        channel TEXT PRIMARY KEY NOT NULL,
                        until DOUBLE,
                        reason TEXT NOT NULL,
                        created_at DOUBLE NOT NULL
                    ) WITHOUT ROWID;
                    ALTER TABLE delivery ADD COLUMN paused_until DOUBLE;
                    CREATE INDEX attempt_outcome_started ON attempt(outcome, started_at);
                    CREATE INDEX reminder_invoice_reminder ON reminder_invoice(reminder_id);
                    """)
        }
        m.registerMigration("v6-retention") { db in
            try db.execute(sql: "ALTER TABLE reminder ADD COLUMN erased_at DOUBLE")
        }
        m.registerMigration("v7-grouping") { db in
            // Several reminders sent as one message: each attempt names the group's lead reminder.
            try db.execute(
                sql: """
                    ALTER TABLE attempt ADD COLUMN group_id TEXT;
                    ALTER TABLE delivery ADD COLUMN group_lead TEXT;
                    CREATE INDEX delivery_group ON delivery(group_lead, channel);
                    """)
        }
        m.registerMigration("v8-cancellation-origin") { db in
            // A cancellation record read from a file that could not be moved away is seen again at
            // every pass: its origin (file identity and line) makes the second application a no-op.
            try db.execute(
                sql: """
                    ALTER TABLE cancellation ADD COLUMN origin TEXT;
                    CREATE UNIQUE INDEX cancellation_origin ON cancellation(origin) WHERE origin IS NOT NULL;
                    """)
        }
        m.registerMigration("v9-partial-group-index") { db in
            // Only grouped deliveries have a lead: every ingested delivery paid for an index entry
            // of NULL. Lookups by lead (`group_lead = ?`) still use the partial index.
            try db.execute(
                sql: """
                    DROP INDEX delivery_group;
                    CREATE INDEX delivery_group ON delivery(group_lead, channel) WHERE group_lead IS NOT NULL;
                    """)
        }
        m.registerMigration("v10-receivables") { db in
            // The receivables ledger (DESIGN.md "Receivables and the dunning plan"). Amounts in
            // minor units; dates as YYYY-MM-DD; nothing outstanding is stored, it is derived.
            try db.execute(
                sql: """
                    CREATE TABLE rec_debtor (
                        id TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL, email TEXT, phone TEXT,
                        country TEXT NOT NULL, locale TEXT NOT NULL, timezone TEXT NOT NULL, kind TEXT NOT NULL,
                        payment_terms TEXT, ladder TEXT,
                        known INTEGER NOT NULL,
                        updated_at DOUBLE NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE rec_invoice (
                        number TEXT PRIMARY KEY NOT NULL,
                        debtor_id TEXT NOT NULL,
                        issued_on TEXT NOT NULL, due_on TEXT NOT NULL, due_from_terms INTEGER NOT NULL,
                        amount INTEGER NOT NULL, currency TEXT NOT NULL,
                        payment_url TEXT, document TEXT,
                        updated_at DOUBLE NOT NULL
                    ) WITHOUT ROWID;
                    CREATE INDEX rec_invoice_debtor ON rec_invoice(debtor_id);
                    CREATE TABLE rec_instalment (
                        invoice TEXT NOT NULL, due_on TEXT NOT NULL, amount INTEGER NOT NULL,
                        PRIMARY KEY (invoice, due_on)
                    ) WITHOUT ROWID;
                    CREATE TABLE rec_movement (
                        key TEXT PRIMARY KEY NOT NULL,
                        kind TEXT NOT NULL, debtor_id TEXT NOT NULL, invoice TEXT,
                        content TEXT NOT NULL,
                        recorded_at DOUBLE NOT NULL
                    ) WITHOUT ROWID;
                    CREATE INDEX rec_movement_debtor ON rec_movement(debtor_id);
                    CREATE TABLE rec_event (
                        id INTEGER PRIMARY KEY,
                        debtor_id TEXT NOT NULL, subject TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
                        source TEXT NOT NULL, at DOUBLE NOT NULL
                    );
                    CREATE INDEX rec_event_debtor ON rec_event(debtor_id, at);
                    CREATE TABLE plan_run (
                        id INTEGER PRIMARY KEY,
                        as_of DOUBLE NOT NULL, as_of_date TEXT NOT NULL,
                        committed_at DOUBLE NOT NULL, reminders INTEGER NOT NULL, held INTEGER NOT NULL
                    );
                    CREATE TABLE plan_step (
                        debtor_id TEXT NOT NULL, invoice TEXT NOT NULL, instalment INTEGER NOT NULL,
                        stage TEXT NOT NULL, on_date TEXT NOT NULL, reminder_id TEXT NOT NULL, run_id INTEGER NOT NULL,
                        PRIMARY KEY (invoice, instalment, stage)
                    ) WITHOUT ROWID;
                    CREATE INDEX plan_step_debtor ON plan_step(debtor_id);
                    """)
        }
        m.registerMigration("v11-bounces") { db in
            // One row per bounce message and delivery (`reference`: the bounce's Message-ID, or a
            // digest of it): the pipe, the Maildir and IMAP may all see the same message.
            try db.execute(
                sql: """
                    CREATE TABLE bounce (
                        id INTEGER PRIMARY KEY,
                        reference TEXT NOT NULL,
                        reminder_id TEXT NOT NULL, channel TEXT NOT NULL,
                        address TEXT NOT NULL, kind TEXT NOT NULL, status TEXT, diagnostic TEXT,
                        source TEXT NOT NULL, received_at DOUBLE NOT NULL, result TEXT NOT NULL,
                        UNIQUE (reference, reminder_id, channel)
                    );
                    CREATE INDEX bounce_address ON bounce(address, received_at);
                    CREATE INDEX bounce_delivery ON bounce(reminder_id, channel);
                    """)
        }
        m.registerMigration("v12-reconciliation") { db in
            // An SMS accepted by a gateway with a status API is polled while it stays `sent`:
            // `poll_at` orders the polls (due when poll_at <= now - sms.reconcile_after), NULL once
            // it has a final status or reconciliation gave up. The partial index keeps each round's
            // cost to the deliveries it polls, whatever the number of settled ones.
            try db.execute(
                sql: """
                    ALTER TABLE delivery ADD COLUMN poll_at DOUBLE;
                    CREATE INDEX delivery_poll ON delivery(poll_at) WHERE poll_at IS NOT NULL;
                    """)
        }
        m.registerMigration("v13-score-models") { db in
            // The fitted risk models, newest last: coefficients, standardisation and payment curves,
            // no personal data (the only per-debtor trace of a score is its band, `debtor_risk`, v14).
            try db.execute(
                sql: """
                    CREATE TABLE score_model (
                        id INTEGER PRIMARY KEY,
                        trained_at DOUBLE NOT NULL,
                        as_of TEXT NOT NULL,
                        model TEXT NOT NULL
                    );
                    """)
        }
        m.registerMigration("v14-risk-order") { db in
            // The dispatcher orders due work by risk within a priority. `debtor_risk` keeps the
            // risk band (0 lowest … 4 highest, the quintiles of the model in force) of each debtor
            // with open items, replaced at each refit and erased by `relance forget`; a delivery
            // carries its debtor's band (2, the middle one, when the debtor has none), and the due
            // index serves the order (priority, band, age) one index range per (priority, band).
            try db.execute(
                sql: """
                    CREATE TABLE debtor_risk (
                        debtor_id TEXT PRIMARY KEY,
                        band INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    ALTER TABLE delivery ADD COLUMN risk INTEGER NOT NULL DEFAULT 2;
                    DROP INDEX delivery_due;
                    CREATE INDEX delivery_due ON delivery(status, priority DESC, risk DESC, due_at);
                    """)
        }
        m.registerMigration("v15-expiry-index") { db in
            // The expiry look (once a second) reads only the waiting deliveries that carry an
            // `expires_at`, in its order, instead of every waiting delivery.
            try db.execute(
                sql: """
                    CREATE INDEX delivery_expiry ON delivery(expires_at) WHERE expires_at IS NOT NULL AND status IN ('pending', 'paused');
                    """)
        }
        m.registerMigration("v16-callback-indexes") { db in
            // Callbacks are looked up by the provider's message id only while they are orphans
            // (no send known yet); a known message's earlier callbacks are found through its
            // delivery. An index over every callback's message id (a random key) and one over every
            // callback's result wrote a page or two in each commit for each callback received.
            try db.execute(
                sql: """
                    DROP INDEX callback_message;
                    DROP INDEX callback_result_received;
                    CREATE INDEX callback_orphan ON callback(provider, message_id) WHERE result = 'orphan';
                    CREATE INDEX callback_orphan_received ON callback(received_at) WHERE result = 'orphan';
                    """)
        }
        m.registerMigration("v17-due-order-by-queue-and-channel") { db in
            // The due walk reads each (queue, channel) range of a (priority, band) on its own, up
            // to the room the queue's share and the channel's rate limit leave: a queue at its
            // share or a channel waiting for its rate, however big its backlog, no longer hides
            // the others' work behind it (it was read row by row, and refused).
            // What every send changes twice, a delivery's status and its attempt's outcome, is no
            // longer a key of the indexes that find a debtor's deliveries and a channel's attempts
            // of the day: each send moved two entries of each, at places of their own (debtors
            // come in no order the sending follows), and the single writer is what bounds a
            // pass's rate. A debtor's deliveries are found by (debtor, channel), the daily volume
            // cap counts a channel's attempts by start and reads each one's outcome.
            try db.execute(
                sql: """
                    DROP INDEX delivery_due;
                    CREATE INDEX delivery_due ON delivery(status, priority DESC, risk DESC, queue, channel, due_at);
                    DROP INDEX delivery_debtor;
                    CREATE INDEX delivery_debtor ON delivery(debtor_id, channel);
                    DROP INDEX attempt_outcome_started;
                    CREATE INDEX attempt_channel_started ON attempt(channel, started_at);
                    """)
        }
        return m
    }
}
