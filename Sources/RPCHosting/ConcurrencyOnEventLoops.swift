import Dispatch
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs an async entry point with Swift Concurrency's global executor replaced by SwiftNIO's
/// event loops.
///
/// Why: by default every call crosses threads several times (the event loop reads a frame, a
/// task on the global pool runs the handler, the event loop writes the reply), and on a small
/// machine each crossing is a futex wake-up of a sleeping thread. With NIO's loops as the global
/// executor, handlers run on the loop that read their frames, and writes from them need no wake-up.
///
/// Why our own hook rather than NIO's
/// `unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor`: NIO runs each
/// global job isolated to the event loop *as a serial executor*. A task running there is not on
/// the generic executor, so every nonisolated async function it enters or returns from is an
/// executor switch: the runtime queues the task again and the loop runs it on its next tick
/// (about 20 times per unary client call, counted with a debugger). Here a global job runs on the
/// loop as the generic executor, exactly as Swift's own thread pool runs it, and nonisolated code
/// continues inline. NIO's hook remains the fallback if ours cannot be installed.
///
/// Both are installed through the runtime's `swift_task_enqueueGlobal_hook`, once, from the main
/// thread, before any task runs: hence a synchronous `main` that installs it and then blocks on
/// the async body.
public enum ConcurrencyOnEventLoops {
    public static func run(_ body: @escaping @Sendable () async -> Void) -> Never {
        if !installGlobalHook() {
            NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
        let done = DispatchSemaphore(value: 0)
        Task {
            await body()
            done.signal()
        }
        done.wait()
        exit(0)
    }

    /// The hook's type in the runtime: the job, and the original enqueue function (unused).
    private typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

    /// The runtime's generic executor, `SerialExecutorRef::generic()`: a null identity and no
    /// witness table. It is what Swift's own global executor runs jobs on; there is no public
    /// spelling for it, so it is built from its (ABI-stable) bit pattern.
    static let genericExecutor = unsafeBitCast((0, 0), to: UnownedSerialExecutor.self)

    /// Sends every global job to an event loop of NIO's singleton group: the current thread's
    /// loop if it is one (no thread switch), else the next loop. False if a hook is already set
    /// or the runtime has none.
    private static func installGlobalHook() -> Bool {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "swift_task_enqueueGlobal_hook") else { return false }
        let hookPointer = symbol.assumingMemoryBound(to: UnsafeRawPointer?.self)
        guard hookPointer.pointee == nil else { return false }
        return withUnsafeTemporaryAllocation(of: EnqueueGlobalHook.self, capacity: 1) { hook -> Bool in
            hook.baseAddress!.initialize(to: { job, _ in
                MultiThreadedEventLoopGroup.singleton.any().execute {
                    job.runSynchronously(on: ConcurrencyOnEventLoops.genericExecutor)
                }
            })
            return hook.baseAddress!.withMemoryRebound(to: UnsafeRawPointer.self, capacity: 1) { function in
                hookPointer.pointee = function.pointee
                return true
            }
        }
    }
}
