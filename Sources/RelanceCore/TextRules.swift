import Foundation

/// Rules for any text that may reach a message header or body.
public enum TextRules {
    /// Why `text` is refused, or nil. Control characters (CR and LF above all: header injection),
    /// C1 controls, line/paragraph separators and bidi overrides are refused everywhere.
    public static func problem(_ text: String, maxLength: Int) -> String? {
        if let bad = text.unicodeScalars.first(where: isForbidden) {
            let code = String(format: "U+%04X", bad.value)
            let what = bad == "\r" || bad == "\n" ? "a line break (\(code))" : "a control character (\(code))"
            return "contains \(what), refused in values that can reach message headers"
        }
        // Counting characters (grapheme clusters) costs; no text has more of them than bytes.
        if text.utf8.count > maxLength && text.count > maxLength { return "is longer than \(maxLength) characters" }
        return nil
    }

    static func isForbidden(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}

/// Locale tags accepted in records.
public enum LocaleRules {
    public static func isKnown(_ tag: String) -> Bool {
        // Every record names one of a few tags: the answer is remembered.
        known.value(tag) { tag in isKnownTag(tag) }
    }

    static let known = Memo<String, Bool>(limit: 1024)

    static func isKnownTag(_ tag: String) -> Bool {
        let parts = tag.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return false }
        let language = String(parts[0])
        guard language.count == 2 || language.count == 3, language == language.lowercased(), languages.contains(language) else { return false }
        if parts.count == 2 {
            let region = String(parts[1])
            return region.count == 2 && region == region.uppercased() && regions.contains(region)
        }
        return true
    }

    /// ISO 639 language codes and ISO 3166 regions, listed once (asked for every record).
    static let languages = Set(Locale.LanguageCode.isoLanguageCodes.map(\.identifier))
    static let regions = Set(Locale.Region.isoRegions.map(\.identifier))

    public static func region(of tag: String) -> String? {
        let parts = tag.split(separator: "-")
        return parts.count == 2 ? String(parts[1]) : nil
    }

    /// The lookup chain: `fr-FR → fr → fallback` (without repeats).
    public static func chain(_ tag: String, fallback: String) -> [String] {
        var chain: [String] = [tag]
        if let language = tag.split(separator: "-").first.map(String.init), language != tag { chain.append(language) }
        for extra in [fallback] + (fallback.split(separator: "-").first.map { [String($0)] } ?? []) where !chain.contains(extra) {
            chain.append(extra)
        }
        return chain
    }
}

extension String {
    /// The text with control characters made visible, for error messages.
    public var debugQuoted: String {
        var out = ""
        for s in unicodeScalars {
            if TextRules.isForbidden(s) { out += String(format: "\\u{%X}", s.value) } else { out.unicodeScalars.append(s) }
        }
        return out.count > 80 ? String(out.prefix(80)) + "…" : out
    }
}
