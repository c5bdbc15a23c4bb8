import Foundation
import Mustache
import Synchronization

/// Renders a template once per *shape* and fills the text of each message into it.
///
/// What swift-mustache does with a message depends only on what each of its lookups returns: which
/// names exist, the booleans, the lengths of the lists, and the types of the values; the text of a
/// value only lands in the output (escaped or not). So a template is rendered once with every
/// text and number replaced by a marker (`\u{E000}s<n>S&\u{E001}`), which gives the output with
/// holes, and the lookups made on the way are recorded with what they returned. The next message
/// whose same lookups return the same things — same names, same booleans, same list lengths, text
/// where there was text and numbers where there were numbers — gets the holes filled with its own
/// values, escaped where the marker came out escaped (`&` became `&amp;`), without swift-mustache.
/// Rendering an email's three parts cost about 90 µs, most of it swift-mustache's dynamic casts
/// and name splitting per lookup; filling one, about 30.
///
/// Anything the filling could get wrong is left to swift-mustache:
/// - a text value that is empty, has a line break (swift-mustache indents a partial's lines by
///   looking at the output's last character) or a marker character is compared whole, not filled;
/// - a marker that comes out changed (a transform such as `uppercased(name)`), a number whose
///   marker does not come out (`plusone(n)`, `even(n)`), a value of a type this does not know, or
///   a text with a marker character make the shape uncacheable (after a few, the template);
/// - templates whose author set their own content type, or whose text has a marker character, are
///   never cached (`TemplateSet` decides, at load).
/// A test renders random messages both ways and compares every octet.
final class RenderCache: Sendable {
    /// Entries kept per template and locale: one per shape seen lately.
    static let entriesPerKey = 32

    /// Marked renders that could not be cached, per template and locale, after which it is not
    /// tried again (a template that transforms its text, say: every render would be done twice).
    static let failuresBeforeGivingUp = 8

    private struct State {
        var entries: [TemplateSet.ResolvedKey: [Entry]] = [:]
        var failures: [TemplateSet.ResolvedKey: Int] = [:]
    }

    private let state = Mutex(State())
    /// Renders filled from a cached shape (for tests and the curious).
    let hits = Atomic<Int>(0)

    /// The output for `frames`, from a cached shape or rendered now (and cached); nil when it
    /// must be rendered by swift-mustache (an uncacheable shape).
    func render(_ key: TemplateSet.ResolvedKey, frames: Frame, log: LookupLog, template: MustacheTemplate, library: MustacheLibrary) -> String? {
        let (candidates, failures) = state.withLock { ($0.entries[key] ?? [], $0.failures[key] ?? 0) }
        for entry in candidates.reversed() {
            if let values = entry.match(frames) {
                hits.add(1, ordering: .relaxed)
                return entry.fill(values)
            }
        }
        guard failures < Self.failuresBeforeGivingUp else { return nil }
        let session = SymbolicSession()
        let output = template.render(SymbolicFrame(frame: frames, path: [], session: session), library: library)
        // A render with an unknown name is an error, left to swift-mustache's render to report; it
        // must not become a shape that later messages would fill without the error.
        guard log.unresolvedNames().isEmpty else { return nil }
        guard !session.poisoned, let entry = Entry(steps: session.steps, output: output, holes: session.values.count, numbers: session.numbers) else {
            state.withLock { $0.failures[key, default: 0] += 1 }
            return nil
        }
        state.withLock { state in
            var list = state.entries[key] ?? []
            if list.count >= Self.entriesPerKey { list.removeFirst() }
            list.append(entry)
            state.entries[key] = list
        }
        return entry.fill(session.values)
    }

    /// Where a lookup went: names from the root frame, and positions in lists.
    enum PathElement: Hashable, Sendable {
        case name(String)
        case index(Int)
    }

    /// What a lookup returned, as far as swift-mustache's choices go.
    enum Observed: Hashable, Sendable {
        case missing
        case frame
        case list(count: Int)
        /// Text filled in: hole number `n`.
        case hole(Int)
        /// A number filled in: hole number `n`.
        case number(Int)
        /// Text compared whole (empty, a line break, a marker character).
        case text(String)
        case bool(Bool)
    }

    struct Step: Sendable {
        var path: [PathElement]
        var observed: Observed
    }

    enum Segment: Sendable {
        case literal(String)
        case hole(Int, escaped: Bool)
    }

    /// A cached shape: the lookups that define it and the output with holes.
    final class Entry: Sendable {
        let steps: [Step]
        let segments: [Segment]
        let holes: Int

        /// Nil when the marked output cannot be read back (a marker came out changed or twisted),
        /// or when a number's marker does not appear in it: a number was used otherwise than
        /// written out (`plusone(n)`, `even(n)`: swift-mustache's number transforms, which a marker
        /// does not have, so their result differs), or a section over it that shows nothing of it.
        init?(steps: [Step], output: String, holes: Int, numbers: Set<Int>) {
            guard let segments = Self.segments(of: output, holes: holes) else { return nil }
            var unseen = numbers
            for case .hole(let n, _) in segments { unseen.remove(n) }
            guard unseen.isEmpty else { return nil }
            self.steps = steps
            self.segments = segments
            self.holes = holes
        }

        /// The text of each hole when every lookup of `frames` returns what this shape's did;
        /// nil otherwise.
        func match(_ frames: Frame) -> [String]? {
            var values = [String](repeating: "", count: holes)
            for step in steps {
                let value = frames.resolve(step.path)
                switch (step.observed, value) {
                case (.missing, nil): continue
                case (.frame, is Frame): continue
                case (.list(let count), let list as [Frame]) where list.count == count: continue
                case (.hole(let n), let text as String) where Marker.canFill(text): values[n] = text
                case (.number(let n), let number as Int): values[n] = String(number)
                case (.text(let expected), let text as String) where text == expected: continue
                case (.bool(let expected), let flag as Bool) where flag == expected: continue
                default: return nil
                }
            }
            return values
        }

        func fill(_ values: [String]) -> String {
            var out = ""
            for segment in segments {
                switch segment {
                case .literal(let text): out += text
                case .hole(let n, let escaped): out += escaped ? HTMLEscaping.escape(values[n]) : values[n]
                }
            }
            return out
        }

        /// Splits the marked output at its markers; nil when one is not exactly as written.
        static func segments(of output: String, holes: Int) -> [Segment]? {
            let bytes = Array(output.utf8)
            var segments: [Segment] = []
            var start = 0
            var i = 0
            while let (at, kind) = Marker.next(in: bytes, from: i) {
                // A closing character first: something split or reversed a marker.
                guard kind == Marker.openByte else { return nil }
                guard let (end, closing) = Marker.next(in: bytes, from: at + 3), closing == Marker.closeByte else { return nil }
                guard let (n, escaped) = Marker.parse(bytes[(at + 3)..<end]), n < holes else { return nil }
                if at > start { segments.append(.literal(String(decoding: bytes[start..<at], as: UTF8.self))) }
                segments.append(.hole(n, escaped: escaped))
                start = end + 3
                i = start
            }
            if start < bytes.count { segments.append(.literal(String(decoding: bytes[start...], as: UTF8.self))) }
            return segments
        }
    }

    /// The marker of hole `n`: private-use characters around a text that every transform of
    /// swift-mustache changes (letters of both cases) and that HTML escaping changes (`&`).
    enum Marker {
        static let open = "\u{E000}"
        static let close = "\u{E001}"
        /// Their UTF-8 forms: EE 80 80 and EE 80 81.
        static let openByte: UInt8 = 0x80
        static let closeByte: UInt8 = 0x81

        static func text(_ n: Int) -> String { "\(open)s\(n)S&\(close)" }

        /// The next marker character at or after `from`: its offset and last octet.
        static func next(in bytes: [UInt8], from: Int) -> (Int, UInt8)? {
            bytes.withUnsafeBufferPointer { bytes in
                (from..<bytes.count).first { isMarker(bytes, at: $0) }.map { ($0, bytes[$0 + 2]) }
            }
        }

        /// The hole number and whether it was escaped, from the octets between the two characters
        /// (`s<n>S&` or `s<n>S&amp;`).
        static func parse(_ inner: ArraySlice<UInt8>) -> (Int, Bool)? {
            let escaped: Bool
            var body = inner
            if body.count > 6, body.suffix(6).elementsEqual("S&amp;".utf8) {
                escaped = true
                body = body.dropLast(6)
            } else if body.count > 2, body.suffix(2).elementsEqual("S&".utf8) {
                escaped = false
                body = body.dropLast(2)
            } else {
                return nil
            }
            guard body.first == UInt8(ascii: "s"), body.count >= 2, body.count <= 10 else { return nil }
            let digits = body.dropFirst()
            // No sign, no leading zero: the digits of a number as `text(_:)` writes it.
            guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), digits.count == 1 || digits.first != 0x30 else { return nil }
            return (digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }, escaped)
        }

        /// Whether swift-mustache would treat `text` exactly as it treats a marker: not empty, no
        /// line break, no marker character.
        static func canFill(_ text: String) -> Bool {
            var text = text
            return text.withUTF8 { bytes in
                guard !bytes.isEmpty else { return false }
                for (i, byte) in bytes.enumerated() {
                    if byte == 0x0A || byte == 0x0D { return false }
                    if isMarker(bytes, at: i) { return false }
                }
                return true
            }
        }

        static func hasMarkerCharacter(_ text: String) -> Bool {
            var text = text
            return text.withUTF8 { bytes in bytes.indices.contains { isMarker(bytes, at: $0) } }
        }

        private static func isMarker(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> Bool {
            bytes[i] == 0xEE && i + 2 < bytes.count && bytes[i + 1] == 0x80 && (bytes[i + 2] == openByte || bytes[i + 2] == closeByte)
        }
    }
}

/// What one marked render saw: the lookups in order, the text of each hole.
final class SymbolicSession {
    var steps: [RenderCache.Step] = []
    var values: [String] = []
    /// The holes that are numbers.
    var numbers: Set<Int> = []
    /// A value of a type the cache does not know was returned: not cacheable.
    var poisoned = false

    /// A new hole for `value`; its number.
    func hole(_ value: String) -> Int {
        values.append(value)
        return values.count - 1
    }
}

/// A frame as the marked render sees it: each lookup goes to the message's frame (which logs
/// unknown names as usual), is recorded, and text comes back as its marker.
struct SymbolicFrame: MustacheParent {
    let frame: Frame
    let path: [RenderCache.PathElement]
    let session: SymbolicSession

    func child(named name: String) -> Any? {
        let path = path + [.name(name)]
        let value = frame.child(named: name)
        func record(_ observed: RenderCache.Observed) { session.steps.append(RenderCache.Step(path: path, observed: observed)) }
        switch value {
        case nil:
            record(.missing)
            return nil
        case let inner as Frame:
            record(.frame)
            return SymbolicFrame(frame: inner, path: path, session: session)
        case let list as [Frame]:
            record(.list(count: list.count))
            return list.enumerated().map { SymbolicFrame(frame: $1, path: path + [.index($0)], session: session) }
        case let text as String:
            guard RenderCache.Marker.canFill(text) else {
                // A marker character in a text that lands in the output as itself would be read
                // back as a hole.
                if RenderCache.Marker.hasMarkerCharacter(text) { session.poisoned = true }
                record(.text(text))
                return text
            }
            let n = session.hole(text)
            record(.hole(n))
            return RenderCache.Marker.text(n)
        case let flag as Bool:
            record(.bool(flag))
            return flag
        case let number as Int:
            let n = session.hole(String(number))
            session.numbers.insert(n)
            record(.number(n))
            return RenderCache.Marker.text(n)
        default:
            session.poisoned = true
            return value
        }
    }
}
