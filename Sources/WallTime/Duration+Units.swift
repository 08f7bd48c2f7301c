extension Duration {
    /// The whole nanoseconds of this duration, for APIs that take an integer count
    /// (NIO's `TimeAmount`, swift-metrics' timers).
    public var wholeNanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }

    /// The whole microseconds of this duration, for log lines.
    public var wholeMicroseconds: Int64 {
        components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000
    }

    /// The whole milliseconds of this duration (a part of a millisecond dropped), for messages
    /// and protocol fields in milliseconds.
    public var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// The milliseconds of this duration with any part of a millisecond counted as a whole one:
    /// a deadline sent on in milliseconds is never shortened to zero.
    public var millisecondsRoundedUp: Int64 {
        components.seconds * 1000 + (components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    }

    /// This duration in seconds, as a floating-point number (for backoff arithmetic).
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
