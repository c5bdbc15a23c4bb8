import Synchronization

/// Whether each long-lived service is running, for `/healthz` and the systemd watchdog.
public final class ServiceHealth: Sendable {
    private let running = Mutex<[String: Bool]>([:])
    public init() {}
    public func set(_ name: String, running value: Bool) { running.withLock { $0[name] = value } }
    /// Names of registered services that are not running.
    public var stopped: [String] { running.withLock { $0.filter { !$0.value }.map(\.key).sorted() } }
    public func register(_ names: [String]) { running.withLock { for n in names where $0[n] == nil { $0[n] = false } } }
}
