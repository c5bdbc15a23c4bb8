/// "Did you mean …?" for a misspelt name: the known name closest by edit distance, when it is close.
public enum Suggestion {
    public static func closest(to name: String, in candidates: some Sequence<String>) -> String? {
        let word = Array(name.lowercased().unicodeScalars)
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let d = distance(word, Array(candidate.lowercased().unicodeScalars))
            if d < (best?.distance ?? .max) || (d == best?.distance && candidate < (best?.name ?? "")) { best = (candidate, d) }
        }
        guard let best, best.distance <= max(2, word.count / 4) else { return nil }
        return best.name
    }

    /// Levenshtein distance.
    static func distance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
