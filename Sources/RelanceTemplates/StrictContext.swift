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
        let value = value(named: name)
        let s = storage
        s.log.record(frame: ObjectIdentifier(s), isRoot: s.isRoot, path: s.path, name: name, found: value != nil)
        return value
    }

    /// The value of `name` in this frame (a frame for a dictionary, frames for a list of them),
    /// without logging the lookup.
    func value(named name: String) -> Any? {
        let s = storage
        if let value = s.asked[name] { return value }
        guard let raw = s.lookup(name) else { return nil }
        let wrapped = Self.wrap(raw, path: s.isRoot ? name : s.path + "." + name, log: s.log)
        s.asked[name] = wrapped
        return wrapped
    }

    /// The value at `path` from this frame: names of frames and positions in lists, as
    /// `RenderCache` recorded them. Nil when something on the way is not there.
    func resolve(_ path: [RenderCache.PathElement]) -> Any? {
        var current: Any = self
        for element in path {
            switch (element, current) {
            case (.name(let name), let frame as Frame):
                guard let value = frame.value(named: name) else { return nil }
                current = value
            case (.index(let i), let list as [Frame]) where list.indices.contains(i):
                current = list[i]
            default:
                return nil
            }
        }
        return current
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
