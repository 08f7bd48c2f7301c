import CExecutorHook
import Dispatch
import NIOCore
import NIOPosix
import Synchronization

/// Runs a server's async entry point with Swift Concurrency's global executor replaced by
/// SwiftNIO's event loops.
///
/// Why: by default every call crosses threads several times (the event loop reads a frame, a
/// task on the global pool runs the handler, the event loop writes the reply), and on a small
/// machine each crossing is a futex wake-up of a sleeping thread. With NIO's loops as the global
/// executor, handlers run on the loop that read their frames, and writes from them need no
/// wake-up. (Per-connection `EventLoopTasks.executor(for:)` preferences cover the calls' own tasks; the
/// global executor covers every other task the servers start.)
///
/// Why our own hook rather than NIO's
/// `unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor`: NIO runs each
/// global job isolated to the event loop *as a serial executor*. A task running there is not on
/// the generic executor, so every nonisolated async function it enters or returns from is an
/// executor switch: the runtime queues the task again and the loop runs it on its next tick
/// (about 20 times per unary client call, counted with a debugger). Here a global job runs on the
/// loop as the generic executor, exactly as Swift's own thread pool runs it, and nonisolated code
/// continues inline.
///
/// **The unsafe points**, each checked on the toolchain the gate below names:
/// 1. `swift_task_enqueueGlobal_hook` is a runtime variable, not API: found by a weak
///    reference (`cqrs_enqueue_global_hook_slot`, which also finds it in a binary that links the
///    runtime statically); no symbol, no hook.
/// 2. The hook's type (`EnqueueGlobalHook`) mirrors the runtime's C signature.
/// 3. The generic executor (`SerialExecutorRef::generic()`) has no public spelling: it is built
///    from its bit pattern, a null identity and no witness table.
/// 4. Jobs run with `runSynchronously(on:)` that generic executor.
///
/// It is installed at most once, atomically (a compare-and-swap from null: never over another
/// hook, never torn), only on the toolchains it was checked on (Swift 6.3 on Linux); elsewhere
/// NIO's supported takeover is used. `JFRAME_GLOBAL_EXECUTOR` chooses: `hook` (the default),
/// `nio` (NIO's takeover) or `default` (Swift's own pool). Servers only: the CLI never installs
/// it. `RPCTransportTCPTests` runs again under it (`Scripts/test`, `JFRAME_TEST_GLOBAL_EXECUTOR`).
public enum ConcurrencyOnEventLoops {
    /// Which global executor a process runs on.
    public enum Choice: String, Sendable, CaseIterable {
        /// NIO's loops as the generic executor, through the runtime's hook (this file).
        case hook
        /// NIO's supported takeover (each job isolated to a loop as a serial executor).
        case nio
        /// Swift's own cooperative pool.
        case `default`
    }

    /// What `install` did.
    public enum Installed: String, Sendable, Equatable {
        case hook, nio, none
    }

    /// What the process's first `install` did (`none` before it): servers print it in their
    /// "listening" line, so that a build whose hook cannot be found shows it (the fallback is
    /// silent and slower per call: NIO's takeover, or Swift's own pool where NIO's cannot install
    /// itself either, as in a binary that links the runtime statically).
    public static var installed: Installed { installedState.withLock { $0 } ?? .none }
    /// Nil until the first `install`.
    private static let installedState = Mutex<Installed?>(nil)

    /// Installs the chosen executor (from `JFRAME_GLOBAL_EXECUTOR`, default `hook`), runs `body`
    /// and exits. Call it from a synchronous `main`, before any task runs.
    public static func run(_ body: @escaping @Sendable () async -> Void) -> Never {
        install(choice())
        let done = DispatchSemaphore(value: 0)
        Task {
            await body()
            done.signal()
        }
        done.wait()
        exit(0)
    }

    /// The choice `JFRAME_GLOBAL_EXECUTOR` names; `hook` when unset or unknown.
    public static func choice() -> Choice {
        Environment.string("JFRAME_GLOBAL_EXECUTOR").flatMap(Choice.init(rawValue:)) ?? .hook
    }

    /// Installs `choice`; `hook` falls back to NIO's takeover where the hook cannot be installed
    /// (another toolchain, no symbol, a hook already set).
    /// Only the first call installs anything (NIO's takeover must not be tried twice); later
    /// calls return `none`.
    @discardableResult
    public static func install(_ choice: Choice) -> Installed {
        installedState.withLock { state in
            guard state == nil else { return .none }
            let installed: Installed
            switch choice {
            case .default: installed = .none
            case .hook where installGlobalHook(): installed = .hook
            case .hook, .nio:
                installed = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() ? .nio : .none
            }
            state = installed
            return installed
        }
    }

    /// Whether our hook is the one the runtime calls now.
    public static var hookInstalled: Bool {
        guard let slot = hookSlot() else { return false }
        return cqrs_load_hook(slot) == hookFunction
    }

    /// The hook's type in the runtime: the job, and the original enqueue function (unused).
    private typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

    /// The runtime's generic executor (unsafe point 3).
    static let genericExecutor = unsafeBitCast((0, 0), to: UnownedSerialExecutor.self)

    /// Sends every global job to an event loop of NIO's singleton group (unsafe point 4).
    private static let hook: EnqueueGlobalHook = { job, _ in
        MultiThreadedEventLoopGroup.singleton.any().execute {
            job.runSynchronously(on: ConcurrencyOnEventLoops.genericExecutor)
        }
    }

    /// `hook` as the raw function pointer the runtime stores (unsafe point 2).
    private static var hookFunction: UnsafeMutableRawPointer {
        withUnsafePointer(to: hook) { pointer in
            pointer.withMemoryRebound(to: UnsafeMutableRawPointer.self, capacity: 1) { $0.pointee }
        }
    }

    /// The runtime's hook variable (unsafe point 1); nil off the checked toolchains.
    private static func hookSlot() -> UnsafeMutablePointer<UnsafeMutableRawPointer?>? {
        #if os(Linux) && compiler(>=6.3) && compiler(<6.4)
        cqrs_enqueue_global_hook_slot()
        #else
        return nil
        #endif
    }

    /// Installs `hook` if no hook is set: false otherwise, or off the checked toolchains.
    private static func installGlobalHook() -> Bool {
        guard let slot = hookSlot() else { return false }
        return cqrs_install_hook(slot, hookFunction)
    }
}
