import Foundation
import RelanceConfig
import RelanceCore
import ServiceLifecycle

/// The loop of a service that runs on a configured schedule (the report, the risk score's refit):
/// each run comes at the schedule's instants in `defaults.timezone`, as of that instant; a run
/// missed while the daemon was down is not caught up; the schedule in force is read again after
/// every run and every wake-up (a reload's schedule counts from then).
enum ScheduledRuns {
    static func run(
        current: CurrentSnapshot, clock: @Sendable () -> Date, schedule: (RelanceConfiguration) -> Schedule,
        _ body: (_ due: Date, _ configuration: RelanceConfiguration) async -> Void
    ) async {
        var last = clock()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let configuration = current.current.configuration
            let zone = TimeZone(identifier: configuration.defaults.timezone) ?? .gmt
            if let due = schedule(configuration).previous(atOrBefore: clock(), in: zone), due > last {
                last = clock()
                await body(due, configuration)
            }
            let pause = schedule(configuration).wait(from: clock(), in: zone)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
        }
    }
}
