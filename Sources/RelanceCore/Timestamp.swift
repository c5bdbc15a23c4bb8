import Foundation

/// RFC 3339 timestamps with an explicit offset: `2026-11-30T09:00:00+01:00`, `2026-11-30T08:00:00.250Z`.
///
/// Parsed and formatted by hand: only ASCII digits are digits (a record with Arabic-Indic or
/// full-width digits is invalid, never a crash), and no ICU formatter is built per call.
public enum Timestamp {
    /// The instant `text` names, or nil when it is not a full RFC 3339 date-time with seconds and
    /// an offset (`Z` or `±HH:MM`). Fractions of a second (1 to 9 digits) are kept.
    public static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    /// Reads the bytes of the text in place (index arithmetic, no slices of a string view).
    static func parse(bytes: UnsafeBufferPointer<UInt8>) -> Date? {
        guard bytes.count >= 20, bytes.count <= 35 else { return nil }
        var index = 0
        func number(_ width: Int) -> Int? {
            guard bytes.count - index >= width else { return nil }
            var value = 0
            for byte in bytes[index..<index + width] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            index += width
            return value
        }
        func expect(_ c: Unicode.Scalar) -> Bool {
            guard index < bytes.count, bytes[index] == UInt8(ascii: c) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2), expect("T"),
            let hour = number(2), expect(":"), let minute = number(2), expect(":"), let second = number(2),
            year >= 1900, (1...12).contains(month), day >= 1, day <= CivilDate.daysIn(month: month, year: year),
            hour < 24, minute < 60, second < 60
        else { return nil }
        var fraction = 0.0
        if expect(".") {
            var digits = 0
            var scale = 0.1
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                fraction += Double(bytes[index] - UInt8(ascii: "0")) * scale
                scale /= 10
                digits += 1
                index += 1
            }
            guard (1...9).contains(digits) else { return nil }
        }
        var offset = 0
        if expect("Z") {
            offset = 0
        } else {
            let sign: Int
            if expect("+") { sign = 1 } else if expect("-") { sign = -1 } else { return nil }
            guard let oh = number(2), expect(":"), let om = number(2), oh < 24, om < 60 else { return nil }
            offset = sign * (oh * 3600 + om * 60)
        }
        guard index == bytes.count else { return nil }
        let days = CivilDate(year: year, month: month, day: day).dayNumber
        let seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    /// `date` in UTC, to the second: `2026-11-30T08:00:00Z`.
    public static func format(_ date: Date) -> String { format(date, offsetSeconds: 0) }

    /// `date` with the offset `zone` has at that instant: `2026-11-30T09:00:00+01:00` (`Z` when the offset is zero).
    public static func format(_ date: Date, in zone: TimeZone) -> String {
        format(date, offsetSeconds: zone.secondsFromGMT(for: date))
    }

    /// `date` in UTC to the millisecond (`2026-11-30T09:00:00.250Z`): log lines.
    public static func formatMilliseconds(_ date: Date) -> String {
        // To the microsecond first: an instant given in milliseconds is not one below in binary.
        let microseconds = Int((date.timeIntervalSince1970 * 1_000_000).rounded())
        let (seconds, fraction) = microseconds.floorDivided(by: 1_000_000)
        return format(Date(timeIntervalSince1970: Double(seconds)), offsetSeconds: 0, milliseconds: fraction / 1000)
    }

    static func format(_ date: Date, offsetSeconds: Int, milliseconds: Int? = nil) -> String {
        let whole = Int(date.timeIntervalSince1970.rounded(.down)) + offsetSeconds
        let (days, secondOfDay) = whole.floorDivided(by: 86400)
        let civil = CivilDate(dayNumber: days)
        // Written as bytes: this runs for every record ingested.
        var text: [UInt8] = []
        text.reserveCapacity(25)
        /// `value` zero-padded to `width` digits (as `String(value)` when it does not fit).
        func digits(_ value: Int, _ width: Int) {
            var scale = 1
            for _ in 0..<width { scale *= 10 }
            guard value >= 0, value < scale else {
                text.append(contentsOf: String(value).utf8)
                return
            }
            while scale > 1 {
                scale /= 10
                text.append(UInt8(ascii: "0") + UInt8(value / scale % 10))
            }
        }
        digits(civil.year, 4)
        text.append(UInt8(ascii: "-"))
        digits(civil.month, 2)
        text.append(UInt8(ascii: "-"))
        digits(civil.day, 2)
        text.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, 2)
        text.append(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2)
        text.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2)
        if let milliseconds {
            text.append(UInt8(ascii: "."))
            digits(milliseconds, 3)
        }
        if offsetSeconds == 0 {
            text.append(UInt8(ascii: "Z"))
        } else {
            let magnitude = abs(offsetSeconds) / 60
            text.append(offsetSeconds < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            digits(magnitude / 60, 2)
            text.append(UInt8(ascii: ":"))
            digits(magnitude % 60, 2)
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension Int {
    /// Quotient and remainder rounded towards minus infinity (the remainder is never negative).
    func floorDivided(by divisor: Int) -> (quotient: Int, remainder: Int) {
        let q = self / divisor
        let r = self % divisor
        return r < 0 ? (q - 1, r + divisor) : (q, r)
    }
}
