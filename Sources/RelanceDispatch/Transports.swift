import Foundation
import RelanceCore
import Synchronization

/// The transports of each channel, behind one call that also says which transport was used
/// (a failover may have routed the message to the secondary).
public struct Transports: Sendable {
    public var emailName: String
    public var smsName: String
    public var sendEmail: @Sendable (_ from: String, _ to: String, _ data: Data) async -> (SendOutcome, via: String)
    public var sendSMS: @Sendable (_ message: SMSMessage, _ reminderID: String) async -> (SendOutcome, via: String)

    /// Fixed transports (no failover).
    public init(
        emailName: String, smsName: String, sendEmail: @escaping @Sendable (String, String, Data) async -> SendOutcome,
        sendSMS: @escaping @Sendable (SMSMessage, String) async -> SendOutcome
    ) {
        self.init(
            emailName: emailName, smsName: smsName, routedEmail: { (await sendEmail($0, $1, $2), emailName) }, routedSMS: { (await sendSMS($0, $1), smsName) })
    }

    public init(
        emailName: String, smsName: String, routedEmail: @escaping @Sendable (String, String, Data) async -> (SendOutcome, via: String),
        routedSMS: @escaping @Sendable (SMSMessage, String) async -> (SendOutcome, via: String)
    ) {
        self.emailName = emailName
        self.smsName = smsName
        self.sendEmail = routedEmail
        self.sendSMS = routedSMS
    }
}

/// A primary transport and an optional secondary used while the primary is down: the primary's
/// own circuit breaker decides. The message that found the primary failing is retried later like
/// any transient failure (it may then go through the secondary): never sent twice at once.
public final class Failover<Message: Sendable>: Sendable {
    public typealias Send = @Sendable (Message) async -> SendOutcome
    let primary: (name: String, send: Send)
    let secondary: (name: String, send: Send)?
    let breaker: Mutex<CircuitBreaker>
    let clock: @Sendable () -> Date

    public init(primary: (String, Send), secondary: (String, Send)?, breaker: CircuitBreaker, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.primary = (primary.0, primary.1)
        self.secondary = secondary.map { ($0.0, $0.1) }
        self.breaker = Mutex(breaker)
        self.clock = clock
    }

    public func send(_ message: Message) async -> (SendOutcome, via: String) {
        guard let secondary else { return (await primary.send(message), primary.name) }
        let usePrimary = breaker.withLock { $0.allow(now: clock()).allowed }
        guard usePrimary else { return (await secondary.send(message), secondary.name) }
        let outcome = await primary.send(message)
        breaker.withLock { $0.record(success: !outcome.isProviderFailure, now: clock()) }
        return (outcome, primary.name)
    }
}

extension SendOutcome {
    /// Whether the provider itself failed (as opposed to answering, even with a refusal): what a
    /// circuit breaker counts.
    public var isProviderFailure: Bool {
        switch self {
        case .transient, .inDoubt: return true
        case .sent, .permanent: return false
        }
    }
}
