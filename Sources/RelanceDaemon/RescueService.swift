import Foundation
import Logging
import RelanceDispatch
import RelanceStore
import ServiceLifecycle

/// Several nodes: every third of a lease, the claims whose lease lapsed (a node killed, frozen or
/// cut off) become in doubt, exactly as after a crash of a single node: `unknown`, and with
/// `delivery.in_doubt: resend` resent after asking the SMS gateway where it can be asked
/// (`InDoubtCheck`), so that a delivery is rescued within two lease lengths.
struct RescueService: Service {
    let ledger: any LedgerStore
    let lease: Duration
    let current: CurrentSnapshot
    let dispatcher: Dispatcher
    let logger: Logger
    let clock: @Sendable () -> Date

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: lease / 3) }
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            let configuration = current.current.configuration
            let resend = configuration.delivery.inDoubt == .resend
            do {
                let rescued = try await ledger.rescueLapsedClaims(resend: false, now: clock())
                for key in rescued {
                    logger.warning(
                        "a claim's lease lapsed (its node stopped, froze or was cut off): in doubt",
                        metadata: [
                            "relance.reminder.id": "\(key.reminderID)", "relance.delivery.channel": "\(key.channel.rawValue)",
                            "relance.in_doubt": "\(resend ? "resend" : "hold")",
                        ])
                }
                if resend && !rescued.isEmpty {
                    await InDoubtCheck.settle(rescued, ledger: ledger, clients: (try? Reconciler.clients(configuration)) ?? [:], logger: logger, clock: clock)
                    dispatcher.wake()
                }
            } catch {
                logger.error("cannot rescue lapsed claims; the next round tries again", metadata: ["error": "\(error)"])
            }
        }
    }
}
