import Foundation
import Logging
import RelanceConfig
import RelanceCore
import RelanceDispatch
import RelanceSpool
import ServiceLifecycle
import UnixSignals

/// SIGHUP: re-reads and checks the configuration, the templates, the transports and the webhook
/// secrets, off the cooperative pool, then puts them in force whole; an invalid set is refused
/// with a log line and the running one stays. Keys that need a restart keep their running value
/// and are named in a warning.
struct ReloadService: Service {
    let configPath: String?
    let current: CurrentSnapshot
    let dispatcher: Dispatcher
    let notifier: SystemdNotifier
    let logger: Logger
    let clock: @Sendable () -> Date

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        logger.info("SIGHUP reloads the configuration and templates")
        await withGracefulShutdownHandler {
            for await _ in signals.cancelOnGracefulShutdown() { await reload() }
        } onGracefulShutdown: {
        }
    }

    func reload() async {
        notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds())")
        defer { notifier.notify("READY=1") }
        let running = current.current
        let (configPath, clock) = (self.configPath, self.clock)
        let built: Result<(Snapshot, [String]), any Error> = await offPool {
            Result {
                var next = try ResolvedConfiguration.resolve(configPath: configPath).configuration
                let restartOnly = Snapshot.restartOnly(running: running.configuration, next: &next)
                return (try Snapshot.build(next, generation: running.generation + 1, now: clock()), restartOnly)
            }
        }
        switch built {
        case .failure(let error):
            logger.error("reload refused: the new configuration or templates are invalid; the running ones stay in force", metadata: ["error": "\(error)"])
        case .success(let (snapshot, restartOnly)):
            current.replace(snapshot)
            dispatcher.wake()
            LogLevelBox.shared.level = snapshot.configuration.log.level.loggerLevel
            Daemon.warnAboutInsecureSettings(snapshot.configuration, logger: logger)
            if !restartOnly.isEmpty {
                logger.warning("reloaded; these changes take effect at the next restart", metadata: ["relance.keys": "\(restartOnly.joined(separator: ","))"])
            }
            logger.notice(
                "reloaded configuration, templates, transports and webhook secrets",
                metadata: ["relance.templates": "\(snapshot.configuration.templates.path)", "relance.generation": "\(snapshot.generation)"])
        }
    }
}

extension RelanceConfiguration.Log.Level {
    public var loggerLevel: Logger.Level { Logger.Level(rawValue: rawValue) ?? .info }
}
