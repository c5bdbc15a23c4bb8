import Foundation
import RelanceConfig
import RelanceCore
import RelanceDispatch
import RelanceHTTP
import RelanceSpool
import Synchronization

/// Everything a reload can change, built and checked whole before it is put in force: the
/// configuration, the templates, the message builder and policy, the transports (with their
/// credentials), the webhook verifiers (with their secrets) and the intake rules.
struct Snapshot: Sendable {
    var generation: Int
    var configuration: RelanceConfiguration
    var components: Components
    var dispatch: DispatchSettings
    var webhooks: WebhookSettings
    var intake: IntakeSettings

    /// Blocking (templates, outbox directories): call off the cooperative pool.
    static func build(_ configuration: RelanceConfiguration, generation: Int, now: Date) throws -> Snapshot {
        let components = try Components(configuration)
        let problems = components.templateProblems(now: now)
        guard problems.isEmpty else {
            throw UsageError("templates in \(configuration.templates.path) are not usable:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
        }
        let transports = try Transports.make(configuration)
        return Snapshot(
            generation: generation, configuration: configuration, components: components,
            dispatch: DispatchSettings(generation: generation, components: components, transports: transports), webhooks: WebhookSettings(configuration),
            intake: IntakeSettings(parser: components.parser, configuration: configuration))
    }

    /// Keys a running daemon cannot change (its ledger, its spool tree, its listening socket, its
    /// services): the running values are kept, and the changed keys named.
    static func restartOnly(running: RelanceConfiguration, next: inout RelanceConfiguration) -> [String] {
        var changed: [String] = []
        if next.store.path != running.store.path { changed.append("store.path") }
        if next.spool.root != running.spool.root { changed.append("spool.root") }
        if next.webhooks.listen != running.webhooks.listen { changed.append("webhooks.listen") }
        if next.retention.daily != running.retention.daily { changed.append("retention.daily") }
        next.store.path = running.store.path
        next.spool.root = running.spool.root
        next.webhooks.listen = running.webhooks.listen
        next.retention.daily = running.retention.daily
        return changed
    }
}

/// The snapshot in force, swapped whole.
final class CurrentSnapshot: Sendable {
    private let value: Mutex<Snapshot>
    init(_ snapshot: Snapshot) { value = Mutex(snapshot) }
    var current: Snapshot { value.withLock { $0 } }
    func replace(_ snapshot: Snapshot) { value.withLock { $0 = snapshot } }
}
