import Dispatch
import NIOCore
import NIOPosix

/// Runs an async entry point with Swift Concurrency's global executor replaced by SwiftNIO's
/// event loops.
///
/// Why: by default every call crosses threads several times (the event loop reads a frame, a
/// task on the global pool runs the handler, the event loop writes the reply), and on a small
/// machine each crossing is a futex wake-up of a sleeping thread. With NIO's loops as the global
/// executor, handlers run on the loop that read their frames, and writes from them need no wake-up.
/// NIO requires this to be installed once, from the main thread, before any task runs: hence a
/// synchronous `main` that installs it and then blocks on the async body.
public enum ConcurrencyOnEventLoops {
    public static func run(_ body: @escaping @Sendable () async -> Void) -> Never {
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        let done = DispatchSemaphore(value: 0)
        Task {
            await body()
            done.signal()
        }
        done.wait()
        exit(0)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
