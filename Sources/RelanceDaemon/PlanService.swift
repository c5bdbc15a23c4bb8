import Foundation
import Logging
import RelanceConfig
import RelanceCore
import RelanceDispatch
import RelanceStore
import ServiceLifecycle

/// The dunning planner inside the daemon (`plan.schedule`, in `defaults.timezone`): at each run it
/// commits the plan as of that instant (the intake imports `spool/receivables/` as files come) and
/// wakes the dispatcher. The schedule in force is read again after every run and every reload.
struct PlanService: Service {
    let ledger: any LedgerStore
    let current: CurrentSnapshot
    let dispatcher: Dispatcher
    let logger: Logger
    let clock: @Sendable () -> Date

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let configuration = current.current.configuration
            let zone = TimeZone(identifier: configuration.defaults.timezone) ?? .gmt
            let schedule = configuration.plan.schedule
            // A scheduled run missed while the daemon was down (or before its first run) is
            // caught up once, now; then the next one is awaited (a minute at most, so that a
            // reload's schedule is taken into account).
            if let due = schedule.previous(atOrBefore: clock(), in: zone) {
                let last: Date?
                do { last = try await ledger.lastPlanCommit() } catch {
                    logger.error("cannot read the last plan run", metadata: ["error": "\(error)"])
                    last = clock()
                }
                if (last ?? .distantPast) < due { await commit(at: clock()) }
            }
            let pause = schedule.wait(from: clock(), in: zone)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
        }
    }

    /// One committed run, as `relance plan --commit` does it.
    func commit(at instant: Date) async {
        let snapshot = current.current
        let configuration = snapshot.configuration
        let zone = TimeZone(identifier: configuration.defaults.timezone) ?? .gmt
        let date = CivilDate(instant, in: zone)
        do {
            let result = try await PlanRun.commit(ledger: ledger, components: snapshot.components, instant: instant, date: date, now: clock())
            logger.notice(
                "plan committed",
                metadata: [
                    "relance.plan.run": "\(result.runID)", "relance.plan.as_of": "\(date)", "relance.plan.created": "\(result.created.count)",
                    "relance.plan.handoffs": "\(result.handoffs)", "relance.plan.held": "\(result.held)", "relance.plan.rejected": "\(result.rejected.count)",
                ])
            for (id, reason) in result.rejected.prefix(20) {
                logger.error("planned reminder not created", metadata: ["relance.reminder.id": "\(id)", "relance.reason": "\(reason)"])
            }
            if !result.created.isEmpty { dispatcher.wake() }
        } catch {
            logger.error("plan run failed; the next scheduled run tries again", metadata: ["error": "\(error)"])
        }
    }
}
