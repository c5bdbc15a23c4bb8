import Foundation
import Logging
import RelanceBounces
import RelanceDispatch
import RelanceSpool
import RelanceStore
import ServiceLifecycle

/// Reads the bounces a Maildir receives (`email.bounce.maildir`) as they arrive (inotify on
/// `new/`) and at every `spool.rescan_interval`; wakes the dispatcher when a bounce started a
/// fallback. The configuration in force is read again at every pass (a reload may add or move it).
struct BounceMaildirService: Service {
    let ledger: any LedgerStore
    let current: CurrentSnapshot
    let dispatcher: Dispatcher
    let logger: Logger
    let clock: @Sendable () -> Date

    func run() async throws {
        let nudge = Nudge()
        var watcher: SpoolWatcher?
        var watched: String?
        var reportedMissing: String?
        defer { watcher?.stop() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let configuration = current.current.configuration
            if let bounce = configuration.email.bounce, let maildir = bounce.maildir {
                if watched != maildir {
                    watcher?.stop()
                    watcher = nil
                    watched = nil
                }
                // The MTA creates the Maildir (as the user it delivers as): until then, nothing to watch.
                if watched == nil, FileManager.default.fileExists(atPath: maildir + "/new") {
                    let logger = self.logger
                    watcher = SpoolWatcher(
                        directory: maildir + "/new", onChange: { nudge.signal() },
                        onError: { logger.warning("bounce Maildir watch unavailable: relying on the periodic rescan", metadata: ["error": "\($0)"]) })
                    watcher?.start()
                    watched = maildir
                }
                guard FileManager.default.fileExists(atPath: maildir + "/new") else {
                    if reportedMissing != maildir {
                        logger.notice("the bounce Maildir does not exist yet: waiting for the MTA to create it", metadata: ["relance.path": "\(maildir)"])
                        reportedMissing = maildir
                    }
                    await pause(configuration.spool.rescanInterval.value, nudge)
                    continue
                }
                let intake = BounceIntake(verp: VERP(domain: bounce.domain, secret: bounce.secret), rules: bounce.rules, ledger: ledger, logger: logger)
                let pass = await MaildirBounces(directory: maildir, intake: intake).pass(now: clock)
                if pass.applied > 0 { dispatcher.wake() }
            }
            await pause(configuration.spool.rescanInterval.value, nudge)
        }
    }

    func pause(_ duration: Duration, _ nudge: Nudge) async {
        await withGracefulShutdownHandler {
            await nudge.wait(upTo: duration)
        } onGracefulShutdown: {
            nudge.signal()
        }
    }

}
