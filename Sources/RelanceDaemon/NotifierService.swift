import Foundation
import Logging
import RelanceDispatch
import RelanceHTTP
import RelanceStore
import ServiceLifecycle

/// Tells systemd how the daemon is doing: READY=1 once every service runs, STATUS= with the
/// queue depth and send rate, WATCHDOG=1 at half of WatchdogSec while healthy, STOPPING=1.
struct NotifierService: Service {
    let notifier: SystemdNotifier
    let health: ServiceHealth
    let ledger: any LedgerStore
    let dispatcher: Dispatcher
    let logger: Logger

    func run() async throws {
        guard notifier.isEnabled else { return await waitForShutdown() }
        // READY=1 once intake, dispatch and the webhook server all run.
        while !health.stopped.isEmpty {
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
        // Ready as soon as every service runs; the status line (it counts the queue) follows.
        notifier.notify("READY=1")
        logger.info("told systemd READY=1")
        notifier.notify("STATUS=\(await status(rate: 0))")
        let tick = min(notifier.watchdogInterval ?? .seconds(5), .seconds(5))
        var lastSent = dispatcher.totals.sent
        var lastTime = ContinuousClock.now
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                try? await Task.sleep(for: tick)
                if Task.isShuttingDownGracefully { break }
                let now = ContinuousClock.now
                let sent = dispatcher.totals.sent
                let rate = Double(sent - lastSent) / max(0.001, (now - lastTime).seconds)
                (lastSent, lastTime) = (sent, now)
                var message = "STATUS=\(await status(rate: rate))"
                // The watchdog is fed only while every service runs.
                if notifier.watchdogInterval != nil && health.stopped.isEmpty { message += "\nWATCHDOG=1" }
                notifier.notify(message)
            }
        } onGracefulShutdown: {
            notifier.notify("STOPPING=1\nSTATUS=stopping: finishing in-flight sends")
        }
    }

    func status(rate: Double) async -> String {
        let pending = (try? await ledger.statusCounts())?.filter { $0.status == "pending" }.reduce(0) { $0 + $1.count } ?? 0
        return "\(pending) pending, \(dispatcher.totals.sent) sent since start, \(String(format: "%.1f", rate))/s"
    }

    func waitForShutdown() async {
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully { try? await Task.sleep(for: .milliseconds(200)) }
        } onGracefulShutdown: {
        }
    }
}
