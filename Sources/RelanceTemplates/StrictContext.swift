import Mustache

/// Records every name lookup made while rendering, so that a lookup that resolved to nothing — which
/// swift-mustache 2.1.1 renders as an empty string — becomes an error instead.
final class LookupLog {
    struct Event {
        let frame: ObjectIdentifier
        let isRoot: Bool
        let name: String
        let found: Bool
    }

    var events: [Event] = []

    /// Names that no frame could resolve.
    ///
    /// swift-mustache walks the context stack from the innermost frame to the root, so a miss in an
    /// inner frame is normal when the next lookup (same name, next frame down) finds it. A miss is
    /// real when the root missed, or when nothing retried the name (the second part of a dotted
    /// name such as `debtor.nmae`).
    func unresolvedNames() -> [String] {
        var missing: [String] = []
        for (i, event) in events.enumerated() where !event.found {
            let retried = i + 1 < events.count && events[i + 1].name == event.name && events[i + 1].frame != event.frame
            if event.isRoot || !retried, !missing.contains(event.name) { missing.append(event.name) }
        }
        return missing
    }
}

/// A map of template values that logs its lookups (see `LookupLog`).
final class Frame: MustacheParent {
    let values: [String: Any]
    let isRoot: Bool
    let log: LookupLog

    init(_ values: [String: Any], isRoot: Bool, log: LookupLog) {
        self.values = values
        self.isRoot = isRoot
        self.log = log
    }

    func child(named name: String) -> Any? {
        let value = values[name]
        log.events.append(.init(frame: ObjectIdentifier(self), isRoot: isRoot, name: name, found: value != nil))
        return value
    }

    /// Builds the frame tree of `values`: nested dictionaries become frames, arrays of dictionaries
    /// arrays of frames; anything optional must already have been replaced by a concrete value.
    static func tree(_ values: [String: Any], log: LookupLog) -> Frame {
        Frame(values.mapValues { wrap($0, log: log) }, isRoot: true, log: log)
    }

    private static func wrap(_ value: Any, log: LookupLog) -> Any {
        switch value {
        case let dict as [String: Any]: return Frame(dict.mapValues { wrap($0, log: log) }, isRoot: false, log: log)
        case let array as [[String: Any]]: return array.map { Frame($0.mapValues { wrap($0, log: log) }, isRoot: false, log: log) }
        default: return value
        }
    }
}
