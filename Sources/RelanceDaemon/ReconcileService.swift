import Foundation
import Logging
import RelanceCore
import RelanceDispatch
import RelanceStore
import ServiceLifecycle

/// Runs SMS reconciliation rounds (`Reconciler`) while the daemon runs, with the configuration in
/// force (a reload rebuilds the gateways' status clients). `sms.reconcile_after: 0` turns it off.
struct ReconcileService: Service {
    let ledger: any LedgerStore
    let current: CurrentSnapshot
    let logger: Logger
    let clock: @Sendable () -> Date

    func run() async throws {
        var reconciler: (generation: Int, value: Reconciler?)?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let snapshot = current.current
            let sms = snapshot.configuration.sms
            var pause = snapshot.configuration.spool.rescanInterval.value
            if reconciler?.generation != snapshot.generation {
                var built: Reconciler?
                if sms.reconcileAfter.value > .zero {
                    do {
                        let clients = try Reconciler.clients(snapshot.configuration)
                        if !clients.isEmpty {
                            built = Reconciler(
                                ledger: ledger, clients: clients,
                                schedule: PollSchedule(after: sms.reconcileAfter.value, every: sms.reconcileEvery.value, giveUp: sms.reconcileGiveUp.value),
                                rate: sms.reconcileRate, logger: logger, clock: clock)
                        }
                    } catch {
                        logger.error("SMS reconciliation unavailable: cannot build the status clients", metadata: ["error": "\(error)"])
                    }
                }
                reconciler = (snapshot.generation, built)
            }
            if let active = reconciler?.value {
                pause = active.schedule.tick
                do {
                    let round = try await active.round()
                    if round.more { continue }
                } catch {
                    logger.warning("SMS reconciliation round failed; retrying", metadata: ["error": "\(error)"])
                }
            }
            let wait = pause
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
        }
    }
}
