import Foundation
import GRDB
import Logging
import RelanceCore
import RelanceStore
import RelanceTemplates
import Synchronization
import Testing

@testable import RelanceConfig
@testable import RelanceDaemon
@testable import RelanceDispatch
@testable import RelanceHTTP
@testable import RelanceSpool

/// The dispatcher in-process, with a transport that records what it is asked to do.
@Suite struct DispatcherTests {
    final class Recorder: Sendable {
        struct State {
            var inFlight: [String: Int] = [:]
            var maxInFlight: [String: Int] = [:]
            var order: [String] = []
        }
        let state = Mutex(State())

        func send(to: String) async -> SendOutcome {
            let queue = String(to.split(separator: "@")[1].split(separator: ".")[0])
            state.withLock {
                $0.inFlight[queue, default: 0] += 1
                $0.maxInFlight[queue] = max($0.maxInFlight[queue] ?? 0, $0.inFlight[queue]!)
                $0.order.append(to)
            }
            // Simulated network latency, so that sends overlap.
            try? await Task.sleep(for: .milliseconds(20))
            state.withLock { $0.inFlight[queue]! -= 1 }
            return .sent(providerID: nil, code: 250, detail: "ok")
        }

        func sendSMS(reminderID: String) async -> SendOutcome {
            state.withLock { $0.order.append("sms:" + reminderID) }
            return .sent(providerID: "SM-\(reminderID)", code: 201, detail: "ok")
        }
    }

    func reminder(_ id: String, queue: String, debtor: String? = nil) -> Reminder {
        Reminder(
            id: id, stage: "reminder_1", channels: [.email],
            debtor: Debtor(
                id: debtor ?? "C-\(id)", name: "N", email: "\(id.lowercased())@\(queue).example", country: "FR", locale: "fr-FR", timezone: "Europe/Paris",
                kind: .consumer),
            invoices: [
                Invoice(
                    number: "F-\(id)", amount: "10.00", currency: "EUR", issuedOn: CivilDate(year: 2026, month: 1, day: 1),
                    dueOn: CivilDate(year: 2026, month: 2, day: 1))
            ])
    }

    /// A configuration with no contact policy restriction, 4 deliveries at once.
    func configuration() -> RelanceConfiguration {
        var configuration = RelanceConfiguration()
        configuration.policy = .unrestricted
        configuration.delivery.concurrency = 4
        configuration.templates.path = Package.templates
        return configuration
    }

    /// One `--once` pass of a dispatcher over `ledger`, with the recording transport.
    func runOnce(_ configuration: RelanceConfiguration, ledger: Ledger, at instant: Date? = nil) async throws -> (Recorder.State, Dispatcher) {
        let components = try Components(configuration)
        let recorder = Recorder()
        let transports = Transports(
            emailName: "test", smsName: "test", sendEmail: { _, to, _ in await recorder.send(to: to) },
            sendSMS: { _, reminderID in await recorder.sendSMS(reminderID: reminderID) })
        let dispatcher = Dispatcher(
            ledger: ledger, components: components, transports: transports, logger: testLogger("test"), clock: { instant ?? Date() })
        await dispatcher.run(untilIdle: true, shouldStop: { false })
        return (recorder.state.withLock { $0 }, dispatcher)
    }

    /// `try? firstLetter` used to read a failing ledger as "no earlier letter": in agency mode a
    /// follow-up went out as if it were the first letter. A read that fails now stops the send.
    @Test func aLedgerReadThatFailsStopsTheSendInsteadOfGuessing() async throws {
        var configuration = configuration()
        configuration.agency = try ConfigurationLoader.load(file: nil, yaml: #"agency: { name: "Agence", address: "1 rue X, Paris" }"#, environment: [:])
            .0.agency
        let ledger = try Ledger(path: NSTemporaryDirectory() + "relance-dispatch-" + UUID().uuidString + "/ledger.sqlite")
        var earlier = reminder("EARLIER", queue: "q")
        earlier.invoices = reminder("LATER", queue: "q").invoices
        earlier.notBefore = Date().addingTimeInterval(86400)
        _ = try await ledger.ingest([reminder("LATER", queue: "q"), earlier], sourceFile: "f", queue: "default", priority: 0, now: Date())
        // A letter about the same invoice, recorded by a version that knew another channel.
        var raw = Configuration()
        raw.foreignKeysEnabled = false
        try await DatabaseQueue(path: ledger.path, configuration: raw).write { db in
            try db.execute(
                sql:
                    "INSERT INTO attempt (reminder_id, channel, number, transport, recipient, started_at, outcome) VALUES ('EARLIER', 'fax', 1, 'x', 'x', 0, 'sent')"
            )
        }
        let (state, dispatcher) = try await runOnce(configuration, ledger: ledger)
        #expect(state.order.isEmpty, "nothing sent on a guess")
        #expect(dispatcher.totals.sent == 0)
        #expect(try await ledger.deliveries(reminderID: "LATER").first?.status == "pending", "it waits for a ledger it can read")
    }

    @Test func priorityFirstAndSharesCapEachQueue() async throws {
        var configuration = configuration()
        configuration.queues = ["urgent": .init(priority: 10, share: 1.0), "bulk": .init(priority: -1, share: 0.25)]
        let ledger = try Ledger(path: NSTemporaryDirectory() + "relance-dispatch-" + UUID().uuidString + "/ledger.sqlite")
        let now = Date()
        _ = try await ledger.ingest((0..<12).map { reminder("B\($0)", queue: "bulk") }, sourceFile: "b", queue: "bulk", priority: -1, now: now)
        _ = try await ledger.ingest((0..<6).map { reminder("U\($0)", queue: "urgent") }, sourceFile: "u", queue: "urgent", priority: 10, now: now)
        let (state, dispatcher) = try await runOnce(configuration, ledger: ledger)

        #expect(state.order.count == 18)
        #expect(state.maxInFlight["bulk"] == 1, "bulk may use 25 % of 4 slots")
        #expect((state.maxInFlight["urgent"] ?? 0) <= 4)
        #expect(state.order.prefix(4).allSatisfy { $0.contains("@urgent.") }, "urgent goes first: \(state.order.prefix(6))")
        let notSent = try await ledger.deliveries().filter { $0.status != "sent" }
        #expect(notSent.isEmpty, "\(notSent.prefix(3))")
        #expect(dispatcher.totals.sent == 18)
    }

    /// A queue at its share must not hold back another queue of the same priority behind its
    /// backlog: the due walk read the oldest rows only, all of the capped queue, and nothing
    /// started until that backlog was nearly gone.
    @Test func aQueueAtItsShareDoesNotHoldBackAnotherOfTheSamePriority() async throws {
        var configuration = configuration()
        configuration.queues = ["bulk": .init(priority: 0, share: 0.25)]
        let ledger = try Ledger(path: NSTemporaryDirectory() + "relance-dispatch-" + UUID().uuidString + "/ledger.sqlite")
        let now = Date()
        _ = try await ledger.ingest(
            (0..<40).map { reminder("B\($0)", queue: "bulk") }, sourceFile: "b", queue: "bulk", priority: 0, now: now.addingTimeInterval(-60))
        _ = try await ledger.ingest((0..<6).map { reminder("D\($0)", queue: "default") }, sourceFile: "d", queue: "default", priority: 0, now: now)
        let (state, dispatcher) = try await runOnce(configuration, ledger: ledger)

        #expect(dispatcher.totals.sent == 46)
        #expect(state.maxInFlight["bulk"] == 1, "bulk may use 25 % of 4 slots")
        let firstDefault = state.order.firstIndex { $0.contains("@default.") } ?? state.order.count
        #expect(firstDefault <= 2, "the default queue starts beside bulk, not after it: \(state.order.prefix(12))")
        #expect((state.maxInFlight["default"] ?? 0) == 3, "the default queue uses the slots bulk may not")
    }

    /// A channel waiting for its rate limit must not hold back the other channel: the due walk
    /// read the oldest rows only, all SMS waiting for a token, and the emails behind them waited
    /// for the SMS backlog to drain.
    @Test func aChannelWaitingForItsRateLimitDoesNotHoldBackTheOther() async throws {
        var configuration = configuration()
        configuration.sms.rate = 4  // a burst of 4, then one every 250 ms
        let ledger = try Ledger(path: NSTemporaryDirectory() + "relance-dispatch-" + UUID().uuidString + "/ledger.sqlite")
        let now = Date()
        var sms = (0..<16).map { reminder("S\($0)", queue: "q") }
        for i in sms.indices {
            sms[i].channels = [.sms]
            sms[i].debtor.phone = String(format: "+336120000%02d", i)
        }
        _ = try await ledger.ingest(sms, sourceFile: "s", queue: "default", priority: 0, now: now.addingTimeInterval(-60))
        _ = try await ledger.ingest((0..<3).map { reminder("E\($0)", queue: "q") }, sourceFile: "e", queue: "default", priority: 0, now: now)
        let (state, dispatcher) = try await runOnce(configuration, ledger: ledger)

        #expect(dispatcher.totals.sent == 19, "every SMS went in the end, at its rate")
        let lastEmail = state.order.lastIndex { !$0.hasPrefix("sms:") } ?? state.order.count
        #expect(lastEmail < 8, "the emails go beside the SMS burst, not after the SMS backlog: \(state.order)")
    }

    @Test func oneDebtorsBatchIsInterleavedWithOthers() async throws {
        let ledger = try Ledger(path: NSTemporaryDirectory() + "relance-dispatch-" + UUID().uuidString + "/ledger.sqlite")
        let now = Date()
        // Twelve reminders for one debtor, older than three other debtors' single reminders.
        _ = try await ledger.ingest(
            (0..<12).map { reminder("BIG\($0)", queue: "big", debtor: "BIG") }, sourceFile: "b", queue: "default", priority: 0, now: now.addingTimeInterval(-60)
        )
        _ = try await ledger.ingest((0..<3).map { reminder("S\($0)", queue: "small") }, sourceFile: "s", queue: "default", priority: 0, now: now)
        let (state, _) = try await runOnce(configuration(), ledger: ledger)
        #expect(state.order.count == 15)
        #expect(state.maxInFlight["big"] == 1, "one debtor's deliveries go one at a time")
        // The first wave (4 slots, started together): the oldest delivery and the three other debtors.
        #expect(Set(state.order.prefix(4)) == ["big0@big.example", "s0@small.example", "s1@small.example", "s2@small.example"], "\(state.order.prefix(5))")
    }

    @Test func aDeferralPastExpiresAtExpiresTheDelivery() async throws {
        var configuration = configuration()
        configuration.policy = RelanceConfiguration.Policy()  // the shipped default
        let ledger = try Ledger(path: NSTemporaryDirectory() + "relance-dispatch-" + UUID().uuidString + "/ledger.sqlite")
        // Tuesday 1 December 2026, 21:00 in Paris: the SMS window opens again on Wednesday at 10:00.
        let evening = Timestamp.parse("2026-12-01T21:00:00+01:00")!
        func sms(_ id: String, expires: String) -> Reminder {
            var r = reminder(id, queue: "q")
            r.channels = [.sms]
            r.debtor.phone = "+33612345678"
            r.expiresAt = Timestamp.parse(expires)
            return r
        }
        _ = try await ledger.ingest(
            [sms("EXP-1", expires: "2026-12-02T09:00:00+01:00"), sms("KEEP-1", expires: "2026-12-03T00:00:00+01:00")], sourceFile: "f", queue: "default",
            priority: 0, now: evening)
        let (state, _) = try await runOnce(configuration, ledger: ledger, at: evening)
        #expect(state.order.isEmpty, "nothing goes out at night")
        let byID = Dictionary(uniqueKeysWithValues: try await ledger.deliveries().map { ($0.reminderID, $0) })
        #expect(byID["EXP-1"]?.status == "expired")
        #expect(byID["KEEP-1"]?.status == "pending" && byID["KEEP-1"]?.dueAt == Timestamp.parse("2026-12-02T10:00:00+01:00"))
        let reason = try await ledger.events(reminderID: "EXP-1").last?.reason ?? ""
        #expect(reason.hasPrefix("expired: the policy would defer it past expires_at (deferred until 2026-12-02T10:00:00+01:00 (Europe/Paris)"), "\(reason)")
    }

    @Test func aPauseEndsByItselfAtItsUntil() async throws {
        let ledger = try Ledger(path: NSTemporaryDirectory() + "relance-dispatch-" + UUID().uuidString + "/ledger.sqlite")
        let t = Timestamp.parse("2026-12-01T11:00:00+01:00")!
        _ = try await ledger.ingest([reminder("PA-1", queue: "q")], sourceFile: "f", queue: "default", priority: 0, now: t)
        let request = CancellationRequest(scope: .debtor, value: "C-PA-1", reason: .promiseToPay, until: t.addingTimeInterval(3600))
        let result = try await ledger.cancel(request, source: "test", now: t)
        #expect(result.paused == 1 && result.cancelled == 0)
        let (before, _) = try await runOnce(configuration(), ledger: ledger, at: t.addingTimeInterval(3599))
        #expect(before.order.isEmpty)
        #expect(try await ledger.deliveries().first?.status == "paused")
        let (after, _) = try await runOnce(configuration(), ledger: ledger, at: t.addingTimeInterval(3600))
        #expect(after.order == ["pa-1@q.example"], "sent in the pass at its until")
        let reasons = try await ledger.events(reminderID: "PA-1").map(\.reason)
        #expect(reasons.contains("pause ended"), "\(reasons)")
    }
}

@Suite struct BoundarySeedTests {
    /// Every message gets boundaries of its own, made of characters RFC 2046 allows in one.
    @Test func seedsAreDistinctAndLegal() async {
        let seeds = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<4 { group.addTask { (0..<500).map { _ in BoundarySeed.next() } } }
            return await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(Set(seeds).count == 2000)
        let allowed = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?")
        #expect(seeds.allSatisfy { $0.allSatisfy(allowed.contains) && ("=_mix_" + $0).count <= 70 }, "\(seeds.first ?? "")")
    }
}
