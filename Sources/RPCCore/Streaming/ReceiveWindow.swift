/// How much credit the reader of a stream returns to its sender, and when: a window counted in
/// messages, as the wire counts credit (WIRE.md §6), but sized in bytes.
///
/// Why bytes: a window of a fixed number of messages is either too small for small messages or
/// too large for big ones. With 64 messages of 200 bytes in flight (13 KB), a sender spends less
/// time sending its window than CREDIT takes to come back across two threads, so it stalls
/// (a server stream ran at a third of its raw floor); 64 messages of 4 MiB are 256 MiB. So the
/// window starts at the `initialCredit` advertised in HELLO and, once the stream's messages are
/// seen, is sized to hold `windowBytes` of messages as large as the largest seen so far, never
/// below `initialCredit`. A stream of small messages gets a window of thousands; one of large
/// messages keeps the initial one, and a window grown for small messages shrinks again (by
/// granting less) when larger ones arrive.
///
/// A pure state machine: the caller counts messages in and out and sends what it is told to grant.
public struct ReceiveWindow: Sendable, Hashable {
    /// The credit the sender starts with (this side's HELLO `initialCredit`).
    public let initialCredit: Int
    /// The bytes of messages the window aims to hold; 0 keeps it at `initialCredit`.
    public let windowBytes: Int
    /// Messages the sender may still send or has sent unread: credit granted minus messages consumed.
    public private(set) var open: Int
    /// The largest message received so far, in bytes.
    public private(set) var largestMessage = 0
    /// The window the sender was last given (credit granted then plus what it had open).
    public private(set) var window: Int

    /// What a buffered message costs beyond its bytes (its array's header and allocation), so
    /// that a window of tiny messages stays bounded in memory too.
    public static let perMessageOverhead = 64

    public init(initialCredit: Int, windowBytes: Int) {
        self.initialCredit = max(1, initialCredit)
        self.windowBytes = max(0, windowBytes)
        self.open = self.initialCredit
        self.window = self.initialCredit
    }

    /// The window a connection's limits give each new stream it reads.
    public init(_ limits: ConnectionLimits) {
        self.init(initialCredit: limits.initialCredit, windowBytes: limits.streamWindowBytes)
    }

    /// The window this stream's messages call for, in messages: never more than one CREDIT may
    /// carry (its `n` is at most 2³¹ − 1 in Protocols/), whatever `windowBytes` says.
    public var target: Int {
        guard largestMessage > 0 else { return initialCredit }
        return min(Self.maximumWindow, max(initialCredit, windowBytes / (largestMessage + Self.perMessageOverhead)))
    }

    /// The largest `n` of one CREDIT.
    public static let maximumWindow = Int(Int32.max)

    /// A message of `bytes` arrived.
    public mutating func received(bytes: Int) {
        if bytes > largestMessage { largestMessage = bytes }
    }

    /// A message was consumed. Returns the credit to grant now, 0 for none: credit goes back once
    /// half the window is used, enough to fill it to the target again (as gRPC's and RSocket's
    /// readers do, so that one CREDIT covers many messages but arrives while the sender still has
    /// half left). "Half" is of the smaller of the last window and the target, so that the first
    /// CREDIT of a stream comes where it always did (after half the initial credit: a short
    /// exchange sees none) and a shrinking window still grants once the sender is low.
    public mutating func consumed() -> Int {
        open -= 1
        let target = self.target
        let half = max(1, min(window, target) / 2)
        let deficit = target - open
        guard window - open >= half, deficit >= half else { return 0 }
        open = target
        window = target
        return deficit
    }
}
