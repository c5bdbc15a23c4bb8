import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import RelanceCore
import RelanceStore
import RelanceTemplates
import RelanceTransport
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `relance serve`: intake and dispatch as services of one `ServiceGroup`, or one pass (`--once`).
public struct Daemon: Sendable {
    public var resolved: ResolvedConfiguration
    public var logger: Logger
    public var clock: @Sendable () -> Date

    public init(resolved: ResolvedConfiguration, logger: Logger, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.resolved = resolved
        self.logger = logger
        self.clock = clock
    }

    /// One Prometheus registry per process, behind swift-metrics.
    static let metricsRegistry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    public func serve(once: Bool) async throws {
        // Until the reload service traps it, a SIGHUP must not terminate the daemon.
        signal(SIGHUP, SIG_IGN)
        _ = Self.metricsRegistry
        let configuration = resolved.configuration
        let components = try Components(configuration)
        let problems = components.templateProblems(now: clock())
        guard problems.isEmpty else {
            throw UsageError("templates in \(configuration.templates.path) are not usable:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
        }
        try components.layout.create()
        let lock = try LedgerLock(ledgerPath: configuration.store.path)
        let ledger = try Ledger(path: configuration.store.path)
        let inDoubt = try await ledger.recoverInDoubt(resend: configuration.delivery.inDoubt == .resend, now: clock())
        for key in inDoubt {
            logger.warning(
                "delivery was in flight when the daemon stopped: in doubt",
                metadata: [
                    "relance.reminder.id": "\(key.reminderID)", "relance.delivery.channel": "\(key.channel.rawValue)",
                    "relance.in_doubt": "\(configuration.delivery.inDoubt.rawValue)",
                ])
        }
        let intake = Intake(layout: components.layout, parser: components.parser, ledger: ledger, configuration: configuration, logger: logger, clock: clock)
        let dispatcher = Dispatcher(
            ledger: ledger, builder: components.builder, transports: try components.makeTransports(), configuration: configuration, logger: logger, clock: clock
        )
        _ = await intake.recover()

        if once {
            let pass = await intake.pass()
            await dispatcher.run(untilIdle: true, shouldStop: { false })
            let totals = dispatcher.totals
            logger.info(
                "one pass done",
                metadata: [
                    "relance.files": "\(pass.files)", "relance.ingested": "\(pass.inserted)", "relance.quarantined": "\(pass.quarantined)",
                    "relance.sent": "\(totals.sent)", "relance.failed": "\(totals.failed)", "relance.retry_later": "\(totals.retried)",
                ])
            withExtendedLifetime(lock) {}
            return
        }

        let stopping = StopFlag()
        let health = ServiceHealth()
        health.register(["intake", "dispatcher"] + (configuration.webhooks.listen.isEmpty ? [] : ["webhooks"]))
        let notifier = SystemdNotifier()
        let intakeService = IntakeService(
            intake: intake, dispatcher: dispatcher, rescan: configuration.spool.rescanInterval.value, stopping: stopping, health: health, logger: logger)
        let dispatchService = DispatchService(
            dispatcher: dispatcher, stopping: stopping, health: health, drainTimeout: configuration.delivery.drainTimeout.value, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: dispatchService), .init(service: intakeService)]
        if let (host, port) = configuration.webhooks.hostAndPort, !configuration.webhooks.listen.isEmpty {
            let handlers = WebhookHandlers(
                ledger: ledger, configuration: configuration, health: health, registry: Self.metricsRegistry, layout: components.layout, logger: logger,
                clock: clock)
            let logger = self.logger
            let server = Application(
                router: handlers.router(), configuration: .init(address: .hostname(host, port: port), serverName: "relance"),
                onServerRunning: { channel in
                    health.set("webhooks", running: true)
                    logger.notice("webhook server listening", metadata: ["relance.listen": "\(host):\(channel.localAddress?.port ?? port)"])
                }, logger: Logger(label: "relance.http", factory: { label in RelanceLogHandler(label: label, level: .warning) }))
            services.append(.init(service: server))
        }
        if configuration.retention.daily {
            services.append(.init(service: RetentionService(retention: Retention(configuration: configuration, ledger: ledger, logger: logger), clock: clock)))
        }
        services.append(.init(service: NotifierService(notifier: notifier, health: health, ledger: ledger, dispatcher: dispatcher, logger: logger)))
        services.append(
            .init(
                service: ReloadService(
                    configPath: resolved.provenance.file, current: configuration, dispatcher: dispatcher, notifier: notifier, logger: logger, clock: clock)))
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        logger.info(
            "relance serve started",
            metadata: ["relance.spool": "\(configuration.spool.root)", "relance.ledger": "\(configuration.store.path)", "relance.pid": "\(getpid())"])
        try await group.run()
        logger.info("relance serve stopped", metadata: ["relance.sent": "\(dispatcher.totals.sent)"])
        withExtendedLifetime(lock) {}
    }
}

/// Set once graceful shutdown starts: stop claiming, finish what is in flight.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .relaxed) }
    var isSet: Bool { flag.load(ordering: .relaxed) }
}

struct IntakeService: Service {
    let intake: Intake
    let dispatcher: Dispatcher
    let rescan: Duration
    let stopping: StopFlag
    let health: ServiceHealth
    let logger: Logger

    func run() async throws {
        health.set("intake", running: true)
        defer { health.set("intake", running: false) }
        let nudge = Nudge()
        let watcher = SpoolWatcher(directory: intake.layout.incoming) { nudge.signal() }
        if watcher == nil { logger.warning("inotify unavailable: relying on the periodic rescan", metadata: ["relance.rescan": "\(rescan)"]) }
        watcher?.start()
        defer { watcher?.stop() }
        let cancelWatcher = SpoolWatcher(directory: intake.layout.cancel) { nudge.signal() }
        cancelWatcher?.start()
        defer { cancelWatcher?.stop() }
        let stopping = self.stopping
        await withGracefulShutdownHandler {
            while !stopping.isSet && !Task.isCancelled {
                let result = await intake.pass(shouldStop: { stopping.isSet })
                if result.inserted > 0 { dispatcher.wake() }
                await nudge.wait(upTo: rescan)
            }
        } onGracefulShutdown: {
            stopping.set()
            nudge.signal()
        }
    }
}

struct DispatchService: Service {
    let dispatcher: Dispatcher
    let stopping: StopFlag
    let health: ServiceHealth
    /// SIGTERM waits this long for in-flight sends.
    let drainTimeout: Duration
    let logger: Logger

    func run() async throws {
        health.set("dispatcher", running: true)
        defer { health.set("dispatcher", running: false) }
        let stopping = self.stopping
        let dispatcher = self.dispatcher
        let (drainTimeout, logger) = (self.drainTimeout, self.logger)
        await withGracefulShutdownHandler {
            await dispatcher.run(untilIdle: false, shouldStop: { stopping.isSet || Task.isCancelled })
        } onGracefulShutdown: {
            stopping.set()
            dispatcher.wake()
            // The drain bound: a transport call cannot be interrupted safely, so past the bound the
            // process exits and leaves those deliveries `sending`, in doubt at the next start.
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

/// Tells systemd how the daemon is doing: READY=1 once every service runs, STATUS= with the
/// queue depth and send rate, WATCHDOG=1 at half of WatchdogSec while healthy, STOPPING=1.
struct NotifierService: Service {
    let notifier: SystemdNotifier
    let health: ServiceHealth
    let ledger: Ledger
    let dispatcher: Dispatcher
    let logger: Logger

    func run() async throws {
        guard notifier.isEnabled else { return await waitForShutdown() }
        // READY=1 once intake, dispatch and the webhook server all run.
        while !health.stopped.isEmpty {
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
        notifier.notify("READY=1\nSTATUS=\(await status(rate: 0))")
        logger.info("told systemd READY=1")
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

/// SIGHUP: re-reads and validates the configuration and the templates, then puts them in force
/// whole; an invalid set is refused with a log line and the running one stays.
struct ReloadService: Service {
    let configPath: String?
    let current: RelanceConfiguration
    let dispatcher: Dispatcher
    let notifier: SystemdNotifier
    let logger: Logger
    let clock: @Sendable () -> Date

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        logger.info("SIGHUP reloads the configuration and templates")
        await withGracefulShutdownHandler {
            for await _ in signals.cancelOnGracefulShutdown() { reload() }
        } onGracefulShutdown: {
        }
    }

    func reload() {
        notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds())")
        defer { notifier.notify("READY=1") }
        let next: RelanceConfiguration
        let components: Components
        do {
            next = try ResolvedConfiguration.resolve(configPath: configPath).configuration
            components = try Components(next)
        } catch {
            logger.error("reload refused: the new configuration is invalid; the running one stays in force", metadata: ["error": "\(error)"])
            return
        }
        let problems = components.templateProblems(now: clock())
        guard problems.isEmpty else {
            logger.error(
                "reload refused: the new templates are invalid; the running ones stay in force",
                metadata: ["error": "\(problems.map(\.description).joined(separator: "; "))"])
            return
        }
        dispatcher.replaceBuilder(components.builder)
        dispatcher.replacePolicy(next)
        LogLevelBox.shared.level = Logger.Level(rawValue: next.log.level) ?? .info
        let restartOnly = [
            ("spool", "\(next.spool.root)" != current.spool.root), ("store.path", next.store.path != current.store.path),
            ("email.transport", next.email.transport != current.email.transport), ("email.smtp", next.email.smtp.url != current.email.smtp.url),
            ("sms.provider", next.sms.provider != current.sms.provider), ("webhooks.listen", next.webhooks.listen != current.webhooks.listen),
            ("delivery.concurrency", next.delivery.concurrency != current.delivery.concurrency),
        ].filter(\.1).map(\.0)
        if !restartOnly.isEmpty {
            logger.warning("reloaded; these changes take effect at the next restart", metadata: ["relance.keys": "\(restartOnly.joined(separator: ","))"])
        }
        logger.notice("reloaded configuration and templates", metadata: ["relance.templates": "\(next.templates.path)"])
    }
}
