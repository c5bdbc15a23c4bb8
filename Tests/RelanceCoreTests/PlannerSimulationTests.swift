import Foundation
import Testing

@testable import RelanceCore

/// Six months of a business (issue 12, "Cadence" and "Oracle"): 200 debtors, about 1,500
/// invoices with instalments, payments full, partial, late and unallocated, credit notes, disputes
/// opened and closed, promises kept and broken, holds, write-offs. The planner runs and commits
/// daily, every 3 days, hourly (24 runs a day) and daily with a 20-day outage; an independent
/// re-implementation of DESIGN.md's rules (`Oracle`, below, written from the text) must agree with
/// it on every decision, and the committed histories must keep every rule.
@Suite struct PlannerSimulationTests {
    static let start = CivilDate(year: 2026, month: 1, day: 1)
    static let days = 181
    static let rules = PlanRules(ladders: ["default": PlanRules.defaultLadder], minGap: 7, afterPayment: 7, minAmount: ["EUR": 1500])

    // MARK: The world

    struct World {
        var debtors: [ReceivableDebtor] = []
        var invoices: [String: [ReceivableInvoice]] = [:]
        var movements: [String: [ReceivableMovement]] = [:]
        var invoiceCount: Int { invoices.values.reduce(0) { $0 + $1.count } }
    }

    /// `SplitMix` (PolicyTests) with the draws the world needs.
    struct Random {
        var generator: SplitMix
        init(state: UInt64) { generator = SplitMix(seed: state) }
        mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(generator.next() % UInt64(range.count)) }
        mutating func chance(_ p: Double) -> Bool { Double(generator.next() % 1_000_000) / 1_000_000 < p }
    }

    static func world(seed: UInt64 = 2026) -> World {
        var r = Random(state: seed)
        var w = World()
        for d in 0..<200 {
            let id = String(format: "D%03d", d)
            let email: String? = r.chance(0.9) ? "d\(d)@example.fr" : nil
            let phone: String? = r.chance(0.4) ? "+3361234\(String(format: "%04d", d))" : (r.chance(0.1) ? "+33144556677" : nil)
            w.debtors.append(
                ReceivableDebtor(
                    debtor: Debtor(
                        id: id, name: "Debtor \(d)", email: email, phone: phone, country: "FR", locale: "fr-FR", timezone: "Europe/Paris",
                        kind: r.chance(0.6) ? .business : .consumer)))
            let behaviour = r.int(0...9)  // 0-3 prompt, 4-6 late, 7-8 partial, 9 never
            var invoices: [ReceivableInvoice] = []
            var movements: [ReceivableMovement] = []
            for n in 0..<r.int(4...11) {
                let issued = start.adding(days: r.int(0...150))
                let due = issued.adding(days: r.chance(0.5) ? 30 : 45)
                let amount = Int64(r.chance(0.05) ? r.int(500...1400) : r.int(2_000...500_000))
                var instalments: [Instalment] = []
                if r.chance(0.15) {
                    let parts = r.int(2...3)
                    let each = amount / Int64(parts)
                    instalments = (0..<parts).map {
                        Instalment(dueOn: due.adding(days: 30 * $0), amount: $0 == parts - 1 ? amount - each * Int64(parts - 1) : each)
                    }
                }
                let number = "\(id)-F\(n)"
                invoices.append(
                    ReceivableInvoice(number: number, debtor: id, issuedOn: issued, dueOn: due, amount: amount, currency: "EUR", instalments: instalments))
                switch behaviour {
                case 0...3:
                    movements.append(.payment(id: "\(number)-P", amount: amount, currency: "EUR", paidOn: due.adding(days: r.int(-5...5)), invoice: number))
                case 4...6:
                    movements.append(
                        .payment(
                            id: "\(number)-P", amount: amount, currency: "EUR", paidOn: due.adding(days: r.int(10...70)), invoice: r.chance(0.3) ? nil : number)
                    )
                case 7...8:
                    let first = amount / 2
                    movements.append(.payment(id: "\(number)-P1", amount: first, currency: "EUR", paidOn: due.adding(days: r.int(0...30)), invoice: number))
                    if r.chance(0.6) {
                        movements.append(
                            .payment(id: "\(number)-P2", amount: amount - first, currency: "EUR", paidOn: due.adding(days: r.int(31...90)), invoice: number))
                    }
                default: break
                }
                if r.chance(0.05) {
                    movements.append(
                        .creditNote(id: "\(number)-AV", invoice: number, amount: amount / Int64(r.int(1...10)), issuedOn: due.adding(days: r.int(-10...20))))
                }
                if r.chance(0.04) {
                    let opened = due.adding(days: r.int(0...30))
                    movements.append(
                        .dispute(
                            id: "\(number)-D", invoice: number, openedOn: opened, closedOn: r.chance(0.7) ? opened.adding(days: r.int(5...40)) : nil,
                            reason: "litige"))
                }
                if r.chance(0.01) { movements.append(.writeOff(invoice: number, on: due.adding(days: r.int(60...100)))) }
            }
            if r.chance(0.05) {
                let made = start.adding(days: r.int(20...160))
                movements.append(.promise(id: "\(id)-PR", scope: .debtor, amount: nil, until: made.adding(days: r.int(5...15)), madeOn: made))
            }
            if r.chance(0.03) {
                let from = start.adding(days: r.int(20...150))
                movements.append(.hold(id: "\(id)-H", scope: .debtor, until: from.adding(days: 20), reason: "procédure", from: from))
            }
            w.invoices[id] = invoices
            w.movements[id] = movements
        }
        return w
    }

    // MARK: Runs

    /// Every step every item took, with its date, per cadence; and the planner's decisions at each run.
    struct History {
        var taken: [String: [ItemID: [TakenStep]]] = [:]
        var runs: [CivilDate] = []
        /// (item, stage) → date sent.
        var pairs: [String: CivilDate] = [:]
        var perStage: [String: Int] = [:]
        var perReason: [String: Int] = [:]
        var disagreements: [String] = []
        var violations: [String] = []
        /// The last computed run committed nothing.
        var quiet = false
    }

    static func key(_ debtor: String, _ item: ItemID, _ stage: String) -> String { "\(debtor)|\(item)|\(stage)" }

    /// Runs the planner on `dates` (each date `perDay` times), committing each run; checks it
    /// against the oracle at the first run of each date when `oracle` is set. The planner is a
    /// pure function of (snapshot, date): once a run of a day commits nothing, the day's later
    /// runs have exactly its inputs and are counted without being computed again.
    static func run(_ world: World, dates: [CivilDate], perDay: Int = 1, oracle: Bool = true) -> History {
        var h = History()
        var previous: CivilDate?
        for date in dates {
            for round in 0..<perDay {
                h.runs.append(date)
                if round >= 2 && h.runs.count >= 2 && h.quiet { continue }
                let before = h.pairs.count
                for d in world.debtors {
                    let id = d.debtor.id
                    let snapshot = DebtorSnapshot(
                        debtor: d, invoices: world.invoices[id] ?? [], movements: world.movements[id] ?? [], taken: h.taken[id] ?? [:])
                    let part = Planner.plan(snapshot, rules: rules, asOf: date, previousRun: previous)
                    if oracle && round == 0 {
                        let expected = Oracle(rules: rules).decide(snapshot, on: date)
                        let got = Set(part.reminders.flatMap { r in r.items.map { "\($0.id)>\(r.stage)" } })
                        if got != expected.sends { h.disagreements.append("\(date) \(id): planner \(got.sorted()) oracle \(expected.sends.sorted())") }
                        let gotHeld = Dictionary(part.held.map { ("\($0.item)", $0.reason.rawValue) }, uniquingKeysWith: { a, _ in a })
                        for (item, reason) in expected.held where gotHeld[item] != reason && !(reason == "paid" || reason == "written_off") {
                            h.disagreements.append("\(date) \(id) \(item): planner \(gotHeld[item] ?? "nothing") oracle \(reason)")
                        }
                    }
                    for r in part.reminders {
                        for item in r.items {
                            h.taken[id, default: [:]][item.id, default: []].append(TakenStep(stage: r.stage, on: date))
                            let k = key(id, item.id, r.stage)
                            if h.pairs[k] != nil { h.violations.append("\(k) sent twice") }
                            h.pairs[k] = date
                            h.perStage[r.stage, default: 0] += 1
                        }
                    }
                    if round == 0 { for held in part.held { h.perReason[held.reason.rawValue, default: 0] += 1 } }
                }
                previous = date
                h.quiet = h.pairs.count == before
            }
        }
        return h
    }

    /// The rules every committed history keeps.
    static func check(_ world: World, _ h: History, outageEnd: CivilDate? = nil) -> [String] {
        var problems = h.violations
        let ladder = PlanRules.defaultLadder.steps
        for d in world.debtors {
            let id = d.debtor.id
            let items = Dictionary(
                (world.invoices[id] ?? []).flatMap { $0.items.map { ($0.id, $0.dueOn) } }, uniquingKeysWith: { a, _ in a })
            var contacts: Set<Int> = []
            for (item, steps) in h.taken[id] ?? [:] {
                guard let due = items[item] else { continue }
                let indices = steps.map { s in ladder.firstIndex { $0.stage == s.stage } ?? -1 }
                // In order, never skipping: consecutive, except a courtesy dropped once due.
                var expected = indices.first == 0 ? 0 : 1
                for (i, step) in zip(indices, steps) {
                    if i != expected { problems.append("\(id) \(item): step \(step.stage) out of order \(indices)") }
                    expected = i + 1
                    if step.on < due.adding(days: ladder[i].at) { problems.append("\(id) \(item): \(step.stage) on \(step.on) before its day") }
                    if ladder[i].at < 0 && step.on >= due { problems.append("\(id) \(item): courtesy sent on or after the due date") }
                    contacts.insert(step.on.dayNumber)
                }
                for (a, b) in zip(steps, steps.dropFirst()) where a.on == b.on { problems.append("\(id) \(item): two steps on \(a.on)") }
                if let outageEnd, let first = h.runs.first(where: { $0 >= outageEnd }) {
                    if steps.filter({ $0.on == first }).count > 1 { problems.append("\(id) \(item): more than one step after the outage") }
                }
            }
            let sorted = contacts.sorted()
            for (a, b) in zip(sorted, sorted.dropFirst()) where b - a < rules.minGap {
                problems.append("\(id): contacts \(CivilDate(dayNumber: a)) and \(CivilDate(dayNumber: b)) closer than min_gap")
            }
            // Nothing planned for an item settled, disputed, held or promised on its run date.
            for (item, steps) in h.taken[id] ?? [:] {
                for step in steps {
                    let standing = DebtorStanding.compute(invoices: world.invoices[id] ?? [], movements: world.movements[id] ?? [], on: step.on)
                    let m = world.movements[id] ?? []
                    if standing.items.first(where: { $0.id == item })?.settled != nil { problems.append("\(id) \(item): \(step.stage) after settlement") }
                    if Planner.activeDispute(m, invoice: item.invoice, on: step.on) != nil || Planner.activeHold(m, invoice: item.invoice, on: step.on) != nil
                        || Planner.activePromise(m, invoice: item.invoice, on: step.on) != nil
                    {
                        problems.append("\(id) \(item): \(step.stage) while held")
                    }
                }
            }
        }
        return problems
    }

    static var allDays: [CivilDate] { (0..<days).map { start.adding(days: $0) } }

    /// What the simulation found, computed off the cooperative pool (some twenty seconds of CPU
    /// in a debug build would otherwise hold one of its threads and starve the other tests).
    struct Outcome: Sendable {
        var invoices = 0
        /// (cadence, first problems, count)
        var problems: [(String, [String], Int)] = []
        var disagreements: [(String, [String], Int)] = []
        var summaries: [String] = []
        var hourlyIsDaily = false
        var sentAfterOutage = false
        var unexplained: [String] = []
        var late: [String] = []
        var differences = (blocked: 0, endOfPeriod: 0, courtesy: 0)
    }

    @Test func underEveryCadenceTheRulesHoldAndTheOracleAgrees() async throws {
        let outcome = await withCheckedContinuation { (c: CheckedContinuation<Outcome, Never>) in
            DispatchQueue.global().async { c.resume(returning: Self.simulate()) }
        }
        #expect((1_300...1_700).contains(outcome.invoices), "about 1,500 invoices: \(outcome.invoices)")
        for (name, first, count) in outcome.problems { #expect(count == 0, "\(name): \(first)") }
        for (name, first, count) in outcome.disagreements { #expect(count == 0, "\(name): \(first)") }
        #expect(outcome.hourlyIsDaily, "several runs a day at date granularity are one run: the same pairs, the same days")
        #expect(outcome.sentAfterOutage, "the first run after the outage sends what waited")
        #expect(outcome.unexplained.isEmpty, "\(outcome.unexplained.prefix(10))")
        #expect(outcome.late.isEmpty, "\(outcome.late.prefix(10))")
        for line in outcome.summaries { print(line) }
        let d = outcome.differences
        print(
            "simulation: every 3 days vs daily, pairs differing: \(d.blocked) explained by a settlement, dispute, hold or promise, "
                + "\(d.endOfPeriod) by the end of the period, \(d.courtesy) courtesy steps whose days held no run allowed to contact")
    }

    static func simulate() -> Outcome {
        var outcome = Outcome()
        let world = Self.world()
        outcome.invoices = world.invoiceCount
        let daily = Self.run(world, dates: Self.allDays)
        let threeDays = Self.run(world, dates: Self.allDays.enumerated().filter { $0.offset % 3 == 0 }.map(\.element))
        let hourly = Self.run(world, dates: Self.allDays, perDay: 24, oracle: false)
        let outageStart = CivilDate(year: 2026, month: 3, day: 1)
        let outageEnd = outageStart.adding(days: 20)
        let outage = Self.run(world, dates: Self.allDays.filter { $0 < outageStart || $0 >= outageEnd })

        for (name, history, end) in [("daily", daily, nil), ("every 3 days", threeDays, nil), ("hourly", hourly, nil), ("20-day outage", outage, outageEnd)] {
            let problems = Self.check(world, history, outageEnd: end)
            outcome.problems.append((name, Array(problems.prefix(10)), problems.count))
            outcome.disagreements.append((name, Array(history.disagreements.prefix(10)), history.disagreements.count))
            let stages = history.perStage.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            let reasons = history.perReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            outcome.summaries.append(
                "simulation \(name): \(history.runs.count) runs, \(history.pairs.count) (item, step) sent: \(stages); held, summed over runs: \(reasons)")
        }
        outcome.hourlyIsDaily = hourly.pairs == daily.pairs
        // The outage: each item moved one step at most at the first run after it (checked above).
        outcome.sentAfterOutage = outage.pairs.values.contains(outageEnd)

        // Against daily: each pair sent by one cadence and not the other is explained, and every
        // pair is sent no later than the earliest day the rules allow it plus the cadence.
        for (name, other, period) in [("every 3 days", threeDays, 3)] {
            for key in Set(daily.pairs.keys).symmetricDifference(other.pairs.keys).sorted() {
                let parts = key.split(separator: "|").map(String.init)
                let (debtor, itemText, stage) = (parts[0], parts[1], parts[2])
                let lacking = daily.pairs[key] == nil ? daily : other
                switch Self.explain(world, lacking, debtor: debtor, item: itemText, stage: stage) {
                case .blocked: outcome.differences.blocked += 1
                case .endOfPeriod: outcome.differences.endOfPeriod += 1
                case .courtesyWindow: outcome.differences.courtesy += 1
                case .unexplained(let why): outcome.unexplained.append("\(name) vs daily: \(key) unexplained: \(why)")
                }
            }
            // At the run before the one that sent a pair, the oracle (which agreed with the planner
            // at every run) did not allow it; runs are `period` days apart.
            for (key, date) in other.pairs {
                guard let index = other.runs.firstIndex(of: date), index > 0 else { continue }
                if date.dayNumber - other.runs[index - 1].dayNumber > period {
                    outcome.late.append("\(name): \(key): more than \(period) days after the run before")
                }
            }
        }
        return outcome
    }

    enum Explanation {
        case blocked
        case endOfPeriod
        case courtesyWindow
        case unexplained(String)
    }

    /// Why the history `h` never sent (item, stage), replayed with the oracle at each of its runs:
    /// - blocked: at a run after the item's previous step, it was settled, disputed, on hold,
    ///   promised (or below the minimum, or unreachable);
    /// - a courtesy (`at` < 0) whose days before the due date held no run where contact was allowed;
    /// - the end of the period: at the last run the step was not allowed yet (its day, min_gap,
    ///   after_payment), or the item had not reached the step before it.
    static func explain(_ world: World, _ h: History, debtor: String, item itemText: String, stage: String) -> Explanation {
        guard let d = world.debtors.first(where: { $0.debtor.id == debtor }) else { return .unexplained("no debtor") }
        let ladder = PlanRules.defaultLadder.steps
        guard let stageIndex = ladder.firstIndex(where: { $0.stage == stage }) else { return .unexplained("unknown stage") }
        let oracle = Oracle(rules: rules)
        let steps = (h.taken[debtor] ?? [:]).first { "\($0.key)" == itemText }?.value ?? []
        let previous = stageIndex == 0 ? nil : steps.first { $0.stage == ladder[stageIndex - 1].stage }?.on
        var reasons: [String] = []
        var lastDecision: Oracle.Decision?
        for date in Set(h.runs).sorted() where previous.map({ date > $0 }) ?? true {
            var taken: [ItemID: [TakenStep]] = [:]
            for (item, steps) in h.taken[debtor] ?? [:] { taken[item] = steps.filter { $0.on < date } }
            let decision = oracle.decide(
                DebtorSnapshot(debtor: d, invoices: world.invoices[debtor] ?? [], movements: world.movements[debtor] ?? [], taken: taken), on: date)
            if let reason = decision.held[itemText] { reasons.append(reason) }
            if decision.sends.contains("\(itemText)>\(stage)") { return .unexplained("the oracle would have sent it on \(date)") }
            lastDecision = decision
        }
        let blocking: Set<String> = ["disputed", "on_hold", "promised", "below_minimum", "no_contact", "handed_off"]
        if reasons.contains(where: blocking.contains) { return .blocked }
        // Settled: the oracle lists nothing for a settled item.
        if let last = lastDecision, last.held[itemText] == nil, !last.sends.contains(where: { $0.hasPrefix("\(itemText)>") }) { return .blocked }
        if ladder[stageIndex].at < 0 { return .courtesyWindow }
        let reached = steps.compactMap { s in ladder.firstIndex { $0.stage == s.stage } }.max() ?? -1
        if reached < stageIndex - 1 { return .endOfPeriod }
        if let last = h.runs.last, let next = lastDecision?.nextOn[itemText], next > last { return .endOfPeriod }
        return .unexplained("steps \(steps.map(\.stage)), reasons \(Set(reasons).sorted())")
    }
}

/// DESIGN.md's ladder, re-implemented from the text for the simulation (not from Planner.swift):
/// day by day allocation, then the rules in the order the text gives them.
struct Oracle {
    var rules: PlanRules

    struct Decision {
        /// "item>stage" for each step sent.
        var sends: Set<String> = []
        /// item → reason code.
        var held: [String: String] = [:]
        var nextOn: [String: CivilDate] = [:]
    }

    struct Item {
        var id: ItemID
        var due: CivilDate
        var left: Int64
        var currency: String
        var writtenOff = false
    }

    /// Outstanding per item on `date`: walk the days; on each, invoices issued, then credit notes,
    /// payments, write-offs; money for an invoice to its earliest instalments, the rest to the
    /// oldest open items of the currency.
    func items(_ s: DebtorSnapshot, on date: CivilDate) -> (items: [Item], lastPartial: CivilDate?) {
        var items: [Item] = []
        var credit: [String: Int64] = [:]
        var lastPartial: CivilDate?
        func pay(_ amount: Int64, currency: String, invoice: String?) {
            var amount = amount
            if let invoice {
                for i in items.indices.sorted(by: { items[$0].due < items[$1].due })
                where items[i].id.invoice == invoice && items[i].currency == currency && !items[i].writtenOff {
                    let t = min(amount, items[i].left)
                    items[i].left -= t
                    amount -= t
                }
            }
            credit[currency, default: 0] += amount
        }
        func spendCredit() {
            for (currency, var c) in credit where c > 0 {
                for i in items.indices.sorted(by: { (items[$0].due, items[$0].id) < (items[$1].due, items[$1].id) })
                where items[i].currency == currency && items[i].left > 0 && !items[i].writtenOff {
                    let t = min(c, items[i].left)
                    items[i].left -= t
                    c -= t
                }
                credit[currency] = c
            }
        }
        // Only the days something happens.
        let byID = s.movements.sorted { Self.id($0) < Self.id($1) }
        let days = Set(s.invoices.map(\.issuedOn) + s.movements.compactMap(\.date)).filter { $0 <= date }.sorted()
        for day in days {
            for inv in s.invoices where inv.issuedOn == day {
                if inv.instalments.isEmpty {
                    items.append(Item(id: ItemID(invoice: inv.number, instalment: nil), due: inv.dueOn, left: inv.amount, currency: inv.currency))
                } else {
                    for (n, p) in inv.instalments.enumerated() {
                        items.append(Item(id: ItemID(invoice: inv.number, instalment: n + 1), due: p.dueOn, left: p.amount, currency: inv.currency))
                    }
                }
            }
            spendCredit()
            for case .creditNote(_, let invoice, let amount, day) in byID {
                if let currency = s.invoices.first(where: { $0.number == invoice })?.currency, items.contains(where: { $0.id.invoice == invoice }) {
                    pay(amount, currency: currency, invoice: invoice)
                }
            }
            spendCredit()
            var paidToday = false
            for case .payment(_, let amount, let currency, day, let invoice) in byID {
                pay(amount, currency: currency, invoice: invoice.flatMap { n in items.contains { $0.id.invoice == n } ? n : nil })
                spendCredit()
                paidToday = true
            }
            for case .writeOff(let invoice, day) in s.movements {
                for i in items.indices where items[i].id.invoice == invoice && items[i].left > 0 { items[i].writtenOff = true }
            }
            // A payment after which something is still owed at the end of its day.
            if paidToday && items.contains(where: { $0.left > 0 && !$0.writtenOff }) { lastPartial = day }
        }
        return (items, lastPartial)
    }

    static func id(_ m: ReceivableMovement) -> String {
        switch m {
        case .payment(let id, _, _, _, _), .creditNote(let id, _, _, _), .dispute(let id, _, _, _, _), .promise(let id, _, _, _, _), .hold(let id, _, _, _, _):
            id
        case .writeOff(let invoice, _): invoice
        }
    }

    func decide(_ s: DebtorSnapshot, on date: CivilDate) -> Decision {
        var decision = Decision()
        let ladder = (s.debtor.ladder.flatMap { rules.ladders[$0] } ?? rules.ladders["default"] ?? PlanRules.defaultLadder).steps
        let (items, lastPartial) = items(s, on: date)
        var contactAllowed = date
        if let last = s.taken.values.flatMap({ $0 }).map(\.on).max() { contactAllowed = max(contactAllowed, last.adding(days: rules.minGap)) }
        if let lastPartial { contactAllowed = max(contactAllowed, lastPartial.adding(days: rules.afterPayment)) }
        let canContact = contactAllowed <= date
        var canReceive: [Channel] = []
        if s.debtor.debtor.email != nil { canReceive.append(.email) }
        if let phone = s.debtor.debtor.phone, phone.hasPrefix("+336") || phone.hasPrefix("+337") || !phone.hasPrefix("+33") { canReceive.append(.sms) }

        func covered(_ scopeInvoice: String?, _ invoice: String) -> Bool { scopeInvoice == nil || scopeInvoice == invoice }
        for item in items {
            let key = "\(item.id)"
            let done = (s.taken[item.id] ?? []).map(\.stage)
            let doneIndex = done.compactMap { st in ladder.firstIndex { $0.stage == st } }.max()
            if item.left == 0 || item.writtenOff {
                continue  // settled: never chased (the listing of settled items is the planner's report, not a decision)
            }
            if let doneIndex, ladder[doneIndex].action == .handoff {
                decision.held[key] = "handed_off"
                continue
            }
            var disputed = false
            var hold = false
            var promised = false
            for m in s.movements {
                switch m {
                case .dispute(_, let inv, let opened, let closed, _) where inv == item.id.invoice && opened <= date && (closed == nil || date <= closed!):
                    disputed = true
                case .hold(_, let scope, let until, _, let from):
                    let inv: String? = if case .invoice(let n) = scope { n } else { nil }
                    if covered(inv, item.id.invoice) && (from == nil || from! <= date) && (until == nil || date <= until!) { hold = true }
                case .promise(_, let scope, _, let until, let made):
                    let inv: String? = if case .invoice(let n) = scope { n } else { nil }
                    if covered(inv, item.id.invoice) && (made == nil || made! <= date) && date <= until { promised = true }
                default: break
                }
            }
            if disputed {
                decision.held[key] = "disputed"
                continue
            }
            if hold {
                decision.held[key] = "on_hold"
                continue
            }
            if promised {
                decision.held[key] = "promised"
                continue
            }
            if let minimum = rules.minAmount[item.currency], item.left < minimum {
                decision.held[key] = "below_minimum"
                continue
            }
            var next = (doneIndex ?? -1) + 1
            while next < ladder.count && ladder[next].at < 0 && date >= item.due { next += 1 }
            if next >= ladder.count {
                decision.held[key] = "not_due"
                continue
            }
            let day = item.due.adding(days: ladder[next].at)
            if day > date || !canContact {
                decision.held[key] = "not_due"
                decision.nextOn[key] = max(day, contactAllowed)
                continue
            }
            if ladder[next].action == .send && canReceive.isEmpty {
                decision.held[key] = "no_contact"
                continue
            }
            decision.sends.insert("\(key)>\(ladder[next].stage)")
        }
        return decision
    }
}
