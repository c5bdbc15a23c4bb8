/// Validation of the addr-spec part of an email address (RFC 5322 dot-atom form, which is what
/// real-world mailboxes use; quoted local parts and address literals are refused).
public enum EmailAddress {
    /// RFC 5322 atext, by ASCII code (a table: hashing each byte into a set showed in the intake profile).
    private static let atext: [Bool] = {
        var table = [Bool](repeating: false, count: 256)
        for byte in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~".utf8 { table[Int(byte)] = true }
        return table
    }()

    /// Why `address` is not acceptable, or nil when it is.
    public static func problem(_ address: String) -> String? {
        if address.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "contains control characters (CR/LF are refused)"
        }
        guard address.utf8.count <= 254 else { return "longer than 254 octets" }
        // Split on the octets: '@' and '.' are ASCII, and anything but ASCII is refused below.
        let (at, dot, hyphen) = (UInt8(ascii: "@"), UInt8(ascii: "."), UInt8(ascii: "-"))
        let parts = address.utf8.split(separator: at, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return "must contain exactly one '@'" }
        let (local, domain) = (parts[0], parts[1])
        guard !local.isEmpty, local.count <= 64 else { return "local part is empty or longer than 64 octets" }
        for atom in local.split(separator: dot, omittingEmptySubsequences: false) {
            guard !atom.isEmpty, atom.allSatisfy({ atext[Int($0)] }) else {
                return "local part '\(Substring(local))' is not a dot-atom of ASCII characters"
            }
        }
        let labels = domain.split(separator: dot, omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return "domain '\(Substring(domain))' has no dot" }
        for label in labels {
            guard !label.isEmpty, label.count <= 63,
                label.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == hyphen }),
                label.first != hyphen, label.last != hyphen
            else { return "domain '\(Substring(domain))' is not a valid host name (use its A-label form for IDNs)" }
        }
        return nil
    }

    public static func isValid(_ address: String) -> Bool { problem(address) == nil }

    /// The domain part, lowercased.
    public static func domain(of address: String) -> String {
        String(address.split(separator: "@").last ?? "").lowercased()
    }
}
