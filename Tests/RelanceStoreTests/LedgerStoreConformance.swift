import Foundation
import RelanceCore
import Testing

@testable import RelanceStore

/// A backend of the ledger under test: how to open a fresh, empty store.
struct StoreBackend: Sendable, CustomStringConvertible {
    var description: String
    var make: @Sendable () async throws -> any LedgerStore

    /// Every backend the conformance suite runs against. A new backend (PostgreSQL) adds itself here.
    static let all: [StoreBackend] = [
        StoreBackend(description: "sqlite") { try temporaryLedger() }
    ]
}

/// The contract of `LedgerStore`, through the protocol only, for every backend: what the
/// dispatcher, intake and the webhooks rely on. A backend that passes it plugs in unchanged.
/// The capabilities a new backend has so far are checked against it, with the same bodies, in
/// `IntegrationTests/StoreCapabilityConformance` (where the throwaway PostgreSQL cluster is).
@Suite struct LedgerStoreConformance {
    static func email(_ id: String) -> DeliveryKey { DeliveryKey(reminderID: id, channel: .email) }

    @Test(arguments: StoreBackend.all)
    func prefetchedContactsAndGroupCandidatesAreWhatTheQueriesSay(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        _ = try await store.ingest(
            [reminder("P1", notBefore: t0.addingTimeInterval(-30), debtor: "G"), reminder("P2", notBefore: t0.addingTimeInterval(-20), debtor: "G")],
            sourceFile: "g", queue: "default", priority: 0, now: t0)
        _ = try await store.ingest(
            [reminder("EARLIER", notBefore: t0.addingTimeInterval(-90), debtor: "G")], sourceFile: "h", queue: "default", priority: 0, now: t0)
        let earlier = try #require(
            try await store.markSending(Self.email("EARLIER"), transport: "smtp", recipient: "n@example.org", now: t0.addingTimeInterval(-5)))
        try await store.recordOutcome(Self.email("EARLIER"), attempt: earlier, outcome: .sent(providerID: nil, code: 250, detail: "ok"), retryAt: nil, now: t0)
        let since = t0.addingTimeInterval(-86400)
        let due = try await store.due(now: t0, limit: 10, prefetch: Ledger.Prefetch(contactsSince: since, groupLimit: 49)) { _, _ in false }
        let lead = try #require(due.first)
        #expect(lead.key.reminderID == "P1")
        let contacts = try await store.contacts(debtorID: "G", excludingReminder: "P1", since: since)
        #expect(contacts.count == 1)
        #expect(lead.prefetched?.contacts == contacts)
        let group = try await store.groupCandidates(for: lead, now: t0, limit: 49)
        #expect(group.map(\.key.reminderID) == ["P2"])
        #expect(lead.prefetched?.groupCandidates?.map(\.key.reminderID) == group.map(\.key.reminderID))
        #expect(try await store.attemptCount(channel: .email, since: since) == 1)
        // Prefetching stops after the deliveries that can start; the rest come without it.
        _ = try await store.ingest(
            [reminder("OTHER", notBefore: t0.addingTimeInterval(-10), debtor: "H")], sourceFile: "i", queue: "default", priority: 0, now: t0)
        let partly = try await store.due(now: t0, limit: 10, prefetch: Ledger.Prefetch(contactsSince: since, groupLimit: 49, deliveries: 1)) { _, _ in false }
        #expect(partly.map(\.key.reminderID) == ["P1", "OTHER"])
        #expect(partly.map { $0.prefetched != nil } == [true, false])
    }

}
