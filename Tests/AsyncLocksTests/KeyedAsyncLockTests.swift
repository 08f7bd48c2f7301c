import Synchronization
import Testing

@testable import AsyncLocks

/// Records the order bodies ran in.
final class Journal: Sendable {
    private let entries = Mutex<[String]>([])
    func add(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

/// Waits (yielding) until `condition` holds; fails the test after about two seconds.
func eventually(_ condition: () -> Bool) async throws {
    for _ in 0..<2000 {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(1))
    }
    Issue.record("the condition never held")
}

@Suite struct KeyedAsyncLockTests {
    @Test func waitersOnAKeyRunOneAtATimeInArrivalOrder() async throws {
        let lock = KeyedAsyncLock<String>()
        let journal = Journal()
        let gate = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await lock.withLock("a") {
                journal.add("holder")
                for await _ in gate.stream { break }
            }
        }
        try await eventually { lock.isHeld("a") }
        var waiters: [Task<Void, any Error>] = []
        for index in 0..<5 {
            waiters.append(Task { try await lock.withLock("a") { journal.add("w\(index)") } })
            // Each is queued before the next arrives.
            try await eventually { lock.waiting("a") == index + 1 }
        }
        gate.continuation.yield()
        try await holder.value
        for waiter in waiters { try await waiter.value }
        #expect(journal.all == ["holder", "w0", "w1", "w2", "w3", "w4"])
        #expect(!lock.isHeld("a"), "the last one frees the key")
    }

    @Test func otherKeysNeverWait() async throws {
        let lock = KeyedAsyncLock<String>()
        let gate = AsyncStream<Void>.makeStream()
        let holder = Task { try await lock.withLock("a") { for await _ in gate.stream { break } } }
        try await eventually { lock.isHeld("a") }
        let other = try await lock.withLock("b") { "ran while a was held" }
        #expect(other == "ran while a was held")
        gate.continuation.yield()
        try await holder.value
    }

    @Test func aCancelledWaiterLeavesTheQueueAtOnceAndTheNextGetsTheKey() async throws {
        let lock = KeyedAsyncLock<Int>()
        let journal = Journal()
        let gate = AsyncStream<Void>.makeStream()
        let holder = Task { try await lock.withLock(1) { for await _ in gate.stream { break } } }
        try await eventually { lock.isHeld(1) }
        let cancelled = Task { try await lock.withLock(1) { journal.add("cancelled ran") } }
        try await eventually { lock.waiting(1) == 1 }
        let next = Task { try await lock.withLock(1) { journal.add("next") } }
        try await eventually { lock.waiting(1) == 2 }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(lock.isHeld(1), "the holder still holds it")
        #expect(lock.waiting(1) == 1, "only the next one waits")
        gate.continuation.yield()
        try await holder.value
        try await next.value
        #expect(journal.all == ["next"])
        #expect(!lock.isHeld(1))
    }

    @Test func aTaskCancelledBeforeItAsksNeverRunsItsBody() async throws {
        let lock = AsyncLock()
        let journal = Journal()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await lock.withLock { journal.add("ran") }
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(journal.all.isEmpty)
        #expect(try await lock.withLock { "free" } == "free", "the lock was not left held")
    }

    /// Taking a free key does not suspend the task: on an actor with another job queued, the
    /// body runs before that job (a suspension would put the task behind it).
    @Test func aFreeKeyIsTakenWithoutSuspending() async throws {
        actor Sequence {
            let lock = KeyedAsyncLock<String>()
            var order: [String] = []

            func run() async throws -> [String] {
                let queued = Task { self.order.append("queued job") }
                try await lock.withLock("a") { order.append("body") }
                await queued.value
                return order
            }
        }
        #expect(try await Sequence().run() == ["body", "queued job"])
    }

    @Test func aBodyThatThrowsReleasesTheKey() async throws {
        struct Failure: Error {}
        let lock = KeyedAsyncLock<String>()
        await #expect(throws: Failure.self) { try await lock.withLock("a") { throw Failure() } }
        #expect(!lock.isHeld("a"))
    }
}
