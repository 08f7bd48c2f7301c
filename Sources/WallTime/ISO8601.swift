/// Milliseconds since the Unix epoch as ISO 8601 UTC with milliseconds (`2026-11-23T12:00:00.123Z`),
/// the form stored times take in messages and headers.
///
/// Written out by hand (days-from-civil, after Howard Hinnant) because it runs once per event on
/// the hot path and needs no calendar, locale or time zone.
public func iso8601(milliseconds: Int64) -> String {
    let time = CivilTime(milliseconds: milliseconds)
    // Years without four digits (before 0 or after 9999) are never on the hot path.
    guard (0...9999).contains(time.year) else { return time.interpolated }
    // The 24 bytes written in place: through string interpolation and a String per field,
    // formatting was a third of what serving the history (ReadAll) cost per event.
    return String(unsafeUninitializedCapacity: 24) { text in
        var offset = 0
        func field(_ value: Int, _ width: Int, then separator: UInt8) {
            var value = value
            for index in stride(from: offset + width - 1, through: offset, by: -1) {
                text[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
            text[offset + width] = separator
            offset += width + 1
        }
        field(time.year, 4, then: UInt8(ascii: "-"))
        field(time.month, 2, then: UInt8(ascii: "-"))
        field(time.day, 2, then: UInt8(ascii: "T"))
        field(time.hour, 2, then: UInt8(ascii: ":"))
        field(time.minute, 2, then: UInt8(ascii: ":"))
        field(time.second, 2, then: UInt8(ascii: "."))
        field(time.millisecond, 3, then: UInt8(ascii: "Z"))
        return offset
    }
}

/// An instant's calendar fields in UTC, proleptic Gregorian as ISO 8601 counts (civil-from-days,
/// after Howard Hinnant).
struct CivilTime {
    var year, month, day, hour, minute, second, millisecond: Int

    init(milliseconds: Int64) {
        let ms = Int(milliseconds)
        let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
        let msOfDay = ms - days * 86_400_000
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        (hour, minute, second, millisecond) = (msOfDay / 3_600_000, msOfDay / 60_000 % 60, msOfDay / 1000 % 60, msOfDay % 1000)
    }

    /// The text field by field, each padded with zeros: any year, at a String per field.
    var interpolated: String {
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(millisecond, 3))Z"
    }
}

/// Parses the form `iso8601(milliseconds:)` writes (`2026-11-23T12:00:00.123Z`, also without the
/// fraction) back to milliseconds since the Unix epoch; nil for anything else.
public func milliseconds(iso8601 text: String) -> Int64? {
    var text = text
    return text.withUTF8(milliseconds(iso8601UTF8:))
}

/// `milliseconds(iso8601:)` of the text's UTF-8, for a reader that has the bytes and no String.
public func milliseconds(iso8601UTF8 bytes: ArraySlice<UInt8>) -> Int64? {
    bytes.withUnsafeBufferPointer(milliseconds(iso8601UTF8:))
}

private func milliseconds(iso8601UTF8 bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
    guard bytes.count == 24 || bytes.count == 20, bytes.last == UInt8(ascii: "Z") else { return nil }
    func number(_ from: Int, _ count: Int) -> Int? {
        var value = 0
        for index in from..<(from + count) {
            let digit = Int(bytes[index]) - 48
            guard (0...9).contains(digit) else { return nil }
            value = value * 10 + digit
        }
        return value
    }
    guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"),
        bytes[16] == UInt8(ascii: ":"),
        let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
        let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
        (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
    else { return nil }
    var millis = 0
    if bytes.count == 24 {
        guard bytes[19] == UInt8(ascii: "."), let fraction = number(20, 3) else { return nil }
        millis = fraction
    }
    // days-from-civil (Howard Hinnant), the inverse of iso8601(milliseconds:).
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    let days = era * 146_097 + dayOfEra - 719_468
    return Int64(((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + Int64(millis)
}
