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
}
