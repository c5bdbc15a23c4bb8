import Foundation
import GRDB
import Logging
import RelanceCore
@testable import RelancePostgres
import RelanceStore
import RelanceTransport
import Testing

/// The PostgreSQL ledger's first parts (issue 16), against a throwaway cluster: `relance migrate`
/// (versioned, idempotent, safe when nodes run it at once, refusing a newer schema) and
/// `relance export` (a SQLite ledger copied whole, every count verified, content unchanged).
@Suite(.serialized, .enabled(if: PostgresCluster.available, "Debian's postgresql package (make test installs it)"))
struct PostgresStoreTests {
    @Test func migrateCreatesTheSchemaOnceAndRefusesANewerOne() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        try await PostgresCluster.with(in: sandbox) { cluster in try await Self.migrate(sandbox, cluster) }
    }

    static func migrate(_ sandbox: Sandbox, _ cluster: PostgresCluster) async throws {
        let env = ["RELANCE_STORE_URL": cluster.url]
        let first = try await sandbox.relance(["migrate"], environment: env)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("schema migrated from version 0 to \(PostgresSchema.current)"), "\(first.stdout)")
        #expect(first.stdout.contains("?sslmode=disable"), "a loopback server: no TLS unless asked")
        // What several nodes need is there: each delivery's lease, each attempt's node.
        let leaseColumns = try await cluster.psql(
            "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'delivery' AND column_name IN ('locked_by', 'lease_until', 'attempts')"
        )
        #expect(leaseColumns == "attempts,lease_until,locked_by")

        let again = try await sandbox.relance(["migrate"], environment: env)
        #expect(again.status == 0 && again.stdout.contains("schema up to date (version \(PostgresSchema.current))"), "\(again.stdout)")

        // Nodes started together migrate together: each step is applied once.
        try await cluster.psql("CREATE DATABASE together")
        let togetherURL = "postgres://\(PostgresCluster.user)@127.0.0.1:\(cluster.port)/together"
        async let a = sandbox.relance(["migrate"], environment: ["RELANCE_STORE_URL": togetherURL])
        async let b = sandbox.relance(["migrate"], environment: ["RELANCE_STORE_URL": togetherURL])
        let (ra, rb) = try await (a, b)
        #expect(ra.status == 0 && rb.status == 0, "\(ra.stderr) \(rb.stderr)")
        #expect([ra.stdout, rb.stdout].filter { $0.contains("schema migrated") }.count == 1, "\(ra.stdout) | \(rb.stdout)")
        #expect(try await cluster.psql("SELECT COUNT(*) FROM relance_schema", database: "together") == "\(PostgresSchema.migrations.count)")

        // A schema a newer Relance wrote is never touched.
        try await cluster.psql("INSERT INTO relance_schema (version, name, applied_at) VALUES (99, 'from the future', 0)")
        let newer = try await sandbox.relance(["migrate"], environment: env)
        #expect(newer.status == 1)
        #expect(newer.stderr.contains("relance: the schema is at version 99, newer than this Relance knows (\(PostgresSchema.current)): upgrade Relance"), "\(newer.stderr)")
    }

    @Test func exportCopiesTheWholeLedgerAndVerifiesEveryCount() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        // A ledger with a bit of everything: reminders sent (outbox), a suppression whose reason has
        // a line break, receivables with payments and disputes, a risk model and the debtors' bands.
        try sandbox.dropLines(
            "a.jsonl",
            (0..<30).map { Records.reminder("EX-\($0)", email: "ex\($0)@example.org", name: $0 == 0 ? "Zoë \\ Backslash" : "Élodie Martin") })
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(try await sandbox.relance(["suppress", "gone@example.org", "--reason", "asked by phone\nticket 42 \\ done"]).status == 0)
        let feed = sandbox.root + "/feed.jsonl"
        try ScoreCLITests.feed().write(to: URL(fileURLWithPath: feed))
        #expect(try await sandbox.relance(["import", feed]).status == 0)
        #expect(try await sandbox.relance(["score", "--train", "--as-of", "2025-06-01"]).status == 0)

        try await PostgresCluster.with(in: sandbox) { cluster in try await Self.export(sandbox, cluster) }
    }

    static func export(_ sandbox: Sandbox, _ cluster: PostgresCluster) async throws {
        let env = ["RELANCE_STORE_URL": cluster.url]
        let notMigrated = try await sandbox.relance(["export", "--to", cluster.url])
        #expect(notMigrated.status == 1 && notMigrated.stderr.contains("no Relance schema yet: run relance migrate first"), "\(notMigrated.stderr)")
        #expect(try await sandbox.relance(["migrate"], environment: env).status == 0)

        let export = try await sandbox.relance(["export", "--to", cluster.url])
        #expect(export.status == 0, "\(export.stderr)")
        let lines = export.stdout.split(separator: "\n")
        #expect(lines.first == "TABLE\tSQLITE\tPOSTGRESQL")
        #expect(export.stdout.contains("every count verified") && !export.stdout.contains("DIFFERS"), "\(export.stdout)")

        // Every table, row for row; then values that test the copy's text: backslashes, line
        // breaks, non-ASCII, instants to the last bit of their double.
        let ledger = try sandbox.ledger()
        for table in PostgresSchema.exportedTables {
            let sqliteCount = try await Self.sqliteValue(ledger, "SELECT COUNT(*) FROM \(table)")
            #expect(try await cluster.psql("SELECT COUNT(*) FROM \(table)") == sqliteCount, "\(table)")
        }
        let invoices = try await cluster.psql("SELECT COUNT(*) FROM rec_invoice")
        let bands = try await cluster.psql("SELECT COUNT(*) FROM debtor_risk")
        #expect(invoices != "0" && bands != "0")
        let name = try await cluster.psql("SELECT record FROM reminder WHERE id = 'EX-0'")
        let storedName = try #require(try await Self.sqliteValue(ledger, "SELECT record FROM reminder WHERE id = 'EX-0'"))
        #expect(name == storedName && name.contains(#"Zoë \\ Backslash"#), "\(name)")
        let reason = try await cluster.psql("SELECT reason FROM suppression WHERE address = 'gone@example.org'")
        #expect(reason == "asked by phone\nticket 42 \\ done")
        for (table, column) in [("event", "at"), ("attempt", "started_at"), ("rec_event", "at")] {
            let queue = try DatabaseQueue(path: ledger.path, configuration: { var c = Configuration(); c.readonly = true; return c }())
            let stored = try await queue.read { db in try Double.fetchAll(db, sql: "SELECT \(column) FROM \(table) ORDER BY id") }
            // PostgreSQL prints a double in its shortest exact form: parsed back, it is the same bits.
            let copied = try await cluster.psql("SELECT \(column) FROM \(table) ORDER BY id").split(separator: "\n").compactMap { Double($0) }
            #expect(!stored.isEmpty && copied == stored, "\(table).\(column)")
        }
        // Ids are kept, and new rows get new ones.
        let lastEvent = try await cluster.psql("SELECT MAX(id) FROM event")
        #expect(try await Self.sqliteValue(ledger, "SELECT MAX(id) FROM event") == lastEvent)
        let next = try await cluster.psql("INSERT INTO event (reminder_id, channel, at, to_status, reason) VALUES ('X', 'email', 0, 'pending', 'test') RETURNING id")
        #expect(Int(next) == (Int(lastEvent) ?? 0) + 1)

        // Only into an empty database.
        let twice = try await sandbox.relance(["export", "--to", cluster.url])
        #expect(twice.status == 1 && twice.stderr.contains("already holds data (table reminder): export only into an empty database"), "\(twice.stderr)")
    }

    /// Two nodes on one database: a claim holds while its lease runs; once it lapses another node
    /// rescues the delivery, and the first node's late outcome is kept as an event without
    /// overwriting the newer attempt.
    @Test func aLapsedClaimIsRescuedAndItsLateOutcomeOverwritesNothing() async throws {
        let sandbox = try Sandbox()
        try await PostgresCluster.with(in: sandbox) { cluster in
            let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
            let settings = PostgresSettings(url: try PostgresURL(parsing: cluster.url), password: "", connections: 4)
            _ = try await settings.withClient(logger: logger) { client in try await PostgresMigrator.migrate(client, logger: logger) }
            let a = try await PostgresLedger.open(settings, node: "node-a", lease: .seconds(30), logger: logger)
            let b = try await PostgresLedger.open(settings, node: "node-b", lease: .seconds(30), logger: logger)
            let t0 = Date(timeIntervalSince1970: 1_800_000_000)
            let key = DeliveryKey(reminderID: "X", channel: .email)
            _ = try await a.ingest([StoreCapabilityConformance.reminder("X"), StoreCapabilityConformance.reminder("Y")], sourceFile: "f", queue: "default", priority: 0, now: t0)
            #expect(try await a.markSending(key, transport: "smtp", recipient: "n@example.org", now: t0) == 1)
            #expect(try await b.markSending(key, transport: "smtp", recipient: "n@example.org", now: t0) == nil, "claimed by node-a")
            // While node-a's lease runs, node-b leaves its claim alone, and so does node-a's own round.
            #expect(try await b.rescueLapsedClaims(resend: true, now: t0.addingTimeInterval(29)).isEmpty)
            #expect(try await a.rescueLapsedClaims(resend: true, now: t0.addingTimeInterval(1)).isEmpty, "its own running claim stays")
            // node-a froze past its lease: node-b rescues the delivery (resend) and sends it again.
            #expect(try await b.rescueLapsedClaims(resend: true, now: t0.addingTimeInterval(31)) == [key])
            #expect(try await b.markSending(key, transport: "smtp", recipient: "n@example.org", now: t0.addingTimeInterval(32)) == 2)
            // node-a wakes up with the answer to attempt 1: kept, not applied.
            try await a.recordOutcome(key, attempt: 1, outcome: .sent(providerID: "A-1", code: 250, detail: "ok"), retryAt: nil, now: t0.addingTimeInterval(33))
            #expect(try await a.deliveries(reminderID: "X").first?.status == "sending", "node-b's attempt 2 still runs")
            try await b.recordOutcome(key, attempt: 2, outcome: .sent(providerID: "B-2", code: 250, detail: "ok"), retryAt: nil, now: t0.addingTimeInterval(34))
            #expect(try await b.deliveries(reminderID: "X").first?.status == "sent")
            let events = try await cluster.psql("SELECT reason FROM event WHERE reminder_id = 'X' ORDER BY id")
            #expect(events.contains("in doubt (node node-a lost its claim)"), "\(events)")
            #expect(events.contains("late outcome of attempt 1 on node node-a (its claim had lapsed): sent: ok; not applied"), "\(events)")
            #expect(try await cluster.psql("SELECT number || ':' || node || ':' || outcome FROM attempt WHERE reminder_id = 'X' ORDER BY number") == "1:node-a:sent\n2:node-b:sent")
            // A claim renewed while its call runs is not rescued; once renewals stop, it is.
            let z = DeliveryKey(reminderID: "Z", channel: .email)
            _ = try await a.ingest([StoreCapabilityConformance.reminder("Z")], sourceFile: "f", queue: "default", priority: 0, now: t0)
            #expect(try await a.markSending(z, transport: "smtp", recipient: "z@example.org", now: t0) == 1)
            #expect(a.claimRenewalInterval == .seconds(10))
            try await a.renewClaims([z], now: t0.addingTimeInterval(25))
            #expect(try await b.rescueLapsedClaims(resend: false, now: t0.addingTimeInterval(40)).isEmpty, "renewed at 25 s: good until 55 s")
            #expect(try await b.rescueLapsedClaims(resend: false, now: t0.addingTimeInterval(56)) == [z])
            // Without resend, a lapsed claim is in doubt: `unknown`, for an operator.
            #expect(try await a.markSending(DeliveryKey(reminderID: "Y", channel: .email), transport: "smtp", recipient: "y@example.org", now: t0) == 1)
            #expect(try await b.recoverInDoubt(resend: false, now: t0.addingTimeInterval(60)) == [DeliveryKey(reminderID: "Y", channel: .email)])
            #expect(try await b.deliveries(reminderID: "Y").first?.status == "unknown")
            await a.close()
            await b.close()
        }
    }

    /// Two daemons on one database, each with its own spool, sending to one relay: every
    /// reminder goes out once, including those dropped into both spools, and both nodes work.
    @Test func twoNodesShareOneDatabaseAndSendEachReminderOnce() async throws {
        let (a, b) = (try Sandbox(), try Sandbox())
        let smtp = try await SMTPServer(sandbox: a)
        try a.writeConfig(smtpPort: smtp.port, concurrency: 4, connections: 2)
        try b.writeConfig(smtpPort: smtp.port, concurrency: 4, connections: 2)
        try await PostgresCluster.with(in: a) { cluster in
            let env = ["RELANCE_STORE_URL": cluster.url]
            #expect(try await a.relance(["migrate"], environment: env).status == 0)
            func reminders(_ range: Range<Int>) -> [[String: Any]] {
                range.map { Records.reminder("N-\($0)", email: "n\($0)@example.org") }
            }
            try a.dropLines("a.jsonl", reminders(0..<60) + reminders(120..<140))
            try b.dropLines("b.jsonl", reminders(60..<120) + reminders(120..<140))
            let nodeA = try a.start(["serve"], environment: env.merging(["RELANCE_STORE_NODE_ID": "node-a"]) { _, n in n })
            let nodeB = try b.start(["serve"], environment: env.merging(["RELANCE_STORE_NODE_ID": "node-b"]) { _, n in n })
            try await eventually("140 reminders sent", timeout: .seconds(120)) {
                (try? await cluster.psql("SELECT COUNT(*) FROM delivery WHERE status = 'sent'")) == "140"
            }
            nodeA.signal(SIGTERM)
            nodeB.signal(SIGTERM)
            #expect(try await nodeA.wait() == 0, "\(nodeA.stderr.suffix(1500))")
            #expect(try await nodeB.wait() == 0, "\(nodeB.stderr.suffix(1500))")
            let received = try recipients(of: smtp)
            #expect(received.count == 140 && received.values.allSatisfy { $0 == 1 }, "\(received.filter { $0.value > 1 })")
            #expect(try await cluster.psql("SELECT COUNT(*) FROM delivery WHERE status != 'sent'") == "0")
            let nodes = try await cluster.psql("SELECT node || ' ' || (COUNT(*) > 0) FROM attempt GROUP BY node ORDER BY node")
            #expect(nodes == "node-a true\nnode-b true", "both nodes sent")
            #expect(try await cluster.psql("SELECT COUNT(*) FROM relance_node") == "2", "each node's heartbeat")
            #expect(nodeA.stderr.contains("ledger on PostgreSQL") && nodeA.stderr.contains("relance.node=node-a"), "\(nodeA.stderr.prefix(1500)) | \(nodeA.stdout.prefix(500))")
            // `relance status` reads the shared ledger: the nodes, the queue (and does not count itself as a node).
            let status = try await a.relance(["status"], environment: env)
            #expect(status.status == 0, "\(status.stderr)")
            #expect(status.stdout.contains("ledger \(try PostgresURL(parsing: cluster.url)):") && status.stdout.contains("email\tsent\t140"), "\(status.stdout)")
            #expect(status.stdout.contains("node node-a\tseen") && status.stdout.contains("node node-b\tseen"), "\(status.stdout)")
            #expect(try await cluster.psql("SELECT COUNT(*) FROM relance_node") == "2")
        }
    }

    /// A send that lasts longer than the lease (a slow relay): its node renews the claim while
    /// the call runs, so the other node's rescue leaves it alone and it is settled `sent`, once.
    @Test func aClaimIsRenewedWhileItsSendRuns() async throws {
        let (a, b) = (try Sandbox(), try Sandbox())
        let smtp = try await SMTPServer(sandbox: a, slow: 8)
        try a.writeConfig(smtpPort: smtp.port)
        try b.writeConfig(smtpPort: smtp.port)
        try await PostgresCluster.with(in: a) { cluster in
            let env = ["RELANCE_STORE_URL": cluster.url, "RELANCE_STORE_LEASE": "5s"]
            #expect(try await a.relance(["migrate"], environment: env).status == 0)
            try a.dropLines("slow.jsonl", [Records.reminder("SLOW-1", email: "slow-1@example.org")])
            let nodeA = try a.start(["serve"], environment: env.merging(["RELANCE_STORE_NODE_ID": "node-a"]) { _, n in n })
            let nodeB = try b.start(["serve"], environment: env.merging(["RELANCE_STORE_NODE_ID": "node-b"]) { _, n in n })
            try await eventually("the slow send to settle", timeout: .seconds(60)) {
                (try? await cluster.psql("SELECT status FROM delivery WHERE reminder_id = 'SLOW-1'")) == "sent"
            }
            nodeA.signal(SIGTERM)
            nodeB.signal(SIGTERM)
            let (exitA, exitB) = (try await nodeA.wait(), try await nodeB.wait())
            #expect(exitA == 0 && exitB == 0)
            let attempts = try await cluster.psql("SELECT number || ' ' || outcome || ' ' || (finished_at - started_at > 5) FROM attempt WHERE reminder_id = 'SLOW-1'")
            #expect(attempts == "1 sent true", "one attempt, longer than the lease, settled by its node")
            let events = try await cluster.psql("SELECT string_agg(reason, ' | ') FROM event WHERE reminder_id = 'SLOW-1'")
            #expect(!events.contains("lost its claim") && !events.contains("late outcome"), "\(events)")
            #expect(try recipients(of: smtp) == ["slow-1@example.org": 1])
        }
    }

    /// Failover: a node frozen for good (SIGSTOP, never resumed) with sends in flight. Its claims
    /// become in doubt once their lease lapses, the other node carries on with everything else,
    /// nothing is sent twice. The time to rescue is printed against two lease lengths (measured,
    /// not asserted).
    @Test func aNodeFrozenForGoodIsRescuedAndTheOtherCarriesOn() async throws {
        let (a, b) = (try Sandbox(), try Sandbox())
        let smtp = try await SMTPServer(sandbox: a, slow: 3)
        try a.writeConfig(smtpPort: smtp.port, concurrency: 4, connections: 4)
        try b.writeConfig(smtpPort: smtp.port, concurrency: 4, connections: 4)
        try await PostgresCluster.with(in: a) { cluster in
            let env = ["RELANCE_STORE_URL": cluster.url, "RELANCE_STORE_LEASE": "5s"]
            #expect(try await a.relance(["migrate"], environment: env).status == 0)
            // The slow ones go first (ids in order) and fill node-a's 4 sending slots for 3 s; the
            // others wait, reserved by node-a; more arrive at node-b after the freeze.
            let reminders = (0..<4).map { Records.reminder("E-SLOW-\($0)", email: "slow-\($0)@example.org") }
                + (0..<30).map { Records.reminder("F-\($0)", email: "f\($0)@example.org") }
            let later = (0..<10).map { Records.reminder("G-\($0)", email: "g\($0)@example.org") }
            try a.dropLines("a.jsonl", reminders)
            let nodeA = try a.start(["serve"], environment: env.merging(["RELANCE_STORE_NODE_ID": "node-a"]) { _, n in n })
            try await eventually("node-a sending to the slow relay", timeout: .seconds(60)) {
                let claims = try? await cluster.psql("SELECT COUNT(*) FROM delivery WHERE status = 'sending' AND locked_by = 'node-a' AND reminder_id LIKE 'E-SLOW-%'")
                return (Int(claims ?? "") ?? 0) > 0
            }
            nodeA.signal(SIGSTOP)
            let frozenAt = ContinuousClock.now
            let claimed = try await cluster.psql("SELECT reminder_id FROM delivery WHERE status = 'sending' AND locked_by = 'node-a' ORDER BY reminder_id")
                .split(separator: "\n").map(String.init)
            try b.dropLines("b.jsonl", later)
            let nodeB = try b.start(["serve"], environment: env.merging(["RELANCE_STORE_NODE_ID": "node-b"]) { _, n in n })
            let list = claimed.map { "'\($0)'" }.joined(separator: ",")
            do {
                // (An outcome node-a sent just before the freeze may still settle its claim `sent`.)
                try await eventually("node-a's claims rescued", timeout: .seconds(60)) {
                    (try? await cluster.psql("SELECT COUNT(*) FROM delivery WHERE reminder_id IN (\(list)) AND status = 'sending'")) == "0"
                }
            } catch {
                let rows = (try? await cluster.psql("SELECT reminder_id || ' ' || status || ' ' || COALESCE(locked_by, '-') || ' ' || COALESCE(lease_until::text, '-') FROM delivery WHERE status IN ('sending', 'pending')")) ?? "?"
                let sessions = (try? await cluster.psql("SELECT state || ' ' || COALESCE(wait_event_type, '-') || ' ' || left(query, 80) FROM pg_stat_activity WHERE datname = 'relance'")) ?? "?"
                Issue.record("claimed \(claimed); rows: \(rows); sessions: \(sessions); node-b: \(nodeB.stderr.suffix(2000))")
                throw error
            }
            let rescuedAfter = ContinuousClock.now - frozenAt
            try await eventually("node-b carries on with the rest", timeout: .seconds(90)) {
                (try? await cluster.psql("SELECT COUNT(*) FROM delivery WHERE status IN ('pending', 'sending')")) == "0"
            }
            print("failover: node-a frozen with \(claimed.count) claim(s) in flight; in doubt \(rescuedAfter) after the freeze (lease 5 s, two leases 10 s)")
            nodeA.signal(SIGKILL)
            nodeB.signal(SIGTERM)
            _ = try await nodeA.wait()
            #expect(try await nodeB.wait() == 0, "\(nodeB.stderr.suffix(1500))")
            let unknown = try await cluster.psql("SELECT reminder_id FROM delivery WHERE status = 'unknown' ORDER BY reminder_id").split(separator: "\n").map(String.init)
            #expect(Set(unknown).isSubset(of: claimed), "only the frozen node's claims are in doubt: \(unknown) of \(claimed)")
            // A send to the slow relay was waiting for its reply when the node froze: in doubt for sure.
            #expect(claimed.filter { $0.hasPrefix("E-SLOW") }.allSatisfy(unknown.contains), "\(claimed) \(unknown)")
            #expect(!unknown.isEmpty)
            for id in unknown {
                let reasons = try await cluster.psql("SELECT string_agg(reason, ' | ') FROM event WHERE reminder_id = '\(id)'")
                #expect(reasons.contains("in doubt"), "\(reasons)")
            }
            #expect(try await cluster.psql("SELECT COUNT(*) FROM delivery WHERE status = 'sent'") == "\(reminders.count + later.count - unknown.count)")
            let received = try recipients(of: smtp)
            #expect(received.values.allSatisfy { $0 == 1 }, "nothing twice: \(received.filter { $0.value > 1 })")
            let byB = Int(try await cluster.psql("SELECT COUNT(*) FROM attempt WHERE node = 'node-b' AND outcome = 'sent'")) ?? 0
            #expect(byB >= later.count, "node-b carried on: its own reminders and what node-a had reserved")
        }
    }

    /// Failover with `in_doubt: resend`: node-a is frozen for good while the gateway takes its SMS
    /// (slowly). node-b rescues the lapsed claim, asks the gateway, finds the message and records it
    /// as sent: not sent twice.
    @Test func aRescuedSMSIsLookedUpAtTheGatewayBeforeAResend() async throws {
        let (a, b) = (try Sandbox(), try Sandbox())
        let sim = try await GatewaySimulator(sandbox: a, arguments: ["--slow-ms", "3000"])
        for node in [a, b] { try node.writeConfig(sms: sim.twilioSection, delivery: "in_doubt: resend") }
        try await PostgresCluster.with(in: a) { cluster in
            let env = ["RELANCE_STORE_URL": cluster.url, "RELANCE_STORE_LEASE": "5s"]
            #expect(try await a.relance(["migrate"], environment: env).status == 0)
            var slow = Records.reminder("SLOW-SMS", channels: ["sms"])
            var debtor = slow["debtor"] as? [String: Any] ?? [:]
            debtor["phone"] = "+33612340999"
            slow["debtor"] = debtor
            try a.dropLines("a.jsonl", [slow])
            let nodeA = try a.start(["serve"], environment: env.merging(["RELANCE_STORE_NODE_ID": "node-a"]) { _, n in n })
            try await eventually("node-a sending the slow SMS", timeout: .seconds(60)) {
                (try? await cluster.psql("SELECT status FROM delivery WHERE reminder_id = 'SLOW-SMS'")) == "sending"
            }
            nodeA.signal(SIGSTOP)
            // The gateway takes it while node-a is frozen.
            try await eventually("the gateway to take it", timeout: .seconds(30)) { sim.requests.contains { $0["outcome"] as? String == "accepted" } }
            let nodeB = try b.start(["serve"], environment: env.merging(["RELANCE_STORE_NODE_ID": "node-b"]) { _, n in n })
            try await eventually("node-b to settle it", timeout: .seconds(60)) {
                (try? await cluster.psql("SELECT status FROM delivery WHERE reminder_id = 'SLOW-SMS'")) == "sent"
            }
            nodeA.signal(SIGKILL)
            nodeB.signal(SIGTERM)
            _ = try await nodeA.wait()
            #expect(try await nodeB.wait() == 0, "\(nodeB.stderr.suffix(1500))")
            let accepted = sim.requests.filter { $0["outcome"] as? String == "accepted" }
            #expect(accepted.count == 1, "sent once: \(accepted.count)")
            let reasons = try await cluster.psql("SELECT string_agg(reason, ' | ' ORDER BY id) FROM event WHERE reminder_id = 'SLOW-SMS'")
            #expect(reasons.contains("in doubt") && reasons.contains("in doubt, not resent: twilio says it sent SM"), "\(reasons)")
        }
    }

    /// Each node's sessions end a transaction left idle past half a lease (a node frozen inside
    /// one), so its locks cannot stop the other nodes for good.
    @Test func aNodesSessionsEndATransactionLeftOpenPastHalfALease() async throws {
        let sandbox = try Sandbox()
        try await PostgresCluster.with(in: sandbox) { cluster in
            let url = try PostgresURL(parsing: cluster.url)
            let configuration = PostgresSettings(url: url, password: "", connections: 2).nodeConfiguration(lease: .seconds(12))
            #expect(configuration.options.additionalStartupParameters.contains { $0 == ("idle_in_transaction_session_timeout", "6000") })
            let ledger = try await cluster.openLedger(node: "n")
            let setting = try await ledger.client.withConnection { connection in
                var value = ""
                for try await (text) in try await connection.query("SHOW idle_in_transaction_session_timeout", logger: ledger.logger).decode(String.self) {
                    value = text
                }
                return value
            }
            await ledger.close()
            #expect(setting == "30s", "half of the default lease (60 s)")
        }
    }

    /// The commands on a PostgreSQL ledger say what they say on SQLite, word for word: import,
    /// receivables, plan (preview and commit), report, score, cancel, pause and resume, suppress
    /// and unsuppress, receipts, resolve, the dry run, forget, purge.
    @Test func theCreditControlCommandsTellTheSameStoryOnPostgreSQL() async throws {
        let (lite, pg) = (try Sandbox(), try Sandbox())
        try lite.writeConfig()
        try pg.writeConfig()
        let asOf = "2026-11-30T09:00:00+01:00"
        let steps: [[String]] = [
            ["import", "FEED"], ["import", "FEED"],
            ["receivables", "--as-of", asOf, "--format", "csv"],
            ["plan", "--as-of", asOf, "--format", "json"],
            ["plan", "--commit", "--as-of", asOf, "--format", "json"],
            ["plan", "--commit", "--as-of", asOf],
            ["report", "--as-of", "2026-11-30", "--format", "json"],
            ["score", "--train", "--as-of", "2026-11-30"],
            ["cancel", "--invoice", "F-1", "--reason", "paid"],
            ["pause", "--all", "--channel", "sms"], ["resume", "--all"], ["resume", "--all"],
            ["suppress", "Someone@Example.org"], ["suppress", "--list", "--format", "csv"], ["unsuppress", "someone@example.org"],
            ["unsuppress", "someone@example.org"], ["receipts", "--format", "csv"], ["receipts", "--invoice", "F-1", "--format", "json"],
            ["resolve", "--reminder", "nope", "--channel", "email", "--as", "sent"], ["serve", "--dry-run", "--now", asOf], ["preview", "ONE", "--now", asOf],
            ["receivables", "--as-of", asOf, "--status", "handed_off", "--format", "csv"],
            ["forget", "--debtor", "C-2"],
            ["purge"],
        ]
        func story(_ sandbox: Sandbox, env: [String: String]) async throws -> [String] {
            let feed = sandbox.root + "/feed.jsonl"
            try ReceivablesCLITests.feed.write(toFile: feed, atomically: true, encoding: .utf8)
            let spoolFile = sandbox.root + "/one.jsonl"
            let one = try JSONSerialization.data(withJSONObject: Records.reminder("PREVIEW-1", email: "p@example.org"), options: [.sortedKeys])
            try one.write(to: URL(fileURLWithPath: spoolFile))
            var lines: [String] = []
            for step in steps {
                let run = try await sandbox.relance(step.map { $0 == "FEED" ? feed : $0 == "ONE" ? spoolFile : $0 }, environment: env)
                // The suppression list's "since" is the moment of the run; the rest must match.
                let out = step.contains("--list") ? run.stdout.split(separator: "\n").map { $0.split(separator: ",").prefix(3).joined(separator: ",") }.joined(separator: "\n") : run.stdout
                // So are the log lines' instants (and a purge's cutoff).
                // (And the PostgreSQL side's store.url comes from the environment, which serve logs.)
                let stderr = run.stderr.split(separator: "\n").filter { !$0.contains("environment overrides") }.joined(separator: "\n")
                let text = "\(out)\(stderr)".replacingOccurrences(of: sandbox.root, with: "ROOT")
                    .replacing(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/, with: "INSTANT")
                lines.append("$ relance \(step.joined(separator: " ")) → \(run.status)\n\(text)")
            }
            return lines
        }
        let onSQLite = try await story(lite, env: [:])
        try await PostgresCluster.with(in: pg) { cluster in
            let env = ["RELANCE_STORE_URL": cluster.url]
            #expect(try await pg.relance(["migrate"], environment: env).status == 0)
            let onPostgres = try await story(pg, env: env)
            for (a, b) in zip(onSQLite, onPostgres) { #expect(a == b) }
            #expect(onSQLite.count == onPostgres.count)
            // And the story did happen (not two empty outputs alike).
            #expect(onPostgres[0].contains("6 applied, 0 unchanged, 1 rejected") && onPostgres[4].contains("\"created\":[\""), "\(onPostgres.prefix(5))")
            #expect(try await cluster.psql("SELECT COUNT(*) FROM rec_invoice") != "0")
        }
    }

    /// Each node's /metrics shows the cluster: every node's claims and heartbeat, and which node
    /// answered. Another node ("ghost", in this process, a minute's lease) holds one claim.
    @Test func everyNodesClaimsAreOnEachNodesMetrics() async throws {
        let b = try Sandbox()
        let port = WebhookIntegrationTests.freePort()
        try b.writeConfig(listen: "127.0.0.1:\(port)")
        try await PostgresCluster.with(in: b) { cluster in
            let env = ["RELANCE_STORE_URL": cluster.url, "RELANCE_STORE_NODE_ID": "node-b"]
            #expect(try await b.relance(["migrate"], environment: env).status == 0)
            let ghost = try await cluster.openLedger(node: "ghost")
            _ = try await ghost.ingest([StoreCapabilityConformance.reminder("G-1")], sourceFile: "g", queue: "default", priority: 0, now: Date())
            #expect(try await ghost.markSending(DeliveryKey(reminderID: "G-1", channel: .email), transport: "smtp", recipient: "n@example.org", now: Date()) == 1)
            let nodeB = try b.start(["serve"], environment: env)
            let client = try HTTPClient(configuration: .init(connections: 1))
            var metrics = ""
            do {
                try await eventually("the cluster on node-b's /metrics", timeout: .seconds(60)) {
                    guard let response = try? await client.execute(HTTPClient.Request(method: "GET", url: "http://127.0.0.1:\(port)/metrics")).get() else { return false }
                    metrics = String(decoding: response.body, as: UTF8.self)
                    return metrics.contains(#"relance_node_claims{node="ghost"} 1"#)
                }
            } catch {
                Issue.record("metrics: \(metrics.split(separator: "\n").filter { $0.contains("node") }); node-b: \(nodeB.stderr.suffix(1500))")
                throw error
            }
            #expect(metrics.contains(#"relance_node_claims{node="node-b"} 0"#) && metrics.contains(#"relance_node_info{node="node-b"} 1"#), "\(metrics)")
            #expect(metrics.contains(#"relance_node_seen_timestamp_seconds{node="ghost"}"#) && metrics.contains(#"relance_deliveries{channel="email",status="sending"} 1"#))
            nodeB.signal(SIGTERM)
            #expect(try await nodeB.wait() == 0, "\(nodeB.stderr.suffix(1500))")
            await ghost.close()
        }
    }

    /// Every table of the SQLite ledger has its PostgreSQL twin: a new table without one fails here.
    @Test func everyLedgerTableIsExported() async throws {
        let ledger = try temporaryLedgerForIntegration()
        #expect(Set(try await ledger.tableNames()) == Set(PostgresSchema.exportedTables))
        #expect(Set(PostgresSchema.identityTables).isSubset(of: PostgresSchema.exportedTables))
    }

    /// Against a server that takes TCP connections over TLS only, with a self-signed certificate:
    /// `sslmode=require` encrypts without checking the certificate; `verify-full` (the default for
    /// a remote server) refuses a certificate no trusted authority signed; `disable` is refused.
    @Test func tlsModesAgainstASelfSignedServer() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        try await PostgresCluster.with(in: sandbox, tls: true) { cluster in
            let base = "postgres://\(PostgresCluster.user)@127.0.0.1:\(cluster.port)/\(PostgresCluster.database)"
            let encrypted = try await sandbox.relance(["migrate"], environment: ["RELANCE_STORE_URL": base + "?sslmode=require"])
            #expect(encrypted.status == 0 && encrypted.stdout.contains("?sslmode=require: schema migrated"), "\(encrypted.stderr)")
            let checked = try await sandbox.relance(["migrate"], environment: ["RELANCE_STORE_URL": base + "?sslmode=verify-full"])
            #expect(checked.status == 1 && checked.stderr.contains("PostgreSQL at " + base + "?sslmode=verify-full"), "\(checked.stderr)")
            #expect(checked.stderr.lowercased().contains("certificate"), "\(checked.stderr)")
            // The server takes TCP connections over TLS only: the one that worked was encrypted.
            let clear = try await sandbox.relance(["migrate"], environment: ["RELANCE_STORE_URL": base + "?sslmode=disable"])
            #expect(clear.status == 1 && clear.stderr.contains("no encryption"), "\(clear.stderr)")
        }
    }

    @Test func badURLsAndUnreachableServersAreClearErrors() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let withPassword = try await sandbox.relance(["migrate"], environment: ["RELANCE_STORE_URL": "postgres://relance:hunter2@db.example:5432/relance"])
        #expect(withPassword.status == 2 && withPassword.stderr.contains("put it in store.password") && !withPassword.stderr.contains("hunter2"))
        let badExport = try await sandbox.relance(["export", "--to", "mysql://x@y/z"])
        #expect(badExport.status == 2 && badExport.stderr.contains("--to: the scheme must be postgres:// or postgresql://"), "\(badExport.stderr)")
        let port = try freePort()
        let down = try await sandbox.relance(["migrate"], environment: ["RELANCE_STORE_URL": "postgres://relance@127.0.0.1:\(port)/relance"])
        #expect(down.status == 1 && down.stderr.contains("PostgreSQL at postgres://relance@127.0.0.1:\(port)/relance"), "\(down.stderr)")
        // Every command reads the server of store.url, and says so when it is down.
        let receipts = try await sandbox.relance(["receipts"], environment: ["RELANCE_STORE_URL": "postgres://relance@127.0.0.1:\(port)/relance"])
        #expect(receipts.status == 1 && receipts.stderr.contains("PostgreSQL at postgres://relance@127.0.0.1:\(port)/relance"), "\(receipts.stderr)")
    }

    static func sqliteValue(_ ledger: Ledger, _ sql: String) async throws -> String? {
        let queue = try DatabaseQueue(path: ledger.path, configuration: { var c = Configuration(); c.readonly = true; return c }())
        return try await queue.read { db in try String.fetchOne(db, sql: sql) }
    }
}

/// A fresh ledger file in a temporary directory.
func temporaryLedgerForIntegration() throws -> Ledger {
    let dir = NSTemporaryDirectory() + "relance-pg-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return try Ledger(path: dir + "/ledger.sqlite")
}
