import Foundation
import Logging
import RelanceSpool
import RelanceStore
import ServiceLifecycle

/// The daily purge inside the daemon (`retention.daily`): a minute after start, then every 24 hours,
/// with the retention period in force at that time.
struct RetentionService: Service {
    let ledger: any LedgerStore
    let current: CurrentSnapshot
    let logger: Logger
    let clock: @Sendable () -> Date

    func run() async throws {
        var wait = Duration.seconds(60)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let pause = wait
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            do {
                _ = try await Retention(configuration: current.current.configuration, ledger: ledger, logger: logger).purge(now: clock())
            } catch {
                logger.error("retention purge failed; it runs again tomorrow", metadata: ["error": "\(error)"])
            }
            wait = .seconds(86400)
        }
    }
}
