import Foundation
import Logging
import RelanceBounces
import RelanceConfig
import RelanceDispatch
import RelanceStore
import RelanceTransport
import ServiceLifecycle

/// Polls the IMAP mailbox of `email.bounce.imap` every `every`; wakes the dispatcher when a bounce
/// started a fallback. The configuration in force is read again at every poll (a reload may add,
/// change or remove it); a failing server is retried at the next poll, its error logged once until
/// it changes.
struct BounceIMAPService: Service {
    let ledger: any LedgerStore
    let current: CurrentSnapshot
    let dispatcher: Dispatcher
    let logger: Logger
    let clock: @Sendable () -> Date

    func run() async throws {
        var reader: (settings: String, bounces: IMAPBounces)?
        var lastError: String?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let configuration = current.current.configuration
            var pause = configuration.spool.rescanInterval.value
            if let bounce = configuration.email.bounce, let imap = bounce.imap {
                pause = imap.every.value
                let settings = "\(imap.url)|\(imap.username)|\(imap.password.hashValue)|\(imap.folder)|\(imap.processedFolder)|\(bounce.domain)|\(bounce.secret.hashValue)"
                do {
                    if reader?.settings != settings {
                        let mailbox = try IMAPMailbox(
                            .init(
                                url: imap.url, username: imap.username, password: imap.password, requireTLS: imap.starttls == .required,
                                caFile: imap.caFile))
                        let intake = BounceIntake(verp: VERP(domain: bounce.domain, secret: bounce.secret), rules: bounce.rules, ledger: ledger, logger: logger)
                        reader = (settings, IMAPBounces(mailbox: mailbox, folder: imap.folder, processedFolder: imap.processedFolder, intake: intake))
                    }
                    if let bounces = reader?.bounces {
                        let pass = try await bounces.pass(now: clock)
                        if pass.applied > 0 { dispatcher.wake() }
                        if pass.read > 0 {
                            logger.info("bounce mailbox read", metadata: ["relance.read": "\(pass.read)", "relance.moved": "\(pass.moved)"])
                        }
                    }
                    lastError = nil
                } catch {
                    let text = "\(error)"
                    if text != lastError {
                        logger.warning(
                            "cannot read the bounce mailbox; retrying at the next poll", metadata: ["relance.url": "\(imap.url)", "error": "\(text)"])
                        lastError = text
                    }
                    reader = nil  // a fresh connection next time
                }
            } else {
                reader = nil
            }
            let wait = pause
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
        }
    }
}
