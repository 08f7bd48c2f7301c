import ArgumentParser
import Foundation
import IdlePolling
import RPCHosting
import Testing

/// Pollers are fed only by what holds them (a server's transport, here the tests): other suites'
/// frames in this process never reach them. One at a time, to leave the CPUs to the spinner under test.
@Suite(.serialized) struct IdlePollerTests {
    /// Waits (up to 10 s: spinners are SCHED_IDLE and may wait for CPUs busy with other tests)
    /// until `condition` holds.
    func eventually(_ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(2))
        }
        return condition()
    }

    @Test func eachSpinnerIsPinnedToItsCPUAndRunsOnlyWhenTheCPUIsIdle() throws {
        let cpus = IdlePoller.allowedCPUs()
        #expect(!cpus.isEmpty)
        let poller = IdlePoller.start(window: .milliseconds(1), cpus: cpus)
        defer { poller.stop() }
        let setups = poller.spinnerSetups()
        #expect(setups.map(\.cpu) == cpus)
        for setup in setups {
            #expect(setup.policy == IdlePoller.schedIdle, "cpu \(setup.cpu)")
            #expect(setup.allowedCPUs == 1, "cpu \(setup.cpu)")
        }
    }

    @Test func spinnersParkWhenTheWindowPassesAndActivityWakesThem() async throws {
        let poller = IdlePoller.start(window: .milliseconds(20), cpus: [IdlePoller.allowedCPUs()[0]])
        defer { poller.stop() }
        #expect(try await eventually { poller.statistics.parks >= 1 }, "no activity after the start: it parks")
        let parked = poller.statistics
        #expect(parked.spinning == 0)
        // Whether it spun before that first park depends on when a SCHED_IDLE thread first got a
        // CPU (on a loaded run, after the window): the spinning is checked below, with activity
        // that keeps coming.

        poller.recordActivity()
        #expect(try await eventually { poller.statistics.wakes >= 1 }, "a frame wakes it")
        #expect(try await eventually { poller.statistics.parks >= parked.parks + 1 }, "and it parks again a window later")
        // A SCHED_IDLE spinner gets a CPU only when nothing else wants it: under a loaded test run
        // it may wake after the window has passed and park without spinning. Activity that keeps
        // coming finds it spinning.
        #expect(
            try await eventually {
                poller.recordActivity()
                return poller.statistics.spinNanoseconds > parked.spinNanoseconds
            }, "activity that keeps coming keeps it spinning")
    }

    @Test func aSpinnerKeepsSpinningWhileActivityIsRecent() async throws {
        let poller = IdlePoller.start(window: .seconds(30), cpus: [IdlePoller.allowedCPUs()[0]])
        defer { poller.stop() }
        _ = poller.spinnerSetups()
        #expect(try await eventually { poller.statistics.spinning == 1 })
        try await Task.sleep(for: .milliseconds(100))
        #expect(poller.statistics.parks == 0, "within the window it never parks")
    }

    /// A stopped poller stays stopped, whatever activity it is told of.
    @Test func afterStopActivityWakesNothing() async throws {
        let poller = IdlePoller.start(window: .milliseconds(1), cpus: [IdlePoller.allowedCPUs()[0]])
        #expect(try await eventually { poller.statistics.parks >= 1 })
        poller.stop()
        let stopped = poller.statistics
        poller.recordActivity()
        try await Task.sleep(for: .milliseconds(20))
        #expect(poller.statistics == stopped)
        #expect(stopped.spinning == 0)
    }

    @Test func theFlagIsOffByDefaultAndBounded() throws {
        #expect(try ServerOptions.parse([]).idlePollWindow() == nil)
        #expect(try ServerOptions.parse(["--idle-poll-us", "0"]).idlePollWindow() == nil)
        #expect(try ServerOptions.parse(["--idle-poll-us", "500"]).idlePollWindow() == .microseconds(500))
        #expect(throws: (any Error).self) { try ServerOptions.parse(["--idle-poll-us", "-1"]) }
        #expect(throws: (any Error).self) { try ServerOptions.parse(["--idle-poll-us", "1000001"]) }
    }
}
