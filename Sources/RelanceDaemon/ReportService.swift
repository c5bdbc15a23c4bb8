import Foundation
import Logging
import RelanceConfig
import RelanceCore
import RelanceDispatch
import RelanceStore
import ServiceLifecycle

/// The report mailed on `report.schedule` to `report.mail_to` (the weekly report to the finance
/// team), in `defaults.timezone`, as of each run's day. A run missed while the daemon was down is
/// not caught up (a late report would go out unasked: `relance report --mail-to` sends one by
/// hand). The schedule in force is read again after every run and every reload.
struct ReportService: Service {
    let ledger: any LedgerStore
    let current: CurrentSnapshot
    let logger: Logger
    let clock: @Sendable () -> Date

    func run() async throws {
        await ScheduledRuns.run(current: current, clock: clock, schedule: \.report.schedule) { due, configuration in
            await mail(as: due, configuration: configuration)
        }
    }

    func mail(as instant: Date, configuration: RelanceConfiguration) async {
        guard let mailTo = configuration.report.mailTo, let recipient = Mailbox(parsing: mailTo) else { return }
        let zone = TimeZone(identifier: configuration.defaults.timezone) ?? .gmt
        let date = CivilDate(instant, in: zone)
        let settings = configuration.report
        do {
            let report = try await ReportRun.build(
                ledger: ledger, options: .init(asOf: date, months: settings.months, disputed: settings.disputed, zone: zone))
            let language = ReportHTML.Language(locale: settings.locale ?? configuration.defaults.locale)
            let (outcome, via) = try await ReportRun.mail(
                report, to: recipient, language: language, configuration: configuration, transports: current.current.dispatch.transports, now: clock())
            if case .sent = outcome {
                logger.notice("report mailed", metadata: ["relance.report.as_of": "\(date)", "relance.report.to": "\(recipient.address)", "relance.transport": "\(via)"])
            } else {
                logger.error(
                    "the report could not be mailed; the next scheduled run tries again",
                    metadata: ["relance.report.as_of": "\(date)", "relance.transport": "\(via)", "error": "\(outcome.detail)"])
            }
        } catch {
            logger.error("the report could not be built; the next scheduled run tries again", metadata: ["error": "\(error)"])
        }
    }
}
