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
        health.register(["intake", "dispatcher"])
        let intakeService = IntakeService(
            intake: intake, dispatcher: dispatcher, rescan: configuration.spool.rescanInterval.value, stopping: stopping, health: health, logger: logger)
        let dispatchService = DispatchService(dispatcher: dispatcher, stopping: stopping, health: health)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: dispatchService), .init(service: intakeService)]
        if let (host, port) = configuration.webhooks.hostAndPort, !configuration.webhooks.listen.isEmpty {
            let handlers = WebhookHandlers(
                ledger: ledger, configuration: configuration, health: health, registry: Self.metricsRegistry, layout: components.layout, logger: logger,
                clock: clock)
            let logger = self.logger
            let server = Application(
                router: handlers.router(), configuration: .init(address: .hostname(host, port: port), serverName: "relance"),
                onServerRunning: { channel in
                    logger.notice("webhook server listening", metadata: ["relance.listen": "\(host):\(channel.localAddress?.port ?? port)"])
                }, logger: Logger(label: "relance.http", factory: { label in RelanceLogHandler(label: label, level: .warning) }))
            services.append(.init(service: server))
        }
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

    func run() async throws {
        health.set("dispatcher", running: true)
        defer { health.set("dispatcher", running: false) }
        let stopping = self.stopping
        let dispatcher = self.dispatcher
        await withGracefulShutdownHandler {
            await dispatcher.run(untilIdle: false, shouldStop: { stopping.isSet || Task.isCancelled })
        } onGracefulShutdown: {
            stopping.set()
            dispatcher.wake()
        }
    }
}
