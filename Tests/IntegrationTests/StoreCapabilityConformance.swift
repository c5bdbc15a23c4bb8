import Foundation
import Logging
import RelanceCore
import RelancePostgres
import RelanceStore
import Testing

/// The capabilities the PostgreSQL ledger has: all of `LedgerStore` now.
typealias PostgresCapabilities = LedgerStore

/// A ledger backend under test for the capabilities a new backend has so far: how to run a test
/// body against a fresh, empty store of it (and clean up after).
struct PartialBackend: Sendable, CustomStringConvertible {
    var description: String
    var run: @Sendable (_ body: @Sendable (any PostgresCapabilities) async throws -> Void) async throws -> Void

    static let sqlite = PartialBackend(description: "sqlite") { body in try await body(try temporaryLedgerForIntegration()) }

    /// A throwaway cluster per test, migrated in-process, then `PostgresLedger`.
    static let postgres = PartialBackend(description: "postgres") { body in
        let sandbox = try Sandbox()
        try await PostgresCluster.with(in: sandbox) { cluster in
            let ledger = try await cluster.openLedger(node: "test-node")
            do {
                try await body(ledger)
                await ledger.close()
            } catch {
                await ledger.close()
                throw error
            }
        }
    }

    static var all: [PartialBackend] { PostgresCluster.available ? [sqlite, postgres] : [sqlite] }
}

extension PostgresCluster {
    /// The ledger on this cluster's database, its schema migrated first.
    func openLedger(node: String) async throws -> PostgresLedger {
        let url = try PostgresURL(parsing: self.url)
        let settings = PostgresSettings(url: url, password: "", connections: 4)
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        _ = try await settings.withClient(logger: logger) { client in try await PostgresMigrator.migrate(client, logger: logger) }
        return try await PostgresLedger.open(settings, node: node, logger: logger)
    }
}

/// The capabilities PostgreSQL has so far (intake, health, scheduling, score, policy, sending,
/// callbacks, bounces, reconciliation, retention), for every backend
/// that has them (SQLite, and PostgreSQL as it is being built): the same test bodies, through the
/// protocols only. A test moves here from `LedgerStoreConformance` when PostgreSQL gains what it uses.
@Suite(.serialized) struct StoreCapabilityConformance {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static func email(_ id: String) -> DeliveryKey { DeliveryKey(reminderID: id, channel: .email) }

    /// An SMS reminder ingested and marked `sending` through Twilio (attempt 1).
    static func sendingSMS(_ store: any PostgresCapabilities, _ id: String) async throws -> DeliveryKey {
        _ = try await store.ingest([reminder(id, channels: [.sms])], sourceFile: "f-\(id)", queue: "default", priority: 0, now: t0)
        let key = DeliveryKey(reminderID: id, channel: .sms)
        #expect(try await store.markSending(key, transport: "twilio", recipient: "+33612345678", now: t0) == 1)
        return key
    }

    static func reminder(
        _ id: String, amount: String = "10.00", channels: [Channel] = [.email], notBefore: Date? = nil, expiresAt: Date? = nil, debtor: String? = nil
    ) -> Reminder {
        Reminder(
            id: id, stage: "reminder_1", channels: channels, notBefore: notBefore, expiresAt: expiresAt,
            debtor: Debtor(
                id: debtor ?? "C-\(id)", name: "Zoë \\ O'Brien", email: "n@example.org", phone: "+33612345678", country: "FR", locale: "fr-FR",
                timezone: "Europe/Paris", kind: .consumer),
            invoices: [
                Invoice(
                    number: "F-\(id)", amount: amount, currency: "EUR", issuedOn: CivilDate(year: 2026, month: 1, day: 1),
                    dueOn: CivilDate(year: 2026, month: 2, day: 1))
            ])
    }

    @Test(arguments: PartialBackend.all)
    func ingestIsIdempotentOnTheReminderID(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            let first = try await store.ingest([Self.reminder("A"), Self.reminder("B")], sourceFile: "f1", queue: "default", priority: 0, now: Self.t0)
            #expect(first.inserted == ["A", "B"])
            let again = try await store.ingest(
                [Self.reminder("A"), Self.reminder("B", amount: "99.00")], sourceFile: "f2", queue: "default", priority: 0, now: Self.t0)
            #expect(again.inserted.isEmpty && again.duplicates == ["A"] && again.conflicts == ["B"])
            #expect(try await store.presence(of: Self.reminder("A")) == .same)
            #expect(try await store.presence(of: Self.reminder("B", amount: "99.00")) == .conflict)
            #expect(try await store.presence(of: Self.reminder("Z")) == .absent)
            #expect(try await store.sourceFile(reminderID: "B") == "f1")
            #expect(try await store.sourceFile(reminderID: "Z") == nil)
        }
    }

    @Test(arguments: PartialBackend.all)
    func eachChannelIsAPendingDeliveryCountedByStatus(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            let later = Self.t0.addingTimeInterval(3600)
            _ = try await store.ingest(
                [Self.reminder("E", channels: [.email, .sms], notBefore: later), Self.reminder("S", channels: [.sms])], sourceFile: "f", queue: "default",
                priority: 0, now: Self.t0)
            let deliveries = try await store.deliveries(reminderID: "E")
            #expect(deliveries.map(\.channel) == ["email", "sms"] && deliveries.allSatisfy { $0.status == "pending" && $0.attempts == 0 })
            #expect(deliveries.allSatisfy { $0.dueAt == later }, "due when the record says, not before")
            #expect(try await store.deliveries(reminderID: nil, status: .pending).count == 3)
            #expect(try await store.deliveries(reminderID: nil, status: .sent).isEmpty)
            let counts = try await store.statusCounts().map { "\($0.channel) \($0.status) \($0.count)" }
            #expect(counts == ["email pending 1", "sms pending 2"])
            #expect(await store.writeProblem(now: Self.t0) == nil)
        }
    }

    @Test(arguments: PartialBackend.all)
    func whatExpiredBeforeItCouldBeSentIsExpiredOnce(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            _ = try await store.ingest(
                [Self.reminder("GONE", channels: [.email, .sms], expiresAt: Self.t0.addingTimeInterval(-1)), Self.reminder("LIVE", expiresAt: Self.t0.addingTimeInterval(60))],
                sourceFile: "x", queue: "default", priority: 0, now: Self.t0.addingTimeInterval(-10))
            #expect(try await store.expireOverdue(now: Self.t0) == 2)
            #expect(try await store.expireOverdue(now: Self.t0) == 0)
            #expect(try await store.deliveries(reminderID: "GONE").map(\.status) == ["expired", "expired"])
            #expect(try await store.dueKeys(now: Self.t0).map(\.reminderID) == ["LIVE"])
            #expect(try await store.pendingDelivery(Self.email("GONE")) == nil)
            #expect(try await store.nextDueDate(now: Self.t0)?.timeIntervalSince1970 == Self.t0.addingTimeInterval(-10).timeIntervalSince1970)
        }
    }

    @Test(arguments: PartialBackend.all)
    func cancellationsPausesAndPartialPaymentsApplyToWhatWaits(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            _ = try await store.ingest(
                [Self.reminder("INV"), Self.reminder("DEBT1", debtor: "D"), Self.reminder("DEBT2", channels: [.email, .sms], debtor: "D"), Self.reminder("PART", amount: "50.00")],
                sourceFile: "c", queue: "default", priority: 0, now: Self.t0)
            func statuses() async throws -> [String: String] {
                Dictionary(uniqueKeysWithValues: try await store.deliveries(reminderID: nil, status: nil).map { ("\($0.reminderID)/\($0.channel)", $0.status) })
            }
            let byInvoice = try await store.cancel(
                CancellationRequest(scope: .invoice, value: "F-INV", reason: .paid), source: "api", origin: "file#1", now: Self.t0)
            #expect(byInvoice.cancelled == 1 && byInvoice.matched == 1 && !byInvoice.alreadyApplied)
            let again = try await store.cancel(
                CancellationRequest(scope: .invoice, value: "F-INV", reason: .paid), source: "api", origin: "file#1", now: Self.t0)
            #expect(again.alreadyApplied && again.cancelled == 0, "the same record twice is applied once")

            let until = Self.t0.addingTimeInterval(3600)
            let pause = try await store.cancel(CancellationRequest(scope: .debtor, value: "D", reason: .promiseToPay, until: until), source: "api", now: Self.t0)
            #expect(pause.paused == 3 && pause.matched == 2)
            #expect(try await store.blocker(for: Self.reminder("DEBT1", debtor: "D"), channel: .email, recipient: nil, sourceFile: nil, now: Self.t0)?
                .hasPrefix("paused until") == true)
            // A partial payment that does not cover the invoice cancels nothing; one that does, settles it.
            let part = try await store.cancel(
                CancellationRequest(scope: .invoice, value: "F-PART", reason: .paid, amountPaid: "20.00"), source: "bank", now: Self.t0)
            #expect(part.settled == 0 && part.cancelled == 0)
            #expect(try await store.paymentsFor(invoices: ["F-PART", "F-INV"]) == ["F-PART": "20.00"])
            let full = try await store.cancel(
                CancellationRequest(scope: .invoice, value: "F-PART", reason: .paid, amountPaid: "50.00"), source: "bank", now: Self.t0)
            #expect(full.settled == 1 && full.cancelled == 1)
            var now = try await statuses()
            #expect(now == ["INV/email": "cancelled", "DEBT1/email": "paused", "DEBT2/email": "paused", "DEBT2/sms": "paused", "PART/email": "cancelled"])

            // The pause ends by itself, or earlier when an operator lifts it.
            #expect(try await store.lift(scope: .reminder, value: "DEBT1", now: Self.t0) == 0, "the debtor's pause still holds DEBT1")
            #expect(try await store.lift(scope: .debtor, value: "D", now: Self.t0.addingTimeInterval(60)) == 3)
            now = try await statuses()
            #expect(now["DEBT1/email"] == "pending" && now["DEBT2/sms"] == "pending")
            _ = try await store.cancel(CancellationRequest(scope: .reminder, value: "DEBT1", reason: .other, until: until), source: "api", now: Self.t0)
            #expect(try await store.resumePaused(now: until.addingTimeInterval(-1)) == 0, "not before its end")
            #expect(try await store.resumePaused(now: until) == 1)
            #expect(try await statuses()["DEBT1/email"] == "pending")
        }
    }

    @Test(arguments: PartialBackend.all)
    func killSwitchesDeferralsAndEnds(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            _ = try await store.ingest(
                [Self.reminder("M", channels: [.email, .sms]), Self.reminder("DEF"), Self.reminder("EXP"), Self.reminder("CAN")], sourceFile: "k",
                queue: "default", priority: 0, now: Self.t0)
            try await store.hold(channel: .email, until: nil, reason: "bad batch", now: Self.t0)
            try await store.hold(channel: .email, until: nil, reason: "bad batch, again", now: Self.t0)
            let holds = try await store.holds(now: Self.t0)
            #expect(holds.map(\.channel) == ["email"] && holds.first?.reason == "bad batch, again")
            #expect(try await store.dueKeys(now: Self.t0) == [DeliveryKey(reminderID: "M", channel: .sms)], "email held, SMS goes")
            #expect(try await store.blocker(for: Self.reminder("M"), channel: .email, recipient: nil, sourceFile: nil, now: Self.t0) == "on hold: every email is paused (relance pause)")
            #expect(try await store.releaseHold(channel: nil) == 1)
            let (holdsAfter, dueAfter) = (try await store.holds(now: Self.t0), try await store.dueKeys(now: Self.t0))
            #expect(holdsAfter.isEmpty && dueAfter.count == 5)
            // Every channel held: nothing is due. A hold whose end has passed holds nothing.
            try await store.hold(channel: nil, until: nil, reason: "all", now: Self.t0)
            #expect(try await store.dueKeys(now: Self.t0).isEmpty, "every channel held")
            #expect(try await store.nextDueDate(now: Self.t0) == nil, "nothing can go while every channel is held")
            #expect(try await store.releaseHold(channel: nil) == 1)
            try await store.hold(channel: .sms, until: Self.t0.addingTimeInterval(60), reason: "a minute", now: Self.t0)
            let smsHeld = try await store.dueKeys(now: Self.t0)
            #expect(smsHeld.count == 4 && smsHeld.allSatisfy { $0.channel == .email }, "SMS held, email goes")
            #expect(try await store.nextDueDate(now: Self.t0) == Self.t0)
            #expect(try await store.dueKeys(now: Self.t0.addingTimeInterval(60)).count == 5, "the hold is over")
            #expect(try await store.releaseHold(channel: nil) == 1)

            let later = Self.t0.addingTimeInterval(3600)
            try await store.deferDelivery(Self.email("DEF"), until: later, reason: "quiet hours", now: Self.t0)
            #expect(!(try await store.dueKeys(now: Self.t0).contains(Self.email("DEF"))))
            #expect(try await store.dueKeys(now: later).contains(Self.email("DEF")))
            try await store.expire(Self.email("EXP"), reason: "too late", now: Self.t0)
            try await store.cancelDelivery(Self.email("CAN"), reason: "paid", now: Self.t0)
            try await store.cancelDelivery(Self.email("CAN"), reason: "paid again", now: Self.t0)
            let ended = Dictionary(uniqueKeysWithValues: try await store.deliveries(reminderID: nil, status: nil).map { ($0.reminderID + "/" + $0.channel, $0.status) })
            #expect(ended["EXP/email"] == "expired" && ended["CAN/email"] == "cancelled" && ended["DEF/email"] == "pending")
            #expect(try await store.blocker(for: Self.reminder("X"), channel: .sms, recipient: "+33612345678", sourceFile: nil, now: Self.t0) == nil)
        }
    }

    /// Two intakes of the same file at once (two nodes, or a retry racing the first): each reminder
    /// is recorded once; the other intake counts it as a duplicate.
    @Test(arguments: PartialBackend.all)
    func concurrentIntakesOfTheSameRemindersRecordEachOnce(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            let batch = (0..<50).map { Self.reminder("R\($0)") }
            async let a = store.ingest(batch, sourceFile: "node-a", queue: "default", priority: 0, now: Self.t0)
            async let b = store.ingest(batch, sourceFile: "node-b", queue: "default", priority: 0, now: Self.t0)
            let (ra, rb) = try await (a, b)
            #expect(ra.inserted.count + rb.inserted.count == 50)
            #expect(ra.duplicates.count + rb.duplicates.count == 50 && ra.conflicts.isEmpty && rb.conflicts.isEmpty)
            #expect(try await store.deliveries(reminderID: nil, status: .pending).count == 50)
        }
    }

    @Test(arguments: PartialBackend.all)
    func dueIsByPriorityThenAgeOnePerDebtorAndHonoursSkip(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            _ = try await store.ingest([Self.reminder("OLD", notBefore: Self.t0.addingTimeInterval(-60))], sourceFile: "a", queue: "bulk", priority: 0, now: Self.t0)
            _ = try await store.ingest([Self.reminder("NEW", notBefore: Self.t0.addingTimeInterval(-10))], sourceFile: "b", queue: "bulk", priority: 0, now: Self.t0)
            _ = try await store.ingest([Self.reminder("URGENT", notBefore: Self.t0.addingTimeInterval(-1))], sourceFile: "c", queue: "urgent", priority: 10, now: Self.t0)
            // Two of one debtor: only the older one is handed out.
            _ = try await store.ingest(
                [Self.reminder("D1", notBefore: Self.t0.addingTimeInterval(-30), debtor: "SAME"), Self.reminder("D2", notBefore: Self.t0.addingTimeInterval(-20), debtor: "SAME")],
                sourceFile: "d", queue: "bulk", priority: 0, now: Self.t0)
            _ = try await store.ingest([Self.reminder("LATER", notBefore: Self.t0.addingTimeInterval(3600))], sourceFile: "e", queue: "bulk", priority: 0, now: Self.t0)
            let due = try await store.due(now: Self.t0, limit: 10, prefetch: nil) { _, _ in false }
            #expect(due.map(\.key.reminderID) == ["URGENT", "OLD", "D1", "NEW"])
            #expect(due.first?.queue == "urgent")
            let skipping = try await store.due(now: Self.t0, limit: 10, prefetch: nil) { key, debtor in key.reminderID == "OLD" || debtor == "SAME" }
            #expect(skipping.map(\.key.reminderID) == ["URGENT", "NEW"])
            #expect(try await store.due(now: Self.t0, limit: 2, prefetch: nil) { _, _ in false }.count == 2)
            #expect(try await store.dueKeys(now: Self.t0).map(\.reminderID) == ["URGENT", "OLD", "D1", "D2", "NEW"])
            #expect(try await store.nextDueDate(now: Self.t0).map { $0.timeIntervalSince1970 } == Self.t0.addingTimeInterval(-60).timeIntervalSince1970)
            #expect(try await store.pendingDelivery(Self.email("LATER"))?.reminder.id == "LATER")
        }
    }

    /// A queue without room is not read: the other queues' work comes out, oldest first, however
    /// big and old its backlog; each queue gives at most its room.
    @Test(arguments: PartialBackend.all)
    func dueGivesEachQueueAtMostItsRoomAndNeverHidesOneBehindAnother(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            _ = try await store.ingest(
                (0..<30).map { Self.reminder("B\($0)", notBefore: Self.t0.addingTimeInterval(-3600 + Double($0))) }, sourceFile: "b", queue: "bulk",
                priority: 0, now: Self.t0)
            _ = try await store.ingest(
                [Self.reminder("D1", notBefore: Self.t0.addingTimeInterval(-60)), Self.reminder("D2", notBefore: Self.t0.addingTimeInterval(-50))],
                sourceFile: "d", queue: "default", priority: 0, now: Self.t0)
            _ = try await store.ingest(
                [Self.reminder("N1", notBefore: Self.t0.addingTimeInterval(-55))], sourceFile: "n", queue: "nightly", priority: 0, now: Self.t0)
            func due(limit: Int, rooms: [String: Int]) async throws -> [String] {
                try await store.due(now: Self.t0, limit: limit, prefetch: nil, room: DueRoom(queue: { rooms[$0] ?? .max }, channel: { _ in .max })) { _, _ in false }
                    .map(\.key.reminderID)
            }
            #expect(try await due(limit: 4, rooms: [:]) == ["B0", "B1", "B2", "B3"], "oldest first when every queue has room")
            #expect(try await due(limit: 4, rooms: ["bulk": 0]) == ["D1", "N1", "D2"], "bulk at its share: the others, merged by age")
            #expect(try await due(limit: 4, rooms: ["bulk": 1]) == ["B0", "D1", "N1", "D2"])
            #expect(try await due(limit: 2, rooms: ["bulk": 1, "default": 0]) == ["B0", "N1"])
            #expect(try await due(limit: 10, rooms: ["bulk": 0, "default": 0, "nightly": 0]).isEmpty)
            // The preview lists every key in the same order, shares aside.
            #expect(try await store.dueKeys(now: Self.t0).prefix(3).map(\.reminderID) == ["B0", "B1", "B2"])
            #expect(try await store.dueKeys(now: Self.t0).suffix(3).map(\.reminderID) == ["D1", "N1", "D2"])
        }
    }

    @Test(arguments: PartialBackend.all)
    func dueOrdersByRiskBandWithinAPriorityAndFollowsEachRefit(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            func ingest(_ id: String, ago: TimeInterval, debtor: String, priority: Int = 0) async throws {
                _ = try await store.ingest(
                    [Self.reminder(id, notBefore: Self.t0.addingTimeInterval(-ago), debtor: debtor)], sourceFile: id, queue: priority > 0 ? "urgent" : "bulk",
                    priority: priority, now: Self.t0)
            }
            try await ingest("A", ago: 60, debtor: "LOW")
            try await ingest("C", ago: 40, debtor: "NONE")
            try await ingest("B", ago: 20, debtor: "HIGH")
            try await ingest("U", ago: 1, debtor: "LOW2", priority: 10)
            func order() async throws -> [String] { try await store.due(now: Self.t0, limit: 10, prefetch: nil) { _, _ in false }.map(\.key.reminderID) }
            // No bands yet: every debtor is in the middle one, so the order is priority then age.
            #expect(try await order() == ["U", "A", "C", "B"])

            try await store.replaceRiskBands([(debtor: "HIGH", band: 4), (debtor: "LOW", band: 0), (debtor: "LOW2", band: 0)])
            // Priority first whatever the band; within it the riskiest band, the unscored in the middle.
            #expect(try await order() == ["U", "B", "C", "A"])
            #expect(try await store.dueKeys(now: Self.t0).map(\.reminderID) == ["U", "B", "C", "A"])
            #expect(try await store.riskBand(debtorID: "HIGH") == 4)
            #expect(try await store.riskBand(debtorID: "NONE") == nil)

            // A reminder recorded after the refit takes its debtor's band; a fallback would as well.
            try await ingest("D", ago: 50, debtor: "HIGH")
            try await ingest("E", ago: 80, debtor: "LOW")
            let due = try await store.due(now: Self.t0, limit: 10, prefetch: nil) { _, _ in false }.map(\.key.reminderID)
            #expect(due == ["U", "D", "C", "E"])  // one per debtor: HIGH's older D, LOW's older E
            #expect(try await store.dueKeys(now: Self.t0).map(\.reminderID) == ["U", "D", "B", "C", "E", "A"])

            // A refit replaces every band: a debtor left out goes back to the middle.
            try await store.replaceRiskBands([(debtor: "LOW", band: 0)])
            #expect(try await store.dueKeys(now: Self.t0).map(\.reminderID) == ["U", "D", "C", "B", "E", "A"])
            #expect(try await store.riskBand(debtorID: "HIGH") == nil)
        }
    }

    @Test(arguments: PartialBackend.all)
    func riskBandsAreReplacedAcrossManyDebtorRanges(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            // More debtors than one range of the refit (1,000), ids whose byte order is not their
            // numeric order, and one delivery each for a few of them.
            let debtors = (0..<2_500).map { "D\($0)" }
            try await store.replaceRiskBands(debtors.map { (debtor: $0, band: Int($0.dropFirst())! % 5) })
            for id in ["D7", "D1000", "D2499", "D12"] {
                _ = try await store.ingest([Self.reminder("R\(id)", notBefore: Self.t0.addingTimeInterval(-10), debtor: id)], sourceFile: id, queue: "bulk", priority: 0, now: Self.t0)
            }
            // Bands 2 (D7, D12), 0 (D1000), 4 (D2499): riskiest first, then age (equal here), then id.
            #expect(try await store.dueKeys(now: Self.t0).map(\.reminderID) == ["RD2499", "RD12", "RD7", "RD1000"])
            // Half of them keep a band, others lose theirs, one changes.
            try await store.replaceRiskBands(debtors.filter { Int($0.dropFirst())! % 2 == 0 }.map { (debtor: $0, band: $0 == "D1000" ? 4 : 1) })
            #expect(try await store.riskBand(debtorID: "D7") == nil)
            #expect(try await store.riskBand(debtorID: "D12") == 1)
            #expect(try await store.riskBand(debtorID: "D1000") == 4)
            #expect(try await store.riskBand(debtorID: "D2499") == nil)
            #expect(try await store.riskBand(debtorID: "D2498") == 1)
            #expect(try await store.dueKeys(now: Self.t0).map(\.reminderID) == ["RD1000", "RD2499", "RD7", "RD12"])
            // An empty refit (no open items anywhere) clears them all.
            try await store.replaceRiskBands([])
            #expect(try await store.riskBand(debtorID: "D1000") == nil)
            #expect(try await store.dueKeys(now: Self.t0).map(\.reminderID) == ["RD1000", "RD12", "RD2499", "RD7"])
        }
    }

    @Test(arguments: PartialBackend.all)
    func markingChecksHoldsCancellationsSuppressionAndTheDailyCap(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            _ = try await store.ingest(
                [Self.reminder("M1"), Self.reminder("M2"), Self.reminder("M3"), Self.reminder("M4"), Self.reminder("M5")], sourceFile: "m", queue: "default", priority: 0, now: Self.t0)
            #expect(try await store.markGroup([Self.email("M1")], transport: "smtp", recipient: "a@example.org", now: Self.t0) == [.attempt(1)])
            #expect(try await store.markGroup([Self.email("M1")], transport: "smtp", recipient: "a@example.org", now: Self.t0) == [.notPending])
            // The daily cap counts the attempt just made.
            #expect(
                try await store.markGroup([Self.email("M2")], transport: "smtp", recipient: "b@example.org", now: Self.t0, dailyCap: (1, Self.t0.addingTimeInterval(-60)))
                    == [.overDailyVolume])
            try await store.hold(channel: .email, until: nil, reason: "test", now: Self.t0)
            #expect(try await store.holds(now: Self.t0).count == 1)
            #expect(try await store.markGroup([Self.email("M2")], transport: "smtp", recipient: "b@example.org", now: Self.t0) == [.held])
            #expect(try await store.nextDueDate(now: Self.t0) == nil)
            #expect(try await store.releaseHold(channel: .email) == 1)
            try await store.suppress("c@example.org", reason: "STOP", source: "test", now: Self.t0)
            #expect(try await store.markGroup([Self.email("M3")], transport: "smtp", recipient: "c@example.org", now: Self.t0) == [.suppressed])
            _ = try await store.cancel(CancellationRequest(scope: .reminder, value: "M4", reason: .paid), source: "test", now: Self.t0)
            #expect(try await store.pendingDelivery(Self.email("M4")) == nil)
            let marks = try await store.markGroup([Self.email("M5"), Self.email("M2")], transport: "smtp", recipient: "d@example.org", now: Self.t0)
            #expect(marks == [.attempt(1), .attempt(1)])
            let statuses = Dictionary(uniqueKeysWithValues: try await store.deliveries(reminderID: nil, status: nil).map { ($0.reminderID, $0.status) })
            #expect(statuses == ["M1": "sending", "M2": "sending", "M3": "suppressed", "M4": "cancelled", "M5": "sending"])
        }
    }

    /// What an operator reads and settles: receipts (filtered, with the record's invoices and
    /// amounts), events, an in-doubt delivery resolved (and nothing else), an opt-out lifted.
    @Test(arguments: PartialBackend.all)
    func receiptsEventsAndResolutions(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            let t0 = Self.t0
            _ = try await store.ingest([Self.reminder("R1"), Self.reminder("R2", amount: "99.50")], sourceFile: "r", queue: "default", priority: 0, now: t0)
            let sent = try #require(try await store.markSending(Self.email("R1"), transport: "smtp", recipient: "a@example.org", now: t0))
            try await store.recordOutcome(Self.email("R1"), attempt: sent, outcome: .sent(providerID: nil, code: 250, detail: "ok"), retryAt: nil, now: t0)
            #expect(try await store.markSending(Self.email("R2"), transport: "smtp", recipient: "b@example.org", now: t0) == 1)
            #expect(try await store.recoverInDoubt(resend: false, now: t0.addingTimeInterval(1)) == [Self.email("R2")])
            final class Box: @unchecked Sendable { var items: [Receipt] = [] }
            let box = Box()
            try await store.receipts(ReceiptFilter(everyDelivery: true)) { box.items.append($0) }
            #expect(box.items.map { "\($0.reminderID) \($0.attempt) \($0.outcome) \($0.status) \($0.recipient)" } == ["R1 1 sent sent a@example.org", "R2 1 unknown unknown b@example.org"])
            #expect(box.items.map(\.invoices) == [["F-R1"], ["F-R2"]] && box.items.map(\.amounts) == [["10.00 EUR"], ["99.50 EUR"]])
            #expect(box.items.map(\.stage) == ["reminder_1", "reminder_1"])
            box.items = []
            try await store.receipts(ReceiptFilter(status: .unknown)) { box.items.append($0) }
            #expect(box.items.map(\.reminderID) == ["R2"])
            box.items = []
            try await store.receipts(ReceiptFilter(invoice: "F-R1")) { box.items.append($0) }
            #expect(box.items.map(\.reminderID) == ["R1"])
            // Only what is in doubt is resolved.
            await #expect(throws: Ledger.ResolveError.self) { try await store.resolve(Self.email("R1"), as: .resend, operator: "op", now: t0) }
            await #expect(throws: Ledger.ResolveError.self) { try await store.resolve(Self.email("NOPE"), as: .sent, operator: "op", now: t0) }
            try await store.resolve(Self.email("R2"), as: .resend, operator: "op", now: t0.addingTimeInterval(2))
            #expect(try await store.deliveries(reminderID: "R2").map(\.status) == ["pending"])
            let events = try await store.events(reminderID: "R2").map { "\($0.from ?? "-")→\($0.to)" }
            #expect(events == ["-→pending", "pending→sending", "sending→unknown", "unknown→pending"])
            #expect(try await store.events(reminderID: "R2").last?.reason == "resolved by op as resend (relance resolve)")
            let (kept, orphans) = (try await store.callbacks(reminderID: "R1"), try await store.callbacks(reminderID: nil))
            #expect(kept.isEmpty && orphans.isEmpty)
            try await store.suppress("Gone@Example.org", reason: "STOP", source: "test", now: t0)
            #expect(try await store.unsuppress("gone@example.org"))
            #expect(try await store.unsuppress("gone@example.org") == false)
        }
    }

    /// What the due walk prefetches is what the queries say: the contact history, and the group
    /// candidates when it gives them (nil: the run asks for them itself).
    @Test(arguments: PartialBackend.all)
    func prefetchedContactsAndGroupsAreWhatTheQueriesSay(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            let t0 = Self.t0
            _ = try await store.ingest(
                [Self.reminder("P1", notBefore: t0.addingTimeInterval(-30), debtor: "G"), Self.reminder("P2", notBefore: t0.addingTimeInterval(-20), debtor: "G")],
                sourceFile: "g", queue: "default", priority: 0, now: t0)
            _ = try await store.ingest(
                [Self.reminder("EARLIER", notBefore: t0.addingTimeInterval(-90), debtor: "G"), Self.reminder("ALONE", notBefore: t0.addingTimeInterval(-10))],
                sourceFile: "h", queue: "default", priority: 0, now: t0)
            let earlier = try #require(
                try await store.markSending(Self.email("EARLIER"), transport: "smtp", recipient: "n@example.org", now: t0.addingTimeInterval(-5)))
            try await store.recordOutcome(Self.email("EARLIER"), attempt: earlier, outcome: .sent(providerID: nil, code: 250, detail: "ok"), retryAt: nil, now: t0)
            let since = t0.addingTimeInterval(-86400)
            let due = try await store.due(now: t0, limit: 10, prefetch: Ledger.Prefetch(contactsSince: since, groupLimit: 49)) { _, _ in false }
            #expect(due.map(\.key.reminderID) == ["P1", "ALONE"], "one per debtor, oldest first")
            for lead in due {
                let prefetched = try #require(lead.prefetched, "\(lead.key)")
                let contacts = try await store.contacts(debtorID: lead.reminder.debtor.id, excludingReminder: lead.key.reminderID, since: since)
                #expect(prefetched.contacts == contacts && prefetched.contactsSince == since)
                let group = try await store.groupCandidates(for: lead, now: t0, limit: 49).map(\.key.reminderID)
                if let candidates = prefetched.groupCandidates { #expect(candidates.map(\.key.reminderID) == group) }
            }
            #expect(due[0].prefetched?.contacts.count == 1, "EARLIER's message")
            #expect(try await store.groupCandidates(for: due[0], now: t0, limit: 49).map(\.key.reminderID) == ["P2"])
            #expect(due[1].prefetched?.groupCandidates.map { $0.isEmpty } ?? true, "nothing to group with: none, or left to the run")
        }
    }

    /// Two nodes decide for one debtor from the same (empty) history: the first claim goes, the
    /// second finds the debtor contacted since its policy read and makes no attempt.
    @Test(arguments: PartialBackend.all)
    func aClaimRefusesWhenTheDebtorWasContactedSinceThePolicyRead(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            _ = try await store.ingest(
                [Self.reminder("P1", debtor: "D"), Self.reminder("P2", channels: [.sms], debtor: "D"), Self.reminder("OTHER", debtor: "E")],
                sourceFile: "p", queue: "default", priority: 0, now: Self.t0)
            let since = Self.t0.addingTimeInterval(-31 * 86400)
            func fence(_ id: String, debtor: String = "D") async throws -> Ledger.ContactFence {
                .init(
                    debtorID: debtor, reminderID: id, since: since,
                    seen: try await store.contacts(debtorID: debtor, excludingReminder: id, since: since))
            }
            let (first, second, other) = (try await fence("P1"), try await fence("P2"), try await fence("OTHER", debtor: "E"))
            #expect(first.seen.isEmpty && second.seen.isEmpty)
            let marked = try await store.markGroup(
                [Self.email("P1")], transport: "smtp", recipient: "n@example.org", now: Self.t0, dailyCap: nil, contacts: first)
            #expect(marked == [.attempt(1)])
            try await store.recordOutcome(Self.email("P1"), attempt: 1, outcome: .sent(providerID: nil, code: 250, detail: "ok"), retryAt: nil, now: Self.t0)
            let sms = DeliveryKey(reminderID: "P2", channel: .sms)
            let stale = try await store.markGroup([sms], transport: "twilio", recipient: "+33612345678", now: Self.t0, dailyCap: nil, contacts: second)
            #expect(stale == [.contactedMeanwhile], "P1's message is a contact P2's decision did not see")
            #expect(try await store.deliveries(reminderID: "P2").map(\.status) == ["pending"], "left for the policy to decide again")
            // Decided again with what is known now, the claim goes (the caps are the policy's business).
            let fresh = try await fence("P2")
            #expect(fresh.seen == [Self.t0])
            #expect(try await store.markGroup([sms], transport: "twilio", recipient: "+33612345678", now: Self.t0, dailyCap: nil, contacts: fresh) == [.attempt(1)])
            // Another debtor's contacts do not matter.
            #expect(
                try await store.markGroup([Self.email("OTHER")], transport: "smtp", recipient: "o@example.org", now: Self.t0, dailyCap: nil, contacts: other)
                    == [.attempt(1)])
        }
    }

    @Test(arguments: PartialBackend.all)
    func concurrentMarksOfOneDeliveryMakeOneAttempt(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            _ = try await store.ingest([Self.reminder("RACE")], sourceFile: "r", queue: "default", priority: 0, now: Self.t0)
            let marks = try await withThrowingTaskGroup(of: Ledger.Mark?.self) { group in
                for _ in 0..<40 {
                    group.addTask { try await store.markGroup([Self.email("RACE")], transport: "smtp", recipient: "n@example.org", now: Self.t0).first }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(marks.filter { $0 == .attempt(1) }.count == 1)
            #expect(marks.filter { $0 == .notPending }.count == 39)
        }
    }

    @Test(arguments: PartialBackend.all)
    func outcomesMoveTheDeliveryAndACrashLeavesItInDoubt(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            _ = try await store.ingest(["S", "T", "P", "U", "X"].map { Self.reminder($0) }, sourceFile: "o", queue: "default", priority: 0, now: Self.t0)
            for id in ["S", "T", "P", "U", "X"] { _ = try await store.markSending(Self.email(id), transport: "smtp", recipient: "n@example.org", now: Self.t0) }
            try await store.recordOutcome(Self.email("S"), attempt: 1, outcome: .sent(providerID: "MSG-S", code: 250, detail: "ok"), retryAt: nil, now: Self.t0)
            let retry = Self.t0.addingTimeInterval(300)
            try await store.recordOutcome(Self.email("T"), attempt: 1, outcome: .transient(code: 451, detail: "later", retryAfter: nil), retryAt: retry, now: Self.t0)
            try await store.recordOutcome(Self.email("P"), attempt: 1, outcome: .permanent(code: 550, detail: "no such user"), retryAt: nil, now: Self.t0)
            try await store.recordOutcome(Self.email("U"), attempt: 1, outcome: .inDoubt(detail: "no answer"), retryAt: nil, now: Self.t0)
            // X stays `sending`, as a crash would leave it.
            #expect(try await store.recoverInDoubt(resend: false, now: Self.t0) == [Self.email("X")])
            let statuses = Dictionary(uniqueKeysWithValues: try await store.deliveries(reminderID: nil, status: nil).map { ($0.reminderID, $0.status) })
            #expect(statuses == ["S": "sent", "T": "pending", "P": "failed", "U": "unknown", "X": "unknown"])
            #expect(try await store.pendingDelivery(Self.email("T"))?.attempts == 1)
            #expect(try await store.due(now: Self.t0, limit: 10, prefetch: nil) { _, _ in false }.isEmpty)
            #expect(try await store.due(now: retry, limit: 10, prefetch: nil) { _, _ in false }.map(\.key.reminderID) == ["T"])
            let counts = try await store.statusCounts()
            #expect(counts.first { $0.status == "sent" }?.count == 1)
            #expect(await store.writeProblem(now: Self.t0) == nil)
        }
    }

    @Test(arguments: PartialBackend.all)
    func callbacksApplyOnceAndUnknownOnesWaitAsOrphans(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            let key = try await Self.sendingSMS(store, "CB")
            let early = StatusCallback(provider: "twilio", messageID: "SM-LATE", status: .delivered, raw: ["MessageStatus": "delivered"])
            #expect(try await store.apply(early, now: Self.t0) == .orphan)
            try await store.recordOutcome(key, attempt: 1, outcome: .sent(providerID: "SM-1", code: 201, detail: "queued"), retryAt: nil, now: Self.t0)
            let delivered = StatusCallback(provider: "twilio", messageID: "SM-1", status: .delivered, raw: ["MessageStatus": "delivered", "Quote": "\"é\\"])
            #expect(try await store.apply(delivered, replayID: "twilio:token-1", now: Self.t0) == .applied)
            #expect(try await store.apply(delivered, replayID: "twilio:token-1", now: Self.t0) == .replay)
            #expect(try await store.apply(delivered, now: Self.t0) == .duplicate)
            #expect(try await store.deliveries(reminderID: "CB").first?.status == "delivered")
        }
    }

    @Test(arguments: PartialBackend.all)
    func aFailoverRecordsTheProviderThatWasUsed(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            let key = try await Self.sendingSMS(store, "FO")
            // Twilio was down: the backup provider took the message and gave its own id.
            try await store.recordOutcome(key, attempt: 1, outcome: .sent(providerID: "V-1", code: 200, detail: "ok"), retryAt: nil, now: Self.t0, via: "vonage")
            let fromPrimary = StatusCallback(provider: "twilio", messageID: "V-1", status: .delivered, raw: [:])
            #expect(try await store.apply(fromPrimary, now: Self.t0) == .orphan)
            let fromBackup = StatusCallback(provider: "vonage", messageID: "V-1", status: .delivered, raw: [:])
            #expect(try await store.apply(fromBackup, now: Self.t0) == .applied)
            #expect(try await store.deliveries(reminderID: "FO").first?.status == "delivered")
        }
    }

    @Test(arguments: PartialBackend.all)
    func policyDecisionsExpiryAndPauses(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            _ = try await store.ingest(
                [Self.reminder("DEF"), Self.reminder("EXP", expiresAt: Self.t0.addingTimeInterval(60)), Self.reminder("CAN"), Self.reminder("FAIL"), Self.reminder("PAUSE")],
                sourceFile: "p", queue: "default", priority: 0, now: Self.t0)
            let later = Self.t0.addingTimeInterval(3600)
            try await store.deferDelivery(Self.email("DEF"), until: later, reason: "quiet hours", now: Self.t0)
            #expect(try await store.pendingDelivery(Self.email("DEF")) != nil)
            #expect(!(try await store.dueKeys(now: Self.t0).contains(Self.email("DEF"))))
            #expect(try await store.dueKeys(now: later).contains(Self.email("DEF")))
            #expect(try await store.expireOverdue(now: Self.t0.addingTimeInterval(120)) == 1)
            try await store.cancelDelivery(Self.email("CAN"), reason: "paid", now: Self.t0)
            try await store.fail(Self.email("FAIL"), recipient: "n@example.org", reason: "no window", now: Self.t0)
            _ = try await store.cancel(CancellationRequest(scope: .reminder, value: "PAUSE", reason: .promiseToPay, until: later), source: "test", now: Self.t0)
            var statuses = Dictionary(uniqueKeysWithValues: try await store.deliveries(reminderID: nil, status: nil).map { ($0.reminderID, $0.status) })
            #expect(statuses == ["DEF": "pending", "EXP": "expired", "CAN": "cancelled", "FAIL": "failed", "PAUSE": "paused"])
            #expect(try await store.resumePaused(now: later.addingTimeInterval(1)) == 1)
            statuses = Dictionary(uniqueKeysWithValues: try await store.deliveries(reminderID: nil, status: nil).map { ($0.reminderID, $0.status) })
            #expect(statuses["PAUSE"] == "pending")
            let paid = try await store.paymentsFor(invoices: ["F"])
            #expect(paid.isEmpty)
        }
    }

    /// An SMS sent through `transport` with `outcome` (reconciliation's candidates).
    static func sentSMS(_ store: any PostgresCapabilities, _ id: String, transport: String = "twilio", outcome: SendOutcome, at: Date) async throws {
        _ = try await store.ingest([reminder(id, channels: [.sms])], sourceFile: "f", queue: "default", priority: 0, now: at)
        let key = DeliveryKey(reminderID: id, channel: .sms)
        let n = try #require(try await store.markSending(key, transport: transport, recipient: "+33612345678", now: at))
        try await store.recordOutcome(key, attempt: n, outcome: outcome, retryAt: nil, now: at)
    }

    /// The poll schedule of SMS reconciliation: what is due, in what order, and what never is (in
    /// doubt, not accepted, no status API, a final status already).
    @Test(arguments: PartialBackend.all)
    func onlyAcceptedSMSWithAStatusAPIAreDueInOrder(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            let t0 = Self.t0
            try await Self.sentSMS(store, "B", outcome: .sent(providerID: "SM2", code: 201, detail: "ok"), at: t0.addingTimeInterval(10))
            try await Self.sentSMS(store, "A", outcome: .sent(providerID: "SM1", code: 201, detail: "ok"), at: t0)
            try await Self.sentSMS(store, "V", transport: "vonage", outcome: .sent(providerID: "P1,P2", code: 200, detail: "ok"), at: t0)
            try await Self.sentSMS(store, "U", outcome: .inDoubt(detail: "no answer"), at: t0)
            try await Self.sentSMS(store, "O", transport: "outbox", outcome: .sent(providerID: "line-1", code: nil, detail: "ok"), at: t0)
            try await Self.sentSMS(store, "G", transport: "generic", outcome: .sent(providerID: "g1", code: 200, detail: "ok"), at: t0)
            #expect(try await store.pollCandidates(dueBy: t0.addingTimeInterval(-1), limit: 10).isEmpty, "nothing is due before its time")
            let due = try await store.pollCandidates(dueBy: t0.addingTimeInterval(60), limit: 10)
            #expect(Set(due.map(\.key.reminderID)) == ["A", "V", "B"], "never the in-doubt one, the outbox or a gateway without a status API")
            #expect(due.last?.key.reminderID == "B", "oldest first")
            #expect(due.first { $0.key.reminderID == "V" }?.messageIDs == ["P1", "P2"], "every part")
            #expect(try await store.pollCandidates(dueBy: t0.addingTimeInterval(60), limit: 10).isEmpty, "not handed out again while asked about")
            // A final status (a callback) takes it out; a poll puts it one interval later; giving up takes it out.
            _ = try await store.apply(StatusCallback(provider: "twilio", messageID: "SM1", status: .delivered, raw: [:]), now: t0)
            try await store.polled(DeliveryKey(reminderID: "B", channel: .sms), next: t0.addingTimeInterval(100), giveUp: nil, now: t0)
            try await store.polled(DeliveryKey(reminderID: "V", channel: .sms), next: nil, giveUp: "vonage gave no final status", now: t0)
            #expect(try await store.pollCandidates(dueBy: t0.addingTimeInterval(100), limit: 10).map(\.key.reminderID) == ["B"])
            #expect(try await store.pollCandidates(dueBy: t0.addingTimeInterval(10_000), limit: 10).map(\.key.reminderID) == ["B"], "A final, V given up")
            #expect(try await store.deliveries(reminderID: "V").first?.status == "sent")
        }
    }

    @Test(arguments: PartialBackend.all)
    func aPartWithAFinalStatusIsNotAskedAboutAgain(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            try await Self.sentSMS(store, "V", transport: "vonage", outcome: .sent(providerID: "P1,P2", code: 200, detail: "ok"), at: Self.t0)
            _ = try await store.apply(StatusCallback(provider: "vonage", messageID: "P1", status: .delivered, raw: [:]), now: Self.t0)
            #expect(try await store.pollCandidates(dueBy: Self.t0, limit: 10).first?.messageIDs == ["P2"])
        }
    }

    /// Bounces: a hard one bounces the delivery (and suppresses the address, and starts the
    /// fallback), once however often it comes; soft ones count per message until the limit.
    @Test(arguments: PartialBackend.all)
    func bouncesApplyByTheRulesOnce(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            func sentEmail(_ id: String, to address: String, fallback: [Channel] = []) async throws -> DeliveryKey {
                var reminder = Self.reminder(id)
                reminder.fallback = fallback
                _ = try await store.ingest([reminder], sourceFile: "b", queue: "default", priority: 0, now: Self.t0)
                let key = Self.email(id)
                let n = try #require(try await store.markSending(key, transport: "smtp", recipient: address, now: Self.t0))
                try await store.recordOutcome(key, attempt: n, outcome: .sent(providerID: nil, code: 250, detail: "ok"), retryAt: nil, now: Self.t0)
                return key
            }
            let rules = BounceRules(softLimit: 2)
            let hardKey = try await sentEmail("H", to: "Gone@Example.org", fallback: [.sms])
            let hard = BounceNotice(
                key: hardKey, recipients: [.init(address: "gone@example.org", kind: .hard, status: "5.1.1", diagnostic: "no such user")], source: "pipe",
                reference: "<dsn-1@mx>")
            #expect(try await store.applyBounce(hard, rules: rules, now: Self.t0) == .bounced(address: "gone@example.org", fallback: [.sms]))
            #expect(try await store.applyBounce(hard, rules: rules, now: Self.t0) == .duplicate)
            let statuses = try await store.deliveries(reminderID: "H").map { "\($0.channel) \($0.status)" }
            #expect(statuses == ["email bounced", "sms pending"])
            var suppressed: [String] = []
            let box = SuppressionBox()
            try await store.forEachSuppression { box.append($0.address + " " + $0.reason + " " + $0.source) }
            suppressed = box.items
            #expect(suppressed == ["gone@example.org bounced bounce:pipe"])

            let first = try await sentEmail("S1", to: "full@example.org")
            let second = try await sentEmail("S2", to: "full@example.org")
            func soft(_ key: DeliveryKey, _ reference: String) -> BounceNotice {
                BounceNotice(key: key, recipients: [.init(address: "full@example.org", kind: .soft, status: "4.2.2")], source: "imap", reference: reference)
            }
            #expect(try await store.applyBounce(soft(first, "<s1@mx>"), rules: rules, now: Self.t0) == .softCounted(count: 1, limit: 2))
            #expect(try await store.applyBounce(soft(first, "<s1-again@mx>"), rules: rules, now: Self.t0) == .softCounted(count: 1, limit: 2), "the same message counts once")
            #expect(try await store.applyBounce(soft(second, "<s2@mx>"), rules: rules, now: Self.t0) == .bounced(address: "full@example.org", fallback: []))
            let unsent = BounceNotice(key: Self.email("NEVER"), recipients: hard.recipients, source: "pipe", reference: "<x@mx>")
            #expect(try await store.applyBounce(unsent, rules: rules, now: Self.t0) == .noDelivery)
            let counts = try await store.bounceCounts(since: Self.t0.addingTimeInterval(-1)).map { "\($0.channel) \($0.left) \($0.bounced)" }
            #expect(counts == ["email 3 2"])
        }
    }

    @Test(arguments: PartialBackend.all)
    func forgettingADebtorErasesItsBand(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            _ = try await store.ingest([Self.reminder("A", notBefore: Self.t0.addingTimeInterval(-60), debtor: "LOW")], sourceFile: "a", queue: "bulk", priority: 0, now: Self.t0)
            _ = try await store.ingest([Self.reminder("B", notBefore: Self.t0.addingTimeInterval(-20), debtor: "OTHER")], sourceFile: "b", queue: "bulk", priority: 0, now: Self.t0)
            try await store.replaceRiskBands([(debtor: "LOW", band: 0)])
            #expect(try await store.dueKeys(now: Self.t0).map(\.reminderID) == ["B", "A"])
            // Forgetting a debtor erases its band (receivables record or not): back to age order.
            _ = try await store.eraseReceivablesDebtor("LOW", now: Self.t0)
            #expect(try await store.riskBand(debtorID: "LOW") == nil)
            #expect(try await store.dueKeys(now: Self.t0).map(\.reminderID) == ["A", "B"])
        }
    }

    @Test(arguments: PartialBackend.all)
    func retentionErasesWhatIsDone(_ backend: PartialBackend) async throws {
        try await backend.run { store in
            _ = try await store.ingest([Self.reminder("R1", debtor: "ERASE"), Self.reminder("R2")], sourceFile: "r", queue: "default", priority: 0, now: Self.t0)
            _ = try await store.markSending(Self.email("R1"), transport: "smtp", recipient: "n@example.org", now: Self.t0)
            try await store.recordOutcome(Self.email("R1"), attempt: 1, outcome: .sent(providerID: nil, code: 250, detail: "ok"), retryAt: nil, now: Self.t0)
            #expect(try await store.reminderIDs(debtorID: "ERASE") == ["R1"])
            let candidates = try await store.retentionCandidates(before: Self.t0.addingTimeInterval(86400), limit: 10)
            #expect(candidates == ["R1"])
            let erasure = try await store.erase(reminderIDs: candidates, reason: "retention", now: Self.t0)
            #expect(erasure.reminders == ["R1"])
            #expect(try await store.reminderIDs(debtorID: "ERASE").isEmpty, "the debtor's id left the erased reminder")
            #expect(try await store.erase(reminderIDs: ["R1"], reason: "retention", now: Self.t0).reminders.isEmpty, "erasing twice changes nothing")
            #expect(try await store.retentionCandidates(before: Self.t0.addingTimeInterval(86400), limit: 10).isEmpty)
            #expect(try await store.deliveries(reminderID: "R1").first?.status == "sent", "statuses stay")
            // An erased reminder dropped again is a duplicate, never sent twice.
            #expect(try await store.ingest([Self.reminder("R1", debtor: "ERASE")], sourceFile: "again", queue: "default", priority: 0, now: Self.t0).duplicates == ["R1"])
        }
    }

    /// The receivables ledger, end to end, on each backend: two years of a small business's
    /// feed, an amended and a refused record, a committed plan, a payment that stops a planned
    /// reminder, the report's reads. Each backend tells the same story, line for line.
    @Test func theReceivablesLedgerTellsTheSameStoryOnEveryBackend() async throws {
        let stories = StoryBox()
        for backend in PartialBackend.all {
            try await backend.run { store in stories.append(try await Self.receivablesStory(store)) }
        }
        #expect(stories.items.count == PartialBackend.all.count)
        // The story is worth telling: a plan with reminders, one stopped by the payment, every debtor.
        let story = stories.items.first ?? []
        #expect(story.contains { $0.hasPrefix("plan: [") && !$0.hasPrefix("plan: []") }, "\(story.prefix(8))")
        #expect(story.contains { $0.hasSuffix(" email cancelled") }, "the payment stopped NEW-1's reminder")
        #expect(story.contains { $0.hasPrefix("amended 2 applied, rejected [\"2 invoice\"]") }, "\(story.prefix(4))")
        #expect(story.filter { $0.hasPrefix("C0") && $0.contains("|") }.count >= 60, "every debtor's snapshot")
        for (i, story) in stories.items.enumerated().dropFirst() {
            let first = stories.items[0]
            let differing = zip(first, story).first { $0 != $1 }
            #expect(story == first, "\(PartialBackend.all[i]) differs from \(PartialBackend.all[0]): \(String(describing: differing))")
        }
    }

    static func receivablesStory(_ store: any PostgresCapabilities) async throws -> [String] {
        let validator = ReceivableValidator(rules: RecordRules())
        func lines(_ data: Data) throws -> [ReceivablesImport.Line] {
            try data.split(separator: UInt8(ascii: "\n")).enumerated().compactMap { i, line in
                switch validator.validate(Array(line)) {
                case .success(let record): return ReceivablesImport.Line(line: i + 1, record: record)
                case .failure(let issues): throw issues
                }
            }
        }
        func noon(_ day: String) -> Date { Timestamp.parse(day + "T12:00:00+01:00") ?? Date(timeIntervalSince1970: 0) }
        var story: [String] = []
        let first = try await store.importReceivables(try lines(try ScoreCLITests.feed()), source: "feed", defaults: .init(), now: noon("2025-12-20"))
        story.append("import \(first.applied) applied, \(first.unchanged) unchanged, \(first.rejected.map(\.line))")
        let again = try await store.importReceivables(try lines(try ScoreCLITests.feed()), source: "feed", defaults: .init(), now: noon("2025-12-21"))
        story.append("again \(again.applied) applied, \(again.unchanged) unchanged")
        let amendments = Data(
            """
            {"type":"debtor","id":"C001","name":"Client 1 (renamed)","email":"c1@example.com","country":"FR","locale":"fr-FR","timezone":"Europe/Paris","kind":"business","payment_terms":"45d-eom"}
            {"type":"instalment","invoice":"NO-SUCH","due_on":"2026-01-31","amount":"10.00"}
            {"type":"invoice","number":"NEW-1","debtor":"C002","issued_on":"2025-12-01","amount":"4000.00","currency":"EUR"}
            """.utf8)
        let amended = try await store.importReceivables(try lines(amendments), source: "fix", defaults: .init(), now: noon("2025-12-22"))
        story.append("amended \(amended.applied) applied, rejected \(amended.rejected.map { "\($0.line) \($0.issue.field)" })")

        let rules = PlanRules(ladders: ["default": PlanRules.defaultLadder], minGap: 7, afterPayment: 7, minAmount: ["EUR": 100])
        let recordValidator = RecordValidator(rules: RecordRules())
        func commit(_ day: String) async throws -> PlanCommitResult {
            let asOf = noon(day)
            let date = CivilDate(day) ?? CivilDate(year: 2026, month: 1, day: 1)
            return try await store.commitPlan(asOf: asOf, date: date, now: asOf) { snapshot, previous in
                PlanRecords.commit(snapshot, previousRun: previous, rules: rules, date: date, expiresAt: asOf.addingTimeInterval(7 * 86_400), validator: recordValidator)
            }
        }
        let plan = try await commit("2026-01-15")
        story.append("plan: \(plan.created.sorted()) existing \(plan.existing.count) held \(plan.held) handoffs \(plan.handoffs) rejected \(plan.rejected.map(\.id).sorted())")
        story.append("last run \(try await store.lastPlanRun().map(\.description) ?? "-")")
        // A payment of the new invoice: its planned reminder stops.
        let payment = Data(
            #"{"type":"payment","id":"PAY-NEW-1","debtor":"C002","amount":"4000.00","currency":"EUR","paid_on":"2026-01-16","invoice":"NEW-1"}"#.utf8)
        _ = try await store.importReceivables(try lines(payment), source: "bank", defaults: .init(), now: noon("2026-01-16"))
        let deliveries = try await store.deliveries(reminderID: nil, status: nil).map { "\($0.reminderID) \($0.channel) \($0.status)" }
        story += deliveries
        story += try await store.reminderHistory(invoice: "NEW-1").map { "history \($0.reminderID) \($0.stage) \($0.channel) \($0.status)" }
        let snapshots = StoryBox()
        try await store.forEachDebtorSnapshot(debtor: nil) { snapshots.append([Self.canonical($0)]) }
        story += snapshots.items.flatMap { $0 }
        let one = StoryBox()
        try await store.forEachDebtorSnapshot(debtor: "C002") { one.append([Self.canonical($0)]) }
        story += one.items.flatMap { $0 }
        let reports = StoryBox()
        try await store.forEachReportSnapshot { snapshot, sent in reports.append([snapshot.debtor.debtor.id + " sent \(sent.count)"]) }
        story += reports.items.flatMap { $0 }
        story += try await store.deliveryCounts(asOf: noon("2026-01-17")).map { "\($0.channel) \($0.stage) \($0.status) \($0.count)" }
        return story
    }

    /// A snapshot as text, every collection in a fixed order.
    static func canonical(_ s: DebtorSnapshot) -> String {
        let d = s.debtor
        var parts = ["\(d.debtor.id)|\(d.debtor.name)|\(d.debtor.email ?? "-")|\(d.debtor.kind.rawValue)|\(d.paymentTerms?.description ?? "-")|\(d.ladder ?? "-")"]
        parts += s.invoices.map { "inv \($0.number) \($0.issuedOn) \($0.dueOn) \($0.amount) \($0.currency) \($0.instalments.map { "\($0.dueOn)=\($0.amount)" })" }
        parts += s.movements.map { "mov " + $0.fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") }
        parts += s.taken.map { "\($0.key.invoice)#\($0.key.instalment ?? 0) \($0.value.map { "\($0.stage)@\($0.on)" })" }.sorted()
        return parts.joined(separator: "\n")
    }
}

final class StoryBox: @unchecked Sendable {
    // @unchecked: appended serially (one backend, one read at a time), read after.
    var items: [[String]] = []
    func append(_ item: [String]) { items.append(item) }
}

final class SuppressionBox: @unchecked Sendable {
    // @unchecked: appended serially by the store's read, read after it returns.
    var items: [String] = []
    func append(_ item: String) { items.append(item) }
}
