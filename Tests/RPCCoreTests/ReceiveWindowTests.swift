import RPCCore
import Testing

@Suite("A stream's receive window")
struct ReceiveWindowTests {
    /// Receives and consumes `count` messages of `bytes` one at a time, as a reader that keeps up
    /// does; returns every grant and checks that the sender never has more open than the window
    /// allowed when it was last granted.
    static func read(_ window: inout ReceiveWindow, count: Int, bytes: Int) -> [Int] {
        var grants: [Int] = []
        for _ in 0..<count {
            window.received(bytes: bytes)
            let grant = window.consumed()
            if grant > 0 { grants.append(grant) }
            #expect(window.open <= max(window.initialCredit, window.target))
            #expect(window.open >= 0)
        }
        return grants
    }

    @Test("with no byte window, credit goes back half the initial credit at a time")
    func fixedWindow() {
        var window = ReceiveWindow(initialCredit: 64, windowBytes: 0)
        let grants = Self.read(&window, count: 320, bytes: 200)
        #expect(grants == Array(repeating: 32, count: 10))
        #expect(window.open == 64)
    }

    @Test("small messages grow the window to hold the byte window, never more")
    func smallMessagesGrowIt() {
        var window = ReceiveWindow(initialCredit: 64, windowBytes: 1 << 20)
        let grants = Self.read(&window, count: 20_000, bytes: 200)
        let target = (1 << 20) / (200 + ReceiveWindow.perMessageOverhead)  // 3,971
        #expect(window.target == target)
        // The first CREDIT comes where it always did, after half the initial credit, and opens
        // the whole window; later ones come half a window at a time.
        #expect(grants.first == target - 32)
        #expect(grants.count > 5)
        #expect(grants.dropFirst().allSatisfy { $0 == target / 2 })
        #expect(window.open * 200 <= 1 << 20)
        #expect(grants.reduce(64, +) - 20_000 == window.open)
    }

    @Test("large messages keep the initial window: it never holds more than it did before")
    func largeMessagesKeepIt() {
        var window = ReceiveWindow(initialCredit: 64, windowBytes: 1 << 20)
        let grants = Self.read(&window, count: 640, bytes: 1 << 20)
        #expect(window.target == 64)
        #expect(grants == Array(repeating: 32, count: 20))
    }

    @Test("a window grown for small messages shrinks when larger ones arrive")
    func itShrinksAgain() {
        var window = ReceiveWindow(initialCredit: 64, windowBytes: 1 << 20)
        _ = Self.read(&window, count: 100, bytes: 100)
        let grown = window.open
        #expect(grown > 1000)
        // Messages of 64 KiB: the window aims at 16 of them (below the initial 64, so 64).
        var consumedBeforeNextGrant = 0
        while window.open > 0 {
            window.received(bytes: 64 * 1024)
            if window.consumed() > 0 { break }
            consumedBeforeNextGrant += 1
        }
        #expect(window.target == 64)
        // No credit went back until fewer than half of the new window was open.
        #expect(consumedBeforeNextGrant == grown - 32 - 1)
        #expect(window.open == 64)
    }

    @Test("nothing received yet: the window is the initial credit; one credit at least")
    func edges() {
        var window = ReceiveWindow(initialCredit: 0, windowBytes: -5)
        #expect(window.initialCredit == 1)
        #expect(window.windowBytes == 0)
        #expect(window.target == 1)
        window.received(bytes: 10)
        #expect(window.consumed() == 1)
        #expect(window.open == 1)
    }

    @Test("a byte window too large for one CREDIT is capped at the largest n a CREDIT may carry")
    func capped() {
        var window = ReceiveWindow(initialCredit: 64, windowBytes: Int.max)
        let grants = Self.read(&window, count: 40, bytes: 1)
        #expect(window.target == ReceiveWindow.maximumWindow)
        #expect(grants.allSatisfy { $0 <= Int(Int32.max) })
        #expect(grants.first == Int(Int32.max) - 32)
    }
}
