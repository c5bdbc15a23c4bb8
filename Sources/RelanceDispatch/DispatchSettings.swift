import Foundation
import RelanceConfig
import RelanceCore

/// Everything the dispatcher takes from the configuration, built whole and swapped whole by a
/// reload: templates and creditor (the builder), the contact policy, the retry schedule, rates,
/// queue shares, breakers and the transports themselves. Each delivery works from one snapshot.
public struct DispatchSettings: Sendable {
    /// Bumped by every reload, so the dispatcher knows to reconfigure its state machine.
    public var generation: Int
    public var configuration: RelanceConfiguration
    public var builder: MessageBuilder
    public var policy: PolicyStep
    public var transports: Transports

    public init(generation: Int, components: Components, transports: Transports) {
        self.generation = generation
        self.configuration = components.configuration
        self.builder = components.builder
        self.policy = PolicyStep(components.configuration)
        self.transports = transports
    }

    public var retry: RetrySchedule { configuration.delivery.retry.schedule }

    /// Flow control for the state machine. With a secondary relay or gateway, the failover's own
    /// breaker reroutes instead of pausing the channel, so the channel has none.
    public func flow(onePass: Bool) -> DispatchStateMachine.Configuration {
        let breaker = configuration.delivery.breaker.breaker
        var breakers: [Channel: CircuitBreaker] = [:]
        if !(configuration.email.transport == .smtp && configuration.email.secondarySMTP != nil) { breakers[.email] = breaker }
        if configuration.sms.secondary == nil { breakers[.sms] = breaker }
        return DispatchStateMachine.Configuration(
            concurrency: configuration.delivery.concurrency, shares: configuration.queues.mapValues(\.share),
            rates: [.email: configuration.email.rate, .sms: configuration.sms.rate], breakers: breakers, onePass: onePass)
    }
}
