import Foundation
import Logging
import Metrics
import RelanceCore
import RelanceDispatch
import RelanceStore
import ServiceLifecycle

/// The business gauges on `/metrics`, from a report as of today, computed at start and then every
/// `report.metrics_interval` (a report reads the whole receivables ledger: seconds for a large
/// one, on a reader connection, so not at every scrape):
/// - `relance_receivables{currency,kind}`: receivables, current, overdue, disputed (major units);
/// - `relance_receivables_aging{currency,bucket}`: the aging buckets (major units);
/// - `relance_dso_days{currency,method}`: simple, countback, best_possible;
/// - `relance_cei_percent{currency}`;
/// - `relance_stage_reminders{stage}`: reminders that reached a transport, per dunning stage;
/// - `relance_report_timestamp_seconds`: when these were computed.
struct BusinessMetricsService: Service {
    let ledger: any LedgerStore
    let current: CurrentSnapshot
    let logger: Logger
    let clock: @Sendable () -> Date

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await refresh()
            let pause = current.current.configuration.report.metricsInterval.value
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
        }
    }

    func refresh() async {
        let configuration = current.current.configuration
        let zone = TimeZone(identifier: configuration.defaults.timezone) ?? .gmt
        let now = clock()
        do {
            let report = try await ReportRun.build(
                ledger: ledger,
                options: .init(asOf: CivilDate(now, in: zone), months: configuration.report.months, disputed: configuration.report.disputed, top: 0, zone: zone))
            Self.record(report)
            Gauge(label: "relance_report_timestamp_seconds").record(now.timeIntervalSince1970)
        } catch {
            logger.error("cannot compute the business metrics; they keep their last values", metadata: ["error": "\(error)"])
        }
    }

    static func record(_ report: ReceivablesReport) {
        var perStage: [String: Int] = report.unmatchedReminders
        for f in report.currencies {
            let c = f.currency
            let major = { (units: Int64) in MinorAmount(units: units, currency: c).major }
            let t = f.headline.totals
            for (kind, value) in [("receivables", t.receivables), ("current", t.current), ("overdue", t.overdue), ("disputed", t.disputed)] {
                Gauge(label: "relance_receivables", dimensions: [("currency", c), ("kind", kind)]).record(major(value))
            }
            for bucket in ReceivablesReport.Bucket.allCases {
                Gauge(label: "relance_receivables_aging", dimensions: [("currency", c), ("bucket", bucket.rawValue)]).record(major(f.aging[bucket]?.amount ?? 0))
            }
            for (method, value) in [("simple", f.headline.dsoSimple), ("countback", f.headline.dsoCountback), ("best_possible", f.headline.bestPossibleDSO)] {
                Gauge(label: "relance_dso_days", dimensions: [("currency", c), ("method", method)]).record(value ?? 0)
            }
            Gauge(label: "relance_cei_percent", dimensions: [("currency", c)]).record(f.cei ?? 0)
            for (stage, figures) in f.stages { perStage[stage, default: 0] += figures.reminders }
        }
        for (stage, count) in perStage { Gauge(label: "relance_stage_reminders", dimensions: [("stage", stage)]).record(count) }
    }
}
