import Foundation
import Testing

@testable import RelanceCore

/// The dispatcher's decisions, without I/O: scenarios with an injected clock, then randomised
/// event sequences that check the invariants after every step.
@Suite struct DispatchStateMachineTests {
    typealias Machine = DispatchStateMachine
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func candidate(_ id: String, _ channel: Channel = .email, debtor: String? = nil, queue: String = "default") -> Machine.Candidate {
        Machine.Candidate(key: DeliveryKey(reminderID: id, channel: channel), queue: queue, debtor: debtor ?? "D-" + id)
    }

    /// The keys of the `.start` and `.probe` actions.
    func startedIDs(_ actions: [Machine.Action]) -> [String] {
        actions.flatMap { action -> [String] in
            switch action {
            case .start(let list): list.map(\.key.reminderID)
            case .probe(_, let c): [c.key.reminderID]
            case .sleep, .idle: []
            }
        }
    }

    @Test func breakerOpensThenOneProbeThenCloses() {
        var m = Machine(.init(concurrency: 4, breakers: [.email: CircuitBreaker(threshold: 2, cooldown: .seconds(60))]))
        #expect(startedIDs(m.candidates([candidate("A"), candidate("B")], now: t0)) == ["A", "B"])
        #expect(m.finished(DeliveryKey(reminderID: "A", channel: .email), .providerFailed, now: t0) == .done)
        #expect(m.finished(DeliveryKey(reminderID: "B", channel: .email), .providerFailed, now: t0) == .breakerOpened(.email))
        #expect(m.candidates([candidate("C"), candidate("D")], now: t0.addingTimeInterval(30)) == [.sleep(until: t0.addingTimeInterval(60))])
        let probe = m.candidates([candidate("C"), candidate("D"), candidate("E", .sms)], now: t0.addingTimeInterval(60))
        #expect(probe == [.start([candidate("E", .sms)]), .probe(.email, candidate("C"))], "one probe; the other channel is not held")
        #expect(m.finished(DeliveryKey(reminderID: "E", channel: .sms), .providerWorked, now: t0.addingTimeInterval(60)) == .done)
        #expect(m.candidates([candidate("D")], now: t0.addingTimeInterval(61)) == [.idle], "the probe's outcome wakes the dispatcher, not a timer")
        #expect(m.finished(DeliveryKey(reminderID: "C", channel: .email), .providerWorked, now: t0.addingTimeInterval(62)) == .breakerClosed(.email))
        #expect(startedIDs(m.candidates([candidate("D"), candidate("F")], now: t0.addingTimeInterval(62))) == ["D", "F"])
    }

    /// The defect: admission moved the breaker to "probe out" and then answered "wait" for the
    /// rate limit; no probe ever left and the channel stayed silent.
    @Test func aRateLimitNeverStrandsAProbe() {
        var m = Machine(.init(concurrency: 4, rates: [.email: 0.05], breakers: [.email: CircuitBreaker(threshold: 1, cooldown: .seconds(10))]))
        #expect(startedIDs(m.candidates([candidate("A")], now: t0)) == ["A"])
        #expect(m.finished(DeliveryKey(reminderID: "A", channel: .email), .providerFailed, now: t0) == .breakerOpened(.email))
        // Cooldown over, but the bucket holds half a token: wait for it, probe nothing yet.
        #expect(m.candidates([candidate("B")], now: t0.addingTimeInterval(10)) == [.sleep(until: t0.addingTimeInterval(20))])
        #expect(m.breakers[.email]?.admission(now: t0.addingTimeInterval(10)) == .probe, "no probe was taken")
        #expect(m.candidates([candidate("B")], now: t0.addingTimeInterval(20)) == [.probe(.email, candidate("B"))])
        #expect(m.finished(DeliveryKey(reminderID: "B", channel: .email), .providerWorked, now: t0.addingTimeInterval(21)) == .breakerClosed(.email))
    }

    /// The defect: a probe that returned early (deferred, cancelled, not buildable) never reported.
    @Test func aProbeThatSendsNothingHandsTheProbeOn() {
        var m = Machine(.init(concurrency: 2, breakers: [.sms: CircuitBreaker(threshold: 1, cooldown: .seconds(5))]))
        _ = m.candidates([candidate("A", .sms)], now: t0)
        _ = m.finished(DeliveryKey(reminderID: "A", channel: .sms), .providerFailed, now: t0)
        #expect(m.candidates([candidate("B", .sms)], now: t0.addingTimeInterval(5)) == [.probe(.sms, candidate("B", .sms))])
        #expect(m.finished(DeliveryKey(reminderID: "B", channel: .sms), .notAttempted, now: t0.addingTimeInterval(5)) == .done)
        #expect(m.candidates([candidate("C", .sms)], now: t0.addingTimeInterval(6)) == [.probe(.sms, candidate("C", .sms))])
    }

    @Test func queueSharesAndConcurrency() {
        var m = Machine(.init(concurrency: 4, shares: ["bulk": 0.5]))
        let due = (0..<5).map { candidate("B\($0)", queue: "bulk") } + [candidate("U", queue: "urgent"), candidate("V", queue: "urgent")]
        #expect(startedIDs(m.candidates(due, now: t0)) == ["B0", "B1", "U", "V"], "bulk takes half the slots at most")
        #expect(m.candidates(due, now: t0) == [.idle], "full")
        _ = m.finished(DeliveryKey(reminderID: "U", channel: .email), .providerWorked, now: t0)
        let waiting = due.filter { !["U", "B0"].contains($0.key.reminderID) }
        #expect(startedIDs(m.candidates(waiting, now: t0)) == [], "bulk is still at its share")
        _ = m.finished(DeliveryKey(reminderID: "B0", channel: .email), .providerWorked, now: t0)
        #expect(startedIDs(m.candidates(waiting, now: t0)) == ["B2"])
        // What the due walk is told: bulk has no room left, the other queues what the whole has.
        #expect(m.room(inQueue: "bulk") == 0)
        #expect(m.room(inQueue: "urgent") == 4 - 1)
        _ = m.finished(DeliveryKey(reminderID: "B1", channel: .email), .providerWorked, now: t0)
        #expect(m.room(inQueue: "bulk") == 1)
        m.stop()
        #expect(m.room(inQueue: "urgent") == 0, "stopping: nothing more starts")
    }

    /// What the due walk is told of each channel: as many as its rate has tokens for, one (whose
    /// refusal says when) while it has none or its provider is paused, none while a probe is out
    /// or, in one pass, while the provider is paused.
    @Test func theRoomOfAChannelFollowsItsRateAndItsBreaker() {
        var m = Machine(.init(concurrency: 8, rates: [.sms: 2], breakers: [.email: CircuitBreaker(threshold: 1, cooldown: .seconds(60))]))
        #expect(m.room(onChannel: .sms, now: t0) == 2, "a burst of two tokens")
        _ = m.candidates([candidate("S1", .sms), candidate("S2", .sms)], now: t0)
        #expect(m.room(onChannel: .sms, now: t0) == 1, "no token: one, to hear when the next one comes")
        #expect(m.room(onChannel: .sms, now: t0.addingTimeInterval(1)) == 2)
        #expect(m.room(onChannel: .email, now: t0) == .max, "no rate limit")
        _ = m.candidates([candidate("E1")], now: t0)
        _ = m.finished(DeliveryKey(reminderID: "E1", channel: .email), .providerFailed, now: t0)
        #expect(m.room(onChannel: .email, now: t0.addingTimeInterval(1)) == 1, "paused: one, to hear until when")
        #expect(m.room(onChannel: .email, now: t0.addingTimeInterval(61)) == 1, "half-open: the probe")
        _ = m.candidates([candidate("E2")], now: t0.addingTimeInterval(61))
        #expect(m.room(onChannel: .email, now: t0.addingTimeInterval(62)) == 0, "the probe is out")
        var once = Machine(.init(concurrency: 8, breakers: [.email: CircuitBreaker(threshold: 1, cooldown: .seconds(60))], onePass: true))
        _ = once.candidates([candidate("E1")], now: t0)
        _ = once.finished(DeliveryKey(reminderID: "E1", channel: .email), .providerFailed, now: t0)
        #expect(once.room(onChannel: .email, now: t0.addingTimeInterval(1)) == 0, "one pass: a paused provider's deliveries wait for the next")
    }

    @Test func oneDeliveryPerDebtorAtATime() {
        var m = Machine(.init(concurrency: 8))
        let due = [candidate("A1", debtor: "A"), candidate("A2", debtor: "A"), candidate("B1", debtor: "B"), candidate("A3", .sms, debtor: "A")]
        #expect(startedIDs(m.candidates(due, now: t0)) == ["A1", "B1"])
        #expect(m.isExcluded(DeliveryKey(reminderID: "A2", channel: .email), debtor: "A"))
        _ = m.finished(DeliveryKey(reminderID: "A1", channel: .email), .providerWorked, now: t0)
        #expect(startedIDs(m.candidates(Array(due.dropFirst()), now: t0)) == ["A2"])
    }

    @Test func drainStopsStartingAndWaitsForTheInFlight() {
        var m = Machine(.init(concurrency: 2))
        _ = m.candidates([candidate("A"), candidate("B")], now: t0)
        m.stop()
        #expect(m.candidates([candidate("C")], now: t0) == [.idle])
        #expect(m.room == 0)
        _ = m.finished(DeliveryKey(reminderID: "A", channel: .email), .providerWorked, now: t0)
        #expect(!m.isDrained)
        _ = m.finished(DeliveryKey(reminderID: "B", channel: .email), .providerFailed, now: t0)
        #expect(m.isDrained)
    }

    @Test func onePassTriesEachOnceAndLeavesAPausedProviderForTheNextPass() {
        var m = Machine(.init(concurrency: 2, breakers: [.sms: CircuitBreaker(threshold: 1, cooldown: .seconds(60))], onePass: true))
        _ = m.candidates([candidate("A", .sms)], now: t0)
        _ = m.finished(DeliveryKey(reminderID: "A", channel: .sms), .providerFailed, now: t0)
        #expect(m.isExcluded(DeliveryKey(reminderID: "A", channel: .sms), debtor: "D-A"), "tried once in this pass")
        #expect(m.candidates([candidate("B", .sms)], now: t0) == [.idle], "no sleep for the pause in one pass")
        #expect(m.isExcluded(DeliveryKey(reminderID: "B", channel: .sms), debtor: "D-B"), "left for the next pass")
    }

    @Test func aKeyThatWasNotStartedIsReportedNotTrusted() {
        var m = Machine(.init(concurrency: 2))
        #expect(m.finished(DeliveryKey(reminderID: "X", channel: .email), .providerWorked, now: t0) == .unknownKey)
        _ = m.candidates([candidate("A")], now: t0)
        #expect(m.finished(DeliveryKey(reminderID: "A", channel: .email), .providerWorked, now: t0) == .done)
        #expect(m.finished(DeliveryKey(reminderID: "A", channel: .email), .providerWorked, now: t0) == .unknownKey, "twice is once too many")
    }

    @Test func aReloadKeepsAnOpenBreakerAndTakesTheNewSettings() {
        var m = Machine(.init(concurrency: 2, breakers: [.email: CircuitBreaker(threshold: 1, cooldown: .seconds(60))]))
        _ = m.candidates([candidate("A")], now: t0)
        _ = m.finished(DeliveryKey(reminderID: "A", channel: .email), .providerFailed, now: t0)
        m.reconfigure(.init(concurrency: 3, breakers: [.email: CircuitBreaker(threshold: 3, cooldown: .seconds(10))]))
        #expect(m.breakers[.email]?.isOpen == true)
        #expect(m.breakers[.email]?.threshold == 3)
        #expect(m.configuration.concurrency == 3)
    }

    // MARK: Randomised sequences

    @Test func tenThousandRandomSequencesKeepTheInvariants() throws {
        let cooldown = 30.0
        for seed in 0..<10_000 {
            var rng = SplitMix(seed: UInt64(seed))
            let configuration = Machine.Configuration(
                concurrency: Int.random(in: 1...6, using: &rng), shares: ["bulk": [0.25, 0.5, 1][Int.random(in: 0...2, using: &rng)]],
                rates: Bool.random(using: &rng) ? [.sms: Double.random(in: 0.2...5, using: &rng)] : [:],
                breakers: [
                    .email: CircuitBreaker(threshold: Int.random(in: 1...3, using: &rng), cooldown: .seconds(cooldown)),
                    .sms: CircuitBreaker(threshold: Int.random(in: 1...3, using: &rng), cooldown: .seconds(cooldown)),
                ],
                onePass: seed % 10 == 0)
            var m = Machine(configuration)
            var now = t0
            var mine: [DeliveryKey: Machine.Candidate] = [:]  // started, not yet finished
            var healthy: [Channel: Bool] = [.email: true, .sms: true]
            for _ in 0..<60 {
                now = now.addingTimeInterval(Double.random(in: 0...8, using: &rng))
                if Int.random(in: 0..<10, using: &rng) < 2 { healthy[Bool.random(using: &rng) ? .email : .sms]?.toggle() }
                if mine.isEmpty || Bool.random(using: &rng) {
                    let due = (0..<Int.random(in: 0...8, using: &rng)).map { _ in
                        candidate(
                            "R\(Int.random(in: 0..<40, using: &rng))", Bool.random(using: &rng) ? .email : .sms,
                            debtor: "D\(Int.random(in: 0..<10, using: &rng))",
                            queue: Bool.random(using: &rng) ? "bulk" : "default")
                    }
                    var unique: [DeliveryKey: Machine.Candidate] = [:]
                    for c in due where unique[c.key] == nil { unique[c.key] = c }
                    let ordered = due.filter { unique.removeValue(forKey: $0.key) != nil }
                    for action in m.candidates(ordered, now: now) {
                        switch action {
                        case .start(let list):
                            for c in list {
                                #expect(mine[c.key] == nil, "seed \(seed): \(c.key) started twice")
                                mine[c.key] = c
                            }
                        case .probe(_, let c):
                            #expect(mine[c.key] == nil, "seed \(seed): \(c.key) started twice")
                            mine[c.key] = c
                        case .sleep(let until): #expect(until > now, "seed \(seed): a sleep must end in the future")
                        case .idle: break
                        }
                    }
                } else if let key = mine.keys.randomElement(using: &rng) {
                    mine[key] = nil
                    let report: Machine.Report =
                        Int.random(in: 0..<5, using: &rng) == 0 ? .notAttempted : healthy[key.channel] == true ? .providerWorked : .providerFailed
                    #expect(m.finished(key, report, now: now) != .unknownKey, "seed \(seed)")
                }
                try checkInvariants(m, mine: mine, seed: seed)
            }
            // A one-pass run leaves a paused provider for the next pass instead of waiting for it.
            if !configuration.onePass { try recoverOnceTheProviderAnswers(&m, mine: mine, now: now, cooldown: cooldown, seed: seed) }
        }
    }

    func checkInvariants(_ m: Machine, mine: [DeliveryKey: Machine.Candidate], seed: Int) throws {
        #expect(Set(m.inFlight.keys) == Set(mine.keys), "seed \(seed): the machine's in-flight set is what was started and not finished")
        #expect(m.inFlight.count <= m.configuration.concurrency, "seed \(seed)")
        var perQueue: [String: Int] = [:]
        for entry in m.inFlight.values { perQueue[entry.queue, default: 0] += 1 }
        for (queue, count) in perQueue { #expect(count <= m.configuration.cap(queue), "seed \(seed): queue \(queue) over its share") }
        let debtors = m.inFlight.values.map(\.debtor)
        #expect(Set(debtors).count == debtors.count, "seed \(seed): one delivery per debtor at a time")
        #expect(m.busyDebtors == Set(debtors), "seed \(seed)")
        for (channel, breaker) in m.breakers where breaker.state == .halfOpen(probing: true) {
            #expect(m.inFlight.contains { $0.key.channel == channel && $0.value.probe }, "seed \(seed): \(channel) waits for a probe that is not out")
        }
    }

    /// Once the provider answers, every breaker closes within its cooldown plus one probe.
    func recoverOnceTheProviderAnswers(_ m: inout Machine, mine: [DeliveryKey: Machine.Candidate], now start: Date, cooldown: Double, seed: Int) throws {
        var now = start
        for key in mine.keys { _ = m.finished(key, .providerWorked, now: now) }
        let slowestToken = m.configuration.rates.values.map { 1 / $0 }.max() ?? 0
        let deadline = start.addingTimeInterval(cooldown + slowestToken + 0.001)
        var round = 0
        while m.breakers.values.contains(where: { !$0.state.isClosed }) {
            round += 1
            try #require(round <= 10, "seed \(seed): the breakers did not recover: \(m.breakers)")
            // Work for every provider still paused (with one slot, work for another would take it first).
            let due = m.breakers.filter { !$0.value.state.isClosed }.keys.sorted().map { candidate("heal-\(round)-\($0)", $0, debtor: "heal-\(round)-\($0)") }
            var started: [Machine.Candidate] = []
            for action in m.candidates(due, now: now) {
                switch action {
                case .start(let list): started += list
                case .probe(_, let c): started.append(c)
                case .sleep(let until): now = max(now, until)
                case .idle: break
                }
            }
            for c in started { _ = m.finished(c.key, .providerWorked, now: now) }
        }
        #expect(now <= deadline, "seed \(seed): recovered at \(now.timeIntervalSince(start)) s, later than the cooldown plus one probe")
    }
}
