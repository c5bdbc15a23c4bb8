import Mustache

/// HTML escaping for variables in HTML templates, by octets: swift-mustache's own escaper looks
/// each grapheme cluster up in a dictionary (a hash per character of every value), which was most
/// of the cost of escaping an email's values. The same five characters are replaced, with the same
/// entities; a value with none of them is returned as it is. Unlike a lookup by grapheme cluster,
/// a `<` that a combining mark follows is escaped too.
///
/// Templates select it with the pragma `{{% CONTENT_TYPE: RELANCE_HTML}}`, which `TemplateSet`
/// puts at the top of every HTML template and partial (a partial starts in swift-mustache's HTML
/// mode again).
struct HTMLEscaping: MustacheContentType {
    static let name = "RELANCE_HTML"

    /// Registers the content type with swift-mustache (once, before the first template is parsed:
    /// the pragma is resolved at parse time).
    static let registered: Void = MustacheContentTypes.register(HTMLEscaping(), named: name)

    func escapeText(_ text: String) -> String { Self.escape(text) }

    static func escape(_ text: String) -> String {
        guard text.utf8.contains(where: { entity($0) != nil }) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 16)
        for byte in text.utf8 {
            if let entity = entity(byte) {
                out.append(contentsOf: UnsafeBufferPointer(start: entity.utf8Start, count: entity.utf8CodeUnitCount))
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// What one octet becomes, if it must be escaped.
    private static func entity(_ byte: UInt8) -> StaticString? {
        switch byte {
        case UInt8(ascii: "<"): "&lt;"
        case UInt8(ascii: ">"): "&gt;"
        case UInt8(ascii: "&"): "&amp;"
        case UInt8(ascii: "\""): "&quot;"
        case UInt8(ascii: "'"): "&#39;"
        default: nil
        }
    }
}
