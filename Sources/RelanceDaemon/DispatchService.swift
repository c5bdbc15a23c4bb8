import Foundation
import Logging
import RelanceDispatch
import RelanceHTTP
import ServiceLifecycle

/// Sends what is due until SIGTERM; then stops claiming and lets in-flight sends finish, at most
/// `delivery.drain_timeout`.
struct DispatchService: Service {
    let dispatcher: Dispatcher
    let stopping: StopFlag
    let health: ServiceHealth
    let current: CurrentSnapshot
    let logger: Logger

    func run() async throws {
        health.set("dispatcher", running: true)
        defer { health.set("dispatcher", running: false) }
        let (stopping, dispatcher, current, logger) = (self.stopping, self.dispatcher, self.current, self.logger)
        await withGracefulShutdownHandler {
            await dispatcher.run(untilIdle: false, shouldStop: { stopping.isSet || Task.isCancelled })
        } onGracefulShutdown: {
            stopping.set()
            dispatcher.wake()
            // The drain bound: a transport call cannot be interrupted safely, so past the bound the
            // process exits and leaves those deliveries `sending`, in doubt at the next start.
            let drainTimeout = current.current.configuration.delivery.drainTimeout.value
            Thread.detachNewThread {
                Thread.sleep(forTimeInterval: drainTimeout.seconds)
                let stuck = dispatcher.inFlightKeys
                guard !stuck.isEmpty else { return }
                logger.critical(
                    "drain timeout: exiting with sends still in flight; they will be in doubt at the next start",
                    metadata: [
                        "relance.drain_timeout": "\(drainTimeout)",
                        "relance.in_flight": "\(stuck.map { "\($0.reminderID)/\($0.channel.rawValue)" }.sorted().joined(separator: ","))",
                    ])
                fflush(nil)
                _exit(1)
            }
        }
    }
}
