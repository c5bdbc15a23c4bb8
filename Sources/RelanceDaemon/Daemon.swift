import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import RelanceConfig
import RelanceCore
import RelanceDispatch
import RelanceHTTP
import RelancePostgres
import RelanceSpool
import RelanceStore
import ServiceLifecycle
import Synchronization

/// `relance serve`: intake, dispatch, the webhook server, retention, systemd notification and
/// reload as services of one `ServiceGroup`, or one pass (`--once`).
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
        let clock = self.clock
        let snapshot = try await offPool { try Snapshot.build(configuration, generation: 0, now: clock()) }
        Self.warnAboutInsecureSettings(configuration, logger: logger)
        let current = CurrentSnapshot(snapshot)
        let layout = snapshot.components.layout
        try layout.create()
        let store = try await OpenedStore.open(configuration, logger: logger)
        if store.lease != nil {
            // Which node answers a scrape (the cluster's figures are the same at every node).
            Gauge(label: "relance_node_info", dimensions: [("node", configuration.store.node)]).record(1)
        }
        let ledger = store.ledger
        let lock = store.lock
        // In doubt first; with `in_doubt: resend`, resent after asking the provider where it can be asked.
        let inDoubt = try await ledger.recoverInDoubt(resend: false, now: clock())
        for key in inDoubt {
            logger.warning(
                "delivery was in flight when the daemon stopped: in doubt",
                metadata: [
                    "relance.reminder.id": "\(key.reminderID)", "relance.delivery.channel": "\(key.channel.rawValue)",
                    "relance.in_doubt": "\(configuration.delivery.inDoubt.rawValue)",
                ])
        }
        if configuration.delivery.inDoubt == .resend && !inDoubt.isEmpty {
            await InDoubtCheck.settle(inDoubt, ledger: ledger, clients: (try? Reconciler.clients(configuration)) ?? [:], logger: logger, clock: clock)
        }
        let intake = Intake(layout: layout, settings: { current.current.intake }, ledger: ledger, logger: logger, clock: clock)
        let dispatcher = Dispatcher(ledger: ledger, settings: { current.current.dispatch }, logger: logger, clock: clock)
        _ = await intake.recover()
        // Receivables waiting in spool/receivables/ are in the ledger before a caught-up plan run.
        _ = await intake.receivablesPass()

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
            await store.close()
            return
        }

        let stopping = StopFlag()
        let health = ServiceHealth()
        health.register(["intake", "dispatcher"] + (configuration.webhooks.listen.isEmpty ? [] : ["webhooks"]))
        let notifier = SystemdNotifier()
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: DispatchService(dispatcher: dispatcher, stopping: stopping, health: health, current: current, logger: logger)),
            // Its own stop flag: the group stops the intake before the dispatcher, and a dispatcher
            // that stopped with it would finish before the group asked it to ("finished unexpectedly",
            // exit 1: seen under load in CancellationRaceTests).
            .init(service: IntakeService(intake: intake, dispatcher: dispatcher, current: current, stopping: StopFlag(), health: health, logger: logger)),
        ]
        if let server = webServer(ledger: ledger, current: current, health: health, layout: layout) { services.append(.init(service: server)) }
        if configuration.retention.daily {
            services.append(.init(service: RetentionService(ledger: ledger, current: current, logger: logger, clock: clock)))
        }
        services.append(.init(service: PlanService(ledger: ledger, current: current, dispatcher: dispatcher, logger: logger, clock: clock)))
        services.append(.init(service: ReportService(ledger: ledger, current: current, logger: logger, clock: clock)))
        services.append(.init(service: BounceMaildirService(ledger: ledger, current: current, dispatcher: dispatcher, logger: logger, clock: clock)))
        services.append(.init(service: ScoreService(ledger: ledger, current: current, logger: logger, clock: clock)))
        services.append(.init(service: ReconcileService(ledger: ledger, current: current, logger: logger, clock: clock)))
        services.append(.init(service: BounceIMAPService(ledger: ledger, current: current, dispatcher: dispatcher, logger: logger, clock: clock)))
        services.append(.init(service: BusinessMetricsService(ledger: ledger, current: current, logger: logger, clock: clock)))
        if let lease = store.lease {
            // Several nodes: claims of a node that stopped or froze are rescued once their lease lapses.
            services.append(.init(service: RescueService(ledger: ledger, lease: lease, current: current, dispatcher: dispatcher, logger: logger, clock: clock)))
        }
        services.append(.init(service: NotifierService(notifier: notifier, health: health, ledger: ledger, dispatcher: dispatcher, logger: logger)))
        services.append(
            .init(
                service: ReloadService(
                    configPath: resolved.provenance.file, current: current, dispatcher: dispatcher, notifier: notifier, logger: logger, clock: clock)))
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        logger.info(
            "relance serve started",
            metadata: ["relance.spool": "\(configuration.spool.root)", "relance.ledger": "\(configuration.store.path)", "relance.pid": "\(getpid())"])
        try await group.run()
        logger.info("relance serve stopped", metadata: ["relance.sent": "\(dispatcher.totals.sent)"])
        withExtendedLifetime(lock) {}
        await store.close()
    }

    /// The Hummingbird application of the webhook server, or nil when `webhooks.listen` is empty.
    func webServer(ledger: any LedgerStore, current: CurrentSnapshot, health: ServiceHealth, layout: SpoolLayout) -> (any Service)? {
        let configuration = current.current.configuration
        guard !configuration.webhooks.listen.isEmpty, let (host, port) = configuration.webhooks.hostAndPort else { return nil }
        let routes = WebhookRoutes(
            ledger: ledger, settings: { current.current.webhooks }, health: health, registry: Self.metricsRegistry, spool: layout, logger: logger,
            clock: clock)
        let logger = self.logger
        return Application(
            router: routes.router(), configuration: .init(address: .hostname(host, port: port), serverName: "relance"),
            onServerRunning: { channel in
                health.set("webhooks", running: true)
                logger.notice("webhook server listening", metadata: ["relance.listen": "\(host):\(channel.localAddress?.port ?? port)"])
            }, logger: Logger(label: "relance.http", factory: { label in RelanceLogHandler(label: label, level: .warning) }))
    }

    /// Settings an operator chose knowingly but must not forget: said at every start and reload.
    public static func warnAboutInsecureSettings(_ configuration: RelanceConfiguration, logger: Logger) {
        if configuration.sms.providersInUse.contains(.vonage) && configuration.sms.vonage.insecureUnsigned && configuration.sms.vonage.signatureSecret.isEmpty {
            logger.warning(
                "sms.vonage.insecure_unsigned is true: unsigned Vonage receipts are accepted, so anyone who reaches /webhooks/vonage can forge a status; set sms.vonage.signature_secret"
            )
        }
    }
}

/// Set once graceful shutdown starts: stop claiming, finish what is in flight.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .relaxed) }
    var isSet: Bool { flag.load(ordering: .relaxed) }
}
