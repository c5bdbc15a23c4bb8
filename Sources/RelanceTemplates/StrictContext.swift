import Mustache

/// Records every name lookup made while rendering, so that a lookup that resolved to nothing — which
/// swift-mustache 2.1.1 renders as an empty string — becomes an error instead.
final class LookupLog {
    struct Miss {
        let frame: ObjectIdentifier
        /// Where the frame sits (`vars`, `invoices`), empty for the root.
        let path: String
        let name: String
    }

    /// Names that no frame could resolve, in order.
    private(set) var missing: [String] = []
    /// A miss in an inner frame, real unless the very next lookup retries the name in another frame.
    private var pending: Miss?

    /// swift-mustache walks the context stack from the innermost frame to the root, so a miss in an
    /// inner frame is normal when the next lookup (same name, next frame down) finds it. A miss is
    /// real when the root missed, or when nothing retried the name (the second part of a dotted
    /// name such as `debtor.nmae`). Only misses are kept: a hit costs a comparison.
    func record(frame: ObjectIdentifier, isRoot: Bool, path: String, name: String, found: Bool) {
        if let miss = pending {
            pending = nil
            if !(name == miss.name && frame != miss.frame) { add(miss) }
        }
        guard !found else { return }
        let miss = Miss(frame: frame, path: path, name: name)
        if isRoot { add(miss) } else { pending = miss }
    }

    private func add(_ miss: Miss) {
        let full = miss.path.isEmpty ? miss.name : miss.path + "." + miss.name
        if !missing.contains(full) { missing.append(full) }
    }

    /// The names missed since the last `reset`.
    func unresolvedNames() -> [String] {
        if let miss = pending {
            pending = nil
            add(miss)
        }
        return missing
    }

    /// Starts over for the next template rendered with the same frames.
    func reset() {
        missing.removeAll()
        pending = nil
    }
}

/// A frame of template values that logs its lookups (see `LookupLog`). Values come from a lookup
/// function, asked once per name when a template needs it; nested dictionaries become frames,
/// arrays of dictionaries arrays of frames.
///
/// A struct around its storage: swift-mustache casts every frame of the context stack to two
/// protocols per lookup, and a failed cast of a class instance walks the conformance cache for
/// its class and superclasses (9 % of rendering an email); a struct's is one lookup.
struct Frame: MustacheParent {
    final class Storage {
        let lookup: (String) -> Any?
        /// What was asked for already, wrapped.
        var asked: [String: Any] = [:]
        let isRoot: Bool
        let path: String
        let log: LookupLog

        init(isRoot: Bool, path: String, log: LookupLog, lookup: @escaping (String) -> Any?) {
            self.lookup = lookup
            self.isRoot = isRoot
            self.path = path
            self.log = log
        }
    }

    let storage: Storage

    init(isRoot: Bool, path: String, log: LookupLog, lookup: @escaping (String) -> Any?) {
        storage = Storage(isRoot: isRoot, path: path, log: log, lookup: lookup)
    }

    func child(named name: String) -> Any? {
        let s = storage
        var value = s.asked[name]
        if value == nil, let raw = s.lookup(name) {
            let wrapped = Self.wrap(raw, path: s.isRoot ? name : s.path + "." + name, log: s.log)
            s.asked[name] = wrapped
            value = wrapped
        }
        s.log.record(frame: ObjectIdentifier(s), isRoot: s.isRoot, path: s.path, name: name, found: value != nil)
        return value
    }

    /// The root frame of a message's context, computed as the templates ask.
    static func root(_ source: TemplateContext.Source, log: LookupLog) -> Frame {
        Frame(isRoot: true, path: "", log: log, lookup: source.value)
    }

    private static func wrap(_ value: Any, path: String, log: LookupLog) -> Any {
        func frame(_ dict: [String: Any]) -> Frame { Frame(isRoot: false, path: path, log: log) { dict[$0] } }
        switch value {
        case let dict as [String: Any]: return frame(dict)
        case let array as [[String: Any]]: return array.map(frame)
        default: return value
        }
    }
}
