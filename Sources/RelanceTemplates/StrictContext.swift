import Mustache

/// Records every name lookup made while rendering, so that a lookup that resolved to nothing — which
/// swift-mustache 2.1.1 renders as an empty string — becomes an error instead.
final class LookupLog {
    struct Event {
        let frame: ObjectIdentifier
        let isRoot: Bool
        /// Where the frame sits (`vars`, `invoices`), empty for the root.
        let path: String
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
            let full = event.path.isEmpty ? event.name : event.path + "." + event.name
            if event.isRoot || !retried, !missing.contains(full) { missing.append(full) }
        }
        return missing
    }
}

/// A map of template values that logs its lookups (see `LookupLog`).
final class Frame: MustacheParent {
    let values: [String: Any]
    let isRoot: Bool
    let path: String
    let log: LookupLog

    init(_ values: [String: Any], isRoot: Bool, path: String, log: LookupLog) {
        self.values = values
        self.isRoot = isRoot
        self.path = path
        self.log = log
    }

    func child(named name: String) -> Any? {
        let value = values[name]
        log.events.append(.init(frame: ObjectIdentifier(self), isRoot: isRoot, path: path, name: name, found: value != nil))
        return value
    }

    /// Builds the frame tree of `values`: nested dictionaries become frames, arrays of dictionaries
    /// arrays of frames; anything optional must already have been replaced by a concrete value.
    static func tree(_ values: [String: Any], log: LookupLog) -> Frame {
        Frame(values.reduce(into: [:]) { $0[$1.key] = wrap($1.value, path: $1.key, log: log) }, isRoot: true, path: "", log: log)
    }

    private static func wrap(_ value: Any, path: String, log: LookupLog) -> Any {
        func frame(_ dict: [String: Any]) -> Frame {
            Frame(dict.reduce(into: [:]) { $0[$1.key] = wrap($1.value, path: path + "." + $1.key, log: log) }, isRoot: false, path: path, log: log)
        }
        switch value {
        case let dict as [String: Any]: return frame(dict)
        case let array as [[String: Any]]: return array.map(frame)
        default: return value
        }
    }
}
