import Foundation
import Testing
import WallTime

@Suite struct TimestampTests {
    @Test func millisecondsFormatAsISO8601UTC() {
        #expect(iso8601(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(iso8601(milliseconds: 1_763_899_200_123) == "2025-11-23T12:00:00.123Z")
        #expect(iso8601(milliseconds: 951_782_400_000) == "2000-02-29T00:00:00.000Z")
        #expect(iso8601(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for ms: Int64 in [1, 86_399_999, 4_102_444_800_000, 1_234_567_890_123] {
            #expect(iso8601(milliseconds: ms) == formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000)), "\(ms)")
        }
    }

    /// The 24 bytes written in place are what the field-by-field formatting wrote (kept here as
    /// the reference), from year 0 to past 9999 (where the general path takes over), at the
    /// edges of days, leap days and years, and for many values between.
    @Test func formattingInPlaceMatchesTheFieldByFieldReference() {
        // The field-by-field formatting this replaced, verbatim (proleptic Gregorian, as ISO 8601).
        func reference(_ milliseconds: Int64) -> String {
            let ms = Int(milliseconds)
            let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
            let msOfDay = ms - days * 86_400_000
            let z = days + 719_468
            let era = (z >= 0 ? z : z - 146_096) / 146_097
            let dayOfEra = z - era * 146_097
            let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
            let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
            let mp = (5 * dayOfYear + 2) / 153
            let day = dayOfYear - (153 * mp + 2) / 5 + 1
            let month = mp < 10 ? mp + 3 : mp - 9
            let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
            func pad(_ value: Int, _ width: Int) -> String {
                let text = String(value)
                return String(repeating: "0", count: max(0, width - text.count)) + text
            }
            return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(msOfDay / 3_600_000, 2)):\(pad(msOfDay / 60_000 % 60, 2)):"
                + "\(pad(msOfDay / 1000 % 60, 2)).\(pad(msOfDay % 1000, 3))Z"
        }
        let yearZero: Int64 = -62_167_219_200_000  // 0000-01-01T00:00:00.000Z
        let year10000: Int64 = 253_402_300_800_000  // 10000-01-01T00:00:00.000Z
        var values: [Int64] = [yearZero, yearZero + 1, year10000 - 1, year10000, year10000 + 86_400_001, 0, -1, 951_782_399_999, 951_868_800_000]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<20_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            values.append(yearZero + Int64(state >> 1) % (year10000 + 100 * 86_400_000 - yearZero))
        }
        for ms in values {
            #expect(iso8601(milliseconds: ms) == reference(ms), "\(ms)")
            if (yearZero..<year10000).contains(ms) { #expect(milliseconds(iso8601: iso8601(milliseconds: ms)) == ms, "\(ms)") }
        }
    }

    @Test func iso8601ParsesBackToMilliseconds() {
        for ms: Int64 in [0, 1, -1, 86_399_999, 951_782_400_000, 1_763_899_200_123, 4_102_444_800_000] {
            #expect(milliseconds(iso8601: iso8601(milliseconds: ms)) == ms, "\(ms)")
        }
        #expect(milliseconds(iso8601: "2026-11-23T12:00:00Z") == 1_795_435_200_000)
        for bad in [
            "", "2026-11-23", "2026-13-01T00:00:00.000Z", "2026-11-23T12:00:00.123+01:00", "2026-11-23 12:00:00.123Z", "20x6-11-23T12:00:00.123Z",
        ] {
            #expect(milliseconds(iso8601: bad) == nil, "\(bad)")
        }
    }
}
