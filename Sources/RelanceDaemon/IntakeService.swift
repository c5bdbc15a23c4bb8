import Foundation
import Logging
import RelanceDispatch
import RelanceHTTP
import RelanceSpool
import ServiceLifecycle

/// Takes spool files in as they arrive (inotify), and at every `spool.rescan_interval` in case a
/// notification was missed; wakes the dispatcher when something new is in the ledger.
struct IntakeService: Service {
    let intake: Intake
    let dispatcher: Dispatcher
    let current: CurrentSnapshot
    let stopping: StopFlag
    let health: ServiceHealth
    let logger: Logger

    func run() async throws {
        health.set("intake", running: true)
        defer { health.set("intake", running: false) }
        let nudge = Nudge()
        let logger = self.logger
        let report: @Sendable (String) -> Void = { logger.warning("spool watch unavailable: relying on the periodic rescan", metadata: ["error": "\($0)"]) }
        let watchers = [intake.layout.incoming, intake.layout.cancel, intake.layout.receivables].compactMap {
            SpoolWatcher(directory: $0, onChange: { nudge.signal() }, onError: report)
        }
        for watcher in watchers { watcher.start() }
        defer { for watcher in watchers { watcher.stop() } }
        let (stopping, intake, dispatcher, current) = (self.stopping, self.intake, self.dispatcher, self.current)
        await withGracefulShutdownHandler {
            while !stopping.isSet && !Task.isCancelled {
                let result = await intake.pass(shouldStop: { stopping.isSet })
                if result.inserted > 0 || result.cancellations > 0 { dispatcher.wake() }
                await nudge.wait(upTo: current.current.configuration.spool.rescanInterval.value)
            }
        } onGracefulShutdown: {
            stopping.set()
            nudge.signal()
        }
    }
}
