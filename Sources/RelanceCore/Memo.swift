import Synchronization

/// A thread-safe memo of values that are costly to build and few in number (a formatter per
/// locale and currency, a resolved template per stage and locale). Bounded: when it holds
/// `limit` entries it starts over, so a stream of distinct keys cannot grow it without end.
public final class Memo<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let entries = Mutex<[Key: Value]>([:])
    private let limit: Int

    public init(limit: Int = 1024) { self.limit = limit }

    /// The value for `key`, built by `make` the first time (outside the lock: two threads may
    /// both build it; either result is kept, as they are equal).
    public func value(_ key: Key, _ make: (Key) throws -> Value) rethrows -> Value {
        if let value = entries.withLock({ $0[key] }) { return value }
        let value = try make(key)
        entries.withLock {
            if $0.count >= limit { $0.removeAll(keepingCapacity: true) }
            $0[key] = value
        }
        return value
    }
}
