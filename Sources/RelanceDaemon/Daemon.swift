import Foundation
import Logging
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

    public func serve(once: Bool) async throws {
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
        let intakeService = IntakeService(
            intake: intake, dispatcher: dispatcher, rescan: configuration.spool.rescanInterval.value, stopping: stopping, logger: logger)
        let dispatchService = DispatchService(dispatcher: dispatcher, stopping: stopping)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: dispatchService), .init(service: intakeService)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
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
    let logger: Logger

    func run() async throws {
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

    func run() async throws {
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
