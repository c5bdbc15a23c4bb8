import Foundation

/// Builds a `ReceivablesReport` from the receivables ledger one debtor at a time: it keeps only
/// totals per currency and date, credit sales per currency and day, and the top debtors, so a
/// ledger of any size streams through in bounded memory.
public struct ReportBuilder: Sendable {
    public let options: ReceivablesReport.Options
    /// The dates receivables are taken on: the report's date, the start of its period, and the
    /// last 12 month ends (the trend), without repeats.
    let dates: [CivilDate]
    let trendDates: [CivilDate]
    let periodStart: CivilDate

    private var totals: [String: [CivilDate: ReceivablesReport.Totals]] = [:]
    private var aging: [String: [ReceivablesReport.Bucket: ReceivablesReport.Aging]] = [:]
    /// Credit sales per currency and day number.
    private var sales: [String: [Int: Int64]] = [:]
    private var top: [String: [ReceivablesReport.TopDebtor]] = [:]
    /// Recovery per currency and stage.
    private var stages: [String: [String: ReceivablesReport.StageFigures]] = [:]
    private var unmatched: [String: Int] = [:]
    /// The risk model in force, for the risk column and the "to call first" list (nil: none).
    let model: ScoreModel?
    private var callFirst: [String: [ReceivablesReport.CallFirst]] = [:]

    public init(options: ReceivablesReport.Options, model: ScoreModel? = nil) {
        self.options = options
        self.model = model
        let lastEnd = options.asOf.lastMonthEnd
        trendDates = (0..<12).reversed().map { lastEnd.addingMonths(-$0) }
        periodStart = options.asOf.addingMonths(-options.months)
        dates = Array(Set([options.asOf, periodStart] + trendDates)).sorted()
    }

    /// Adds one debtor: its receivables, and the reminders sent to it (`sent`, for the recovery
    /// per stage; any order, including those sent after the report's date, which are left out).
    public mutating func add(_ snapshot: DebtorSnapshot, sent: [SentReminder] = []) {
        var standings = Standings(snapshot: snapshot)
        let risks = model.map { risk(snapshot, model: $0, standings: &standings) } ?? [:]
        addReceivables(snapshot, sent: sent, standings: &standings, risks: risks)
        if !sent.isEmpty { addRecovery(snapshot, sent: sent, standings: &standings) }
    }

    /// One debtor's standing at each date asked, computed once for both parts of `add` (the
    /// report's date is needed by both).
    private struct Standings {
        let snapshot: DebtorSnapshot
        var known: [CivilDate: DebtorStanding] = [:]

        init(snapshot: DebtorSnapshot) { self.snapshot = snapshot }

        mutating func on(_ date: CivilDate) -> DebtorStanding {
            if let standing = known[date] { return standing }
            let standing = DebtorStanding.compute(invoices: snapshot.invoices, movements: snapshot.movements, on: date)
            known[date] = standing
            return standing
        }
    }

    /// P(late) of each invoice open on the report's date (scored on the day after it), and the
    /// debtor's entries of the "to call first" list.
    private mutating func risk(_ snapshot: DebtorSnapshot, model: ScoreModel, standings: inout Standings) -> [String: Double] {
        var outstanding: [String: (amount: Int64, currency: String)] = [:]
        for item in standings.on(options.asOf).items where item.outstanding > 0 {
            outstanding[item.id.invoice, default: (0, item.currency)].amount += item.outstanding
        }
        guard !outstanding.isEmpty else { return [:] }
        let history = DebtorHistory(snapshot)
        var risks: [String: Double] = [:]
        for (i, invoice) in history.invoices.enumerated() where outstanding[invoice.number] != nil {
            risks[invoice.number] = model.score(history, index: i, on: options.asOf.dayNumber + 1).pLate
        }
        var perCurrency: [String: ReceivablesReport.CallFirst] = [:]
        for (number, open) in outstanding {
            let p = risks[number] ?? 0
            var entry =
                perCurrency[open.currency]
                ?? .init(id: snapshot.debtor.debtor.id, name: snapshot.debtor.debtor.name, atRisk: 0, outstanding: 0, invoice: number, risk: p)
            entry.atRisk += Int64((Double(open.amount) * p).rounded())
            entry.outstanding += open.amount
            if (p, entry.invoice) > (entry.risk, number) { (entry.invoice, entry.risk) = (number, p) }
            perCurrency[open.currency] = entry
        }
        for (currency, entry) in perCurrency where options.top > 0 {
            var list = callFirst[currency, default: []]
            list.append(entry)
            if list.count > options.top * 2 { Self.trimCallFirst(&list, to: options.top) }
            callFirst[currency] = list
        }
        return risks
    }

    static func trimCallFirst(_ list: inout [ReceivablesReport.CallFirst], to count: Int) {
        list.sort { ($0.atRisk, $1.id) > ($1.atRisk, $0.id) }
        if list.count > count { list.removeLast(list.count - count) }
    }

    private mutating func addReceivables(_ snapshot: DebtorSnapshot, sent: [SentReminder], standings: inout Standings, risks: [String: Double]) {
        let asOf = options.asOf
        for invoice in snapshot.invoices where invoice.issuedOn <= asOf {
            sales[invoice.currency, default: [:]][invoice.issuedOn.dayNumber, default: 0] += invoice.amount
        }
        let disputes: [(invoice: String, from: CivilDate, through: CivilDate?)] = snapshot.movements.compactMap {
            if case .dispute(_, let invoice, let opened, let closed, _) = $0 { return (invoice, opened, closed) }
            return nil
        }
        func isDisputed(_ invoice: String, on date: CivilDate) -> Bool {
            disputes.contains { $0.invoice == invoice && $0.from <= date && ($0.through.map { date <= $0 } ?? true) }
        }
        let excludeDisputed = options.disputed == .excluded
        var overdueNow: [String: (amount: Int64, oldest: ItemStanding?)] = [:]
        for date in dates {
            let standing = standings.on(date)
            for item in standing.items where item.outstanding > 0 {
                let disputed = !disputes.isEmpty && isDisputed(item.id.invoice, on: date)
                let daysOverdue = date.dayNumber - item.dueOn.dayNumber
                var t = totals[item.currency, default: [:]][date, default: .init()]
                if disputed { t.disputed += item.outstanding }
                if !(disputed && excludeDisputed) {
                    t.receivables += item.outstanding
                    if daysOverdue > 0 { t.overdue += item.outstanding } else { t.current += item.outstanding }
                }
                totals[item.currency, default: [:]][date] = t
                guard date == asOf, !(disputed && excludeDisputed) else { continue }
                let bucket = ReceivablesReport.Bucket(daysOverdue: daysOverdue)
                aging[item.currency, default: [:]][bucket, default: .init()].amount += item.outstanding
                aging[item.currency, default: [:]][bucket, default: .init()].count += 1
                if daysOverdue > 0 {
                    var entry = overdueNow[item.currency] ?? (0, nil)
                    entry.amount += item.outstanding
                    if entry.oldest.map({ (item.dueOn, item.id) < ($0.dueOn, $0.id) }) ?? true { entry.oldest = item }
                    overdueNow[item.currency] = entry
                }
            }
        }
        guard options.top > 0, !overdueNow.isEmpty else { return }
        // The last contact: a reminder that reached a transport (spool or plan), or a step the plan
        // took (a hand-off sends nothing and is a contact too), on or before the date.
        let contacts = snapshot.taken.values.flatMap { $0 } + sent.map { TakenStep(stage: $0.stage, on: CivilDate($0.sentAt, in: options.zone)) }
        let last = contacts.filter { $0.on <= asOf }.max { ($0.on, $0.stage) < ($1.on, $1.stage) }
        for (currency, entry) in overdueNow {
            guard let oldest = entry.oldest else { continue }
            let debtor = ReceivablesReport.TopDebtor(
                id: snapshot.debtor.debtor.id, name: snapshot.debtor.debtor.name, overdue: entry.amount, oldest: oldest.id, oldestDueOn: oldest.dueOn,
                daysOverdue: asOf.dayNumber - oldest.dueOn.dayNumber, stage: last?.stage, lastContact: last?.on,
                risk: risks.isEmpty ? nil : risks.values.max())
            var list = top[currency, default: []]
            list.append(debtor)
            if list.count > options.top * 2 { Self.trim(&list, to: options.top) }
            top[currency] = list
        }
    }

    /// What each reminder sent by the report's date recovered (see `StageFigures` for the rules).
    private mutating func addRecovery(_ snapshot: DebtorSnapshot, sent: [SentReminder], standings: inout Standings) {
        let asOf = options.asOf
        let currencyOf = Dictionary(snapshot.invoices.map { ($0.number, $0.currency) }, uniquingKeysWith: { a, _ in a })
        for reminder in sent {
            let day = CivilDate(reminder.sentAt, in: options.zone)
            guard day <= asOf else { continue }
            let known = Set(reminder.invoices.filter { currencyOf[$0] != nil })
            guard !known.isEmpty else {
                unmatched[reminder.stage, default: 0] += 1
                continue
            }
            for currency in Set(known.compactMap { currencyOf[$0] }).sorted() {
                let invoices = known.filter { currencyOf[$0] == currency }
                func items(on date: CivilDate) -> [ItemStanding] { standings.on(date).items.filter { invoices.contains($0.id.invoice) } }
                let atSending = items(on: day)
                let covered = atSending.reduce(Int64(0)) { $0 + $1.outstanding }
                var figures = stages[currency, default: [:]][reminder.stage, default: .init()]
                figures.reminders += 1
                figures.covered += covered
                for (days, window) in [(7, \ReceivablesReport.StageFigures.window7), (30, \.window30)] where day.adding(days: days) <= asOf {
                    let later = Dictionary(items(on: day.adding(days: days)).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
                    // Paid: what the outstanding lost, except on items written off meanwhile.
                    let paid = atSending.reduce(Int64(0)) { sum, item in
                        guard let after = later[item.id], after.settled?.by != .writtenOff else { return sum }
                        return sum + max(0, item.outstanding - after.outstanding)
                    }
                    figures[keyPath: window].reminders += 1
                    figures[keyPath: window].covered += covered
                    figures[keyPath: window].paid += paid
                }
                let now = items(on: asOf)
                if covered > 0, now.allSatisfy({ $0.outstanding == 0 && $0.settled?.by == .paid }),
                    let last = now.compactMap({ $0.settled?.on }).max(), last > day
                {
                    figures.daysToPayment.append(last.dayNumber - day.dayNumber)
                }
                stages[currency, default: [:]][reminder.stage] = figures
            }
        }
    }

    static func trim(_ list: inout [ReceivablesReport.TopDebtor], to count: Int) {
        list.sort { ($1.overdue, $0.id) < ($0.overdue, $1.id) }
        if list.count > count { list.removeLast(list.count - count) }
    }

    /// The report; `deliveries` are the delivery ledger's counts per channel and status at the
    /// end of the report's day.
    public func finish(deliveries: [(channel: String, stage: String, status: String, count: Int)] = []) -> ReceivablesReport {
        let currencies = Set(totals.keys).union(sales.keys).union(stages.keys).sorted()
        let figures = currencies.map { currency -> ReceivablesReport.CurrencyFigures in
            let byDate = totals[currency] ?? [:]
            let daily = sales[currency] ?? [:]
            func collection(at date: CivilDate) -> ReceivablesReport.Collection {
                // Month windows back from the date, most recent first.
                let windows = (1...CollectionMetrics.countbackLimit).map { k -> CollectionMetrics.Window in
                    let (from, through) = (date.addingMonths(-k), date.addingMonths(-(k - 1)))
                    var sum: Int64 = 0
                    for day in (from.dayNumber + 1)...through.dayNumber { sum += daily[day] ?? 0 }
                    return .init(days: through.dayNumber - from.dayNumber, sales: sum)
                }
                let period = Array(windows.prefix(options.months))
                let t = byDate[date] ?? .init()
                let countback = CollectionMetrics.countbackDSO(receivables: t.receivables, windows: windows)
                return .init(
                    date: date, totals: t, sales: period.reduce(0) { $0 + $1.sales }, days: period.reduce(0) { $0 + $1.days },
                    dsoSimple: CollectionMetrics.simpleDSO(receivables: t.receivables, windows: period), dsoCountback: countback.days,
                    countbackBounded: countback.bounded, bestPossibleDSO: CollectionMetrics.bestPossibleDSO(current: t.current, windows: period))
            }
            let headline = collection(at: options.asOf)
            let start = byDate[periodStart] ?? .init()
            var list = top[currency] ?? []
            Self.trim(&list, to: options.top)
            var calls = callFirst[currency] ?? []
            Self.trimCallFirst(&calls, to: options.top)
            var figures = ReceivablesReport.CurrencyFigures(
                currency: currency, aging: aging[currency] ?? [:], headline: headline, start: start,
                cei: CollectionMetrics.cei(
                    start: start.receivables, sales: headline.sales, end: headline.totals.receivables, currentEnd: headline.totals.current),
                trend: trendDates.map(collection(at:)), top: list, stages: stages[currency] ?? [:])
            figures.callFirst = calls
            return figures
        }
        var channels: [String: [String: Int]] = [:]
        var byStage: [String: [String: [String: Int]]] = [:]
        for d in deliveries {
            channels[d.channel, default: [:]][d.status, default: 0] += d.count
            byStage[d.channel, default: [:]][d.stage, default: [:]][d.status, default: 0] += d.count
        }
        var report = ReceivablesReport(
            options: options, currencies: figures,
            channels: channels.keys.sorted().map { ReceivablesReport.ChannelFigures(channel: $0, statuses: channels[$0] ?? [:]) },
            unmatchedReminders: unmatched)
        report.channelsByStage = byStage.keys.sorted().flatMap { channel in
            ReceivablesReport.ordered(stages: (byStage[channel] ?? [:]).keys).map { stage in
                ReceivablesReport.ChannelFigures(channel: channel, stage: stage, statuses: byStage[channel]?[stage] ?? [:])
            }
        }
        return report
    }
}
