import CommitScheduling
import Synchronization
import Testing

/// A place for the shared log the two recording schedulers write to.
final class SchedulerLog: Sendable {
    let entries = Mutex<[String]>([])
}

/// Runs commits inline and notes its name in the log.
struct RecordingScheduler: CommitScheduler {
    let name: String
    let log: SchedulerLog
    init(_ name: String, log: SchedulerLog) {
        self.name = name
        self.log = log
    }
    func schedule(_ commit: @escaping @Sendable () -> Void) {
        log.entries.withLock { $0.append(name) }
        commit()
    }
}

/// A monotonic clock the test moves: commits "take" time by advancing it.
final class TestUptime: Sendable {
    private let nanoseconds = Atomic<UInt64>(1_000_000_000)
    var now: UInt64 { nanoseconds.load(ordering: .relaxed) }
    func advance(_ duration: Duration) {
        nanoseconds.add(
            UInt64(duration.components.seconds) * 1_000_000_000 + UInt64(duration.components.attoseconds / 1_000_000_000), ordering: .relaxed)
    }
}

@Suite struct SlowDiskGuardTests {
    @Test func aSlowCommitSendsTheNextToTheFallbackUntilCommitsHaveBeenQuickForTheRecoveryTime() {
        let log = SchedulerLog()
        let clock = TestUptime()
        let guarded = SlowDiskGuard(
            preferred: RecordingScheduler("loop", log: log), fallback: RecordingScheduler("thread", log: log), slowCommit: .milliseconds(5),
            stall: .milliseconds(20), recovery: .seconds(1), now: { clock.now })
        guarded.schedule(covering: 1) { clock.advance(.milliseconds(1)) }
        #expect(!guarded.avoidingPreferred)
        guarded.schedule(covering: 1) { clock.advance(.milliseconds(50)) }
        #expect(guarded.avoidingPreferred, "a commit that stalled (over 20 ms)")
        guarded.schedule(covering: 1) { clock.advance(.milliseconds(1)) }
        clock.advance(.milliseconds(600))
        // Still slow on the thread: the spell goes on.
        guarded.schedule(covering: 1) { clock.advance(.milliseconds(50)) }
        // Quick again: the average comes down, and the recovery time runs from the last slow sign.
        for _ in 0..<20 { guarded.schedule(covering: 1) { clock.advance(.milliseconds(1)) } }
        #expect(guarded.avoidingPreferred)
        clock.advance(.milliseconds(1100))
        #expect(!guarded.avoidingPreferred, "quick for longer than the recovery time")
        guarded.schedule {}
        let places = log.entries.withLock { $0 }
        #expect(places == ["loop", "loop"] + Array(repeating: "thread", count: 22) + ["loop"])
    }

    @Test func aSpikeAmongQuickCommitsIsJitterButASlowAverageIsNot() {
        let log = SchedulerLog()
        let clock = TestUptime()
        let guarded = SlowDiskGuard(
            preferred: RecordingScheduler("loop", log: log), fallback: RecordingScheduler("thread", log: log), slowCommit: .milliseconds(5),
            stall: .milliseconds(50), recovery: .seconds(1), now: { clock.now })
        for _ in 0..<20 { guarded.schedule { clock.advance(.microseconds(200)) } }
        guarded.schedule { clock.advance(.milliseconds(12)) }
        #expect(!guarded.avoidingPreferred, "one 12 ms sync among 0.2 ms ones")
        for _ in 0..<20 { guarded.schedule { clock.advance(.microseconds(200)) } }
        var commits = 0
        while !guarded.avoidingPreferred && commits < 50 {
            guarded.schedule { clock.advance(.milliseconds(12)) }
            commits += 1
        }
        #expect((2...8).contains(commits), "a run of 12 ms syncs moves off the loop within a few (\(commits))")
    }

    @Test func aReadRunsInlineWhileQuickAndOnTheFallbackAfterASlowOne() async throws {
        let log = SchedulerLog()
        let clock = TestUptime()
        let guarded = SlowDiskGuard(
            preferred: RecordingScheduler("loop", log: log), fallback: RecordingScheduler("thread", log: log), now: { clock.now })
        #expect(try await guarded.run { 1 } == 1)
        #expect(log.entries.withLock { $0 }.isEmpty, "inline: no scheduler involved")
        _ = try await guarded.run { clock.advance(.milliseconds(60)) }
        #expect(try await guarded.run { 2 } == 2)
        #expect(log.entries.withLock { $0 } == ["thread"])
        struct Failure: Error {}
        await #expect(throws: Failure.self) { try await guarded.run { throw Failure() } }
    }
}
