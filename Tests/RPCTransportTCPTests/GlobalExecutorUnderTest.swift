import Foundation
import NIOPosix
import RPCHosting
import Testing

/// With `JFRAME_TEST_GLOBAL_EXECUTOR=hook` (or `nio`) this target's suites run with the servers'
/// global executor installed, as the server binaries run (`Scripts/test` runs the target a second
/// time so). Each suite touches `installed` when it is made, so the executor is in place before
/// its first test; installing while other tasks already run is part of what is tested.
enum GlobalExecutorUnderTest {
    static let requested = ProcessInfo.processInfo.environment["JFRAME_TEST_GLOBAL_EXECUTOR"].flatMap(ConcurrencyOnEventLoops.Choice.init(rawValue:))

    static let installed: ConcurrencyOnEventLoops.Installed? = requested.map { ConcurrencyOnEventLoops.install($0) }
}

@Suite("Global executor under test")
struct GlobalExecutorTests {
    init() { _ = GlobalExecutorUnderTest.installed }

    @Test func theRequestedExecutorRunsTasksOnTheEventLoops() async throws {
        let onLoop = await Task.detached { MultiThreadedEventLoopGroup.currentEventLoop != nil }.value
        switch GlobalExecutorUnderTest.requested {
        case .hook?:
            #expect(GlobalExecutorUnderTest.installed == .hook)
            #expect(ConcurrencyOnEventLoops.hookInstalled)
            #expect(onLoop, "a detached task's job runs on one of NIO's loops")
            #expect(ConcurrencyOnEventLoops.install(.hook) == .none, "a second install does nothing")
            #expect(ConcurrencyOnEventLoops.install(.nio) == .none)
            #expect(ConcurrencyOnEventLoops.hookInstalled)
        case .nio?:
            #expect(GlobalExecutorUnderTest.installed == .nio)
            #expect(onLoop)
        case .default?, nil:
            #expect(!ConcurrencyOnEventLoops.hookInstalled)
            #expect(!onLoop, "Swift's own pool")
        }
    }
}
