import NIOCore
import NIOEmbedded
import RPCTransportNIO
import Testing

/// A task preferring an event loop's executor sleeps on that loop's timers, not Dispatch's: what
/// the connection pools' idle and keep-alive timers rely on (Swift 6.3's experimental
/// `SchedulingExecutor`, asked for by the runtime through the task's preferred executor).
@Suite("Event loop task executors")
struct EventLoopTasksTests {
    @Test func aSleepIsTheLoopsTimer() async throws {
        let loop = NIOAsyncTestingEventLoop()
        let sleeper = Task(executorPreference: EventLoopTasks.executor(for: loop)) {
            try await Task.sleep(for: .seconds(3600))
            return "woke"
        }
        // The task starts on the loop and schedules its sleep there; an hour of the loop's own
        // clock ends it. A sleep on Dispatch's timers would still have an hour to go.
        await loop.run()
        await loop.advanceTime(by: .hours(1))
        let woke = await Self.value(of: sleeper)
        #expect(woke == "woke")
        await loop.shutdownGracefully()
    }

    @Test func aChildTaskInheritsTheLoopsTimers() async throws {
        let loop = NIOAsyncTestingEventLoop()
        let parent = Task(executorPreference: EventLoopTasks.executor(for: loop)) {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask { (try? await Task.sleep(for: .seconds(3600))) != nil }
                return await group.next() ?? false
            }
        }
        await loop.run()
        await loop.advanceTime(by: .hours(1))
        await loop.run()
        let woke = await Self.value(of: parent)
        #expect(woke == true)
        await loop.shutdownGracefully()
    }

    @Test func aSleepOfCenturiesDoesNotEndAtOnce() async throws {
        let loop = NIOAsyncTestingEventLoop()
        let sleeper = Task(executorPreference: EventLoopTasks.executor(for: loop)) {
            (try? await Task.sleep(for: .seconds(Int64.max / 2))) != nil
        }
        await loop.run()
        await loop.advanceTime(by: .hours(24 * 365))
        #expect(await Self.value(of: sleeper) != true, "still asleep after a year of the loop's clock")
        await loop.shutdownGracefully()
    }

    /// The task's value if it ends within five seconds; else nil, and it is cancelled (a sleep
    /// on Dispatch's timers would have an hour to go: fail rather than wait it out).
    static func value<T: Sendable, F: Error>(of task: Task<T, F>) async -> T? {
        await withTaskGroup(of: T?.self) { group in
            group.addTask { try? await task.value }
            group.addTask {
                try? await Task.sleep(for: .seconds(5))
                task.cancel()
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
