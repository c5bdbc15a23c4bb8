import Foundation
import Logging
import RelanceCore
import RelancePostgres
import RelanceStore
import Testing

/// A ledger backend under test for the capabilities a new backend has so far: how to run a test
/// body against a fresh, empty store of it (and clean up after).
struct IntakeBackend: Sendable, CustomStringConvertible {
    var description: String
    var run: @Sendable (_ body: @Sendable (any IntakeStore & HealthStore) async throws -> Void) async throws -> Void

    static let sqlite = IntakeBackend(description: "sqlite") { body in try await body(try temporaryLedgerForIntegration()) }

    /// A throwaway cluster per test, migrated in-process, then `PostgresLedger`.
    static let postgres = IntakeBackend(description: "postgres") { body in
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

    static var all: [IntakeBackend] { PostgresCluster.available ? [sqlite, postgres] : [sqlite] }
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

/// The intake and health capabilities, for every backend that has them (SQLite, and PostgreSQL as
/// it is being built): the same test bodies, through the protocols only.
@Suite(.serialized) struct StoreCapabilityConformance {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func reminder(_ id: String, amount: String = "10.00", channels: [Channel] = [.email], debtor: String? = nil, notBefore: Date? = nil) -> Reminder {
        Reminder(
            id: id, stage: "reminder_1", channels: channels, notBefore: notBefore,
            debtor: Debtor(
                id: debtor ?? "C-\(id)", name: "Zoë \\ O'Brien", email: "n@example.org", phone: "+33612345678", country: "FR", locale: "fr-FR",
                timezone: "Europe/Paris", kind: .consumer),
            invoices: [
                Invoice(
                    number: "F-\(id)", amount: amount, currency: "EUR", issuedOn: CivilDate(year: 2026, month: 1, day: 1),
                    dueOn: CivilDate(year: 2026, month: 2, day: 1))
            ])
    }

    @Test(arguments: IntakeBackend.all)
    func ingestIsIdempotentOnTheReminderID(_ backend: IntakeBackend) async throws {
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

    @Test(arguments: IntakeBackend.all)
    func eachChannelIsAPendingDeliveryCountedByStatus(_ backend: IntakeBackend) async throws {
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

    /// Two intakes of the same file at once (two nodes, or a retry racing the first): each reminder
    /// is recorded once; the other intake counts it as a duplicate.
    @Test(arguments: IntakeBackend.all)
    func concurrentIntakesOfTheSameRemindersRecordEachOnce(_ backend: IntakeBackend) async throws {
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
}
