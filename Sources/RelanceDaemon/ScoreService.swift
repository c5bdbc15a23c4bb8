import Foundation
import Logging
import RelanceCore
import RelanceDispatch
import RelanceStore
import ServiceLifecycle

/// Refits the risk models on `score.schedule` (weekly by default), on the history known that day
/// in `defaults.timezone`. A run missed while the daemon was down is not caught up (the models in
/// force stay until the next one, or `relance score --train`). Too little history is a notice,
/// not an error: the score waits for it.
struct ScoreService: Service {
    let ledger: any LedgerStore
    let current: CurrentSnapshot
    let logger: Logger
    let clock: @Sendable () -> Date

    func run() async throws {
        await ScheduledRuns.run(current: current, clock: clock, schedule: \.score.schedule) { due, configuration in
            await refit(as: CivilDate(due, in: TimeZone(identifier: configuration.defaults.timezone) ?? .gmt))
        }
    }

    func refit(as day: CivilDate) async {
        let started = ContinuousClock.now
        do {
            let training = try await ScoreRun.train(ledger, asOf: day, bandsOn: day, now: clock())
            let model = training.model
            logger.notice(
                "risk models refitted",
                metadata: [
                    "relance.score.as_of": "\(day)", "relance.score.examples": "\(model.metrics.examples)",
                    "relance.score.auc": "\(model.metrics.auc.map { String(format: "%.3f", $0) } ?? "-")",
                    "relance.score.banded_debtors": "\(training.bandedDebtors)",
                    "relance.duration": "\(ContinuousClock.now - started)",
                ])
        } catch let error as ScoreModel.TrainError {
            logger.notice("risk models not refitted: too little history yet", metadata: ["relance.reason": "\(error)"])
        } catch {
            logger.error("risk models not refitted; the next scheduled run tries again", metadata: ["error": "\(error)"])
        }
    }
}
