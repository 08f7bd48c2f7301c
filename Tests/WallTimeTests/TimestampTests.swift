import Foundation
import Testing

@testable import WallTime

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

    /// The 24 bytes written in place are what formatting field by field writes (the general
    /// path, kept for years without four digits), from year 0 to past 9999, at the edges of days,
    /// leap days and years, and for many values between.
    @Test func formattingInPlaceMatchesFieldByField() {
        let yearZero: Int64 = -62_167_219_200_000  // 0000-01-01T00:00:00.000Z
        let year10000: Int64 = 253_402_300_800_000  // 10000-01-01T00:00:00.000Z
        var values: [Int64] = [yearZero, yearZero + 1, year10000 - 1, year10000, year10000 + 86_400_001, 0, -1, 951_782_399_999, 951_868_800_000]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<20_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            values.append(yearZero + Int64(state >> 1) % (year10000 + 100 * 86_400_000 - yearZero))
        }
        for ms in values {
            #expect(iso8601(milliseconds: ms) == CivilTime(milliseconds: ms).interpolated, "\(ms)")
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
