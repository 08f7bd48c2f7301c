import CIdlePolling
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Keeps this machine's CPUs awake for a short while after the process last saw a frame, so the
/// next request, the disk's completion and the reply each wake a thread on a running CPU instead
/// of a halted one. Opt-in (`--idle-poll-us`), off by default.
///
/// Why: on a virtual machine an idle vCPU halts, and waking a thread there means an exit to the
/// hypervisor and an interrupt to bring the vCPU back. On the machines we measure on, the guest's
/// own halt polling is switched off (`haltpoll.guest_halt_poll_ns=0`) and a C ping-pong over
/// loopback takes 12–110 µs per round trip with both sides asleep between messages, against
/// about 8–12 µs when the CPUs are kept busy. A one-client command pays that wake-up three times
/// (request, fdatasync, reply). Seastar (ScyllaDB, Redpanda) polls for the same reason, by
/// default for 200 µs after its reactor goes idle (`--idle-poll-time-us`).
///
/// How: one spinner thread per CPU this process may run on, pinned to it, with the `SCHED_IDLE`
/// policy, so the scheduler runs it only when that CPU has nothing else to run. A spinner spins
/// while the last activity is younger than the window, then parks on a semaphore; the next
/// activity wakes it. Each step of its spin calls `sched_yield()`: on the Linux 6.18 guests we
/// measure on, a thread woken on a CPU where a `SCHED_IDLE` spinner ran was not given the CPU
/// until the spinner parked (a PostgreSQL backend woken by its fdatasync's completion waited
/// 0.6 ms, `perf sched timehist`), and one client's deposits on PostgreSQL fell from 2,379 to
/// about 800 a second. With the yield, a runnable thread gets the CPU within one step. The cost
/// is CPU time (and, on a shared host, the host's CPU) while traffic flows:
/// under steady load every CPU shows busy. Hence off by default, and not for containers whose CPU
/// quota would be spent on it.
public final class IdlePoller: Sendable {
    /// What the spinners have done, for status and tests.
    public struct Statistics: Sendable, Equatable {
        /// Spinner threads started (one per CPU).
        public var spinners: Int
        /// Spinners spinning now (the others are parked).
        public var spinning: Int
        /// Times a spinner parked because the window passed with no activity.
        public var parks: Int
        /// Times a parked spinner was woken by activity.
        public var wakes: Int
        /// Total time spent spinning, nanoseconds.
        public var spinNanoseconds: Int64
    }

    /// What each spinner found when it set itself up.
    public struct SpinnerSetup: Sendable, Equatable {
        /// The CPU it is pinned to.
        public var cpu: Int
        /// `sched_getscheduler` afterwards: `SCHED_IDLE` unless the system refused it.
        public var policy: Int32
        /// CPUs in its affinity mask afterwards (1 when pinning worked).
        public var allowedCPUs: Int
    }

    public let window: Duration
    public var windowMicroseconds: Int64 { windowNanoseconds / 1000 }
    private let windowNanoseconds: Int64
    private let lastActivity = Atomic<Int64>(0)
    private let parked = Atomic<Int>(0)
    private let spinning = Atomic<Int>(0)
    private let parks = Atomic<Int>(0)
    private let wakes = Atomic<Int>(0)
    private let spinNanoseconds = Atomic<Int64>(0)
    private let stopped = Atomic<Bool>(false)
    private let wakeUp = DispatchSemaphore(value: 0)
    private let setups = Mutex<[SpinnerSetup]>([])
    private let finished = DispatchGroup()
    public let cpus: [Int]

    /// Starts one spinner per CPU in `cpus` (default: every CPU this process may run on). It is
    /// fed through ``recordActivity()``, which a server hands its transport as the transport's
    /// activity callback (`TCPServerTransport(onActivity:)`). Stop it with ``stop()``.
    public static func start(window: Duration, cpus: [Int]? = nil) -> IdlePoller {
        let poller = IdlePoller(window: window, cpus: cpus ?? allowedCPUs())
        poller.recordActivity()
        return poller
    }

    private init(window: Duration, cpus: [Int]) {
        self.window = window
        windowNanoseconds = max(0, Int64(window.components.seconds) * 1_000_000_000 + window.components.attoseconds / 1_000_000_000)
        self.cpus = cpus
        for cpu in cpus {
            finished.enter()
            let thread = Thread { [self] in
                runSpinner(cpu: cpu)
                finished.leave()
            }
            thread.name = "idle-poll-\(cpu)"
            thread.start()
        }
    }

    /// Records that a frame arrived or left: the spinners keep the CPUs awake for the next window.
    public func recordActivity() {
        lastActivity.store(Self.now(), ordering: .relaxed)
        guard parked.load(ordering: .relaxed) > 0 else { return }
        let waking = parked.exchange(0, ordering: .acquiringAndReleasing)
        for _ in 0..<waking { wakeUp.signal() }
    }

    /// Stops and joins every spinner; ``recordActivity()`` then does nothing.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for _ in cpus { wakeUp.signal() }
        finished.wait()
    }

    public var statistics: Statistics {
        Statistics(
            spinners: cpus.count, spinning: spinning.load(ordering: .relaxed), parks: parks.load(ordering: .relaxed),
            wakes: wakes.load(ordering: .relaxed),
            spinNanoseconds: spinNanoseconds.load(ordering: .relaxed))
    }

    /// Each spinner's setup, once all have started.
    public func spinnerSetups() -> [SpinnerSetup] {
        while setups.withLock({ $0.count }) < cpus.count { usleep(100) }
        return setups.withLock { $0 }.sorted { $0.cpu < $1.cpu }
    }

    private func runSpinner(cpu: Int) {
        let setup = Self.becomeIdleSpinner(on: cpu)
        setups.withLock { $0.append(setup) }
        while !stopped.load(ordering: .relaxed) {
            let started = Self.now()
            spinning.add(1, ordering: .relaxed)
            var now = started
            // Spin while the last activity is younger than the window.
            while now - lastActivity.load(ordering: .relaxed) < windowNanoseconds, !stopped.load(ordering: .relaxed) {
                cidle_relax()
                now = Self.now()
            }
            spinning.subtract(1, ordering: .relaxed)
            spinNanoseconds.add(now - started, ordering: .relaxed)
            guard !stopped.load(ordering: .relaxed) else { return }
            // Park until the next activity. A frame noted between the check above and the count
            // below finds no one parked and wakes no one: the spinner then sleeps until the frame
            // after it, which costs a wake-up, never correctness.
            parks.add(1, ordering: .relaxed)
            parked.add(1, ordering: .acquiringAndReleasing)
            wakeUp.wait()
            if !stopped.load(ordering: .relaxed) { wakes.add(1, ordering: .relaxed) }
        }
    }

    /// Pins the calling thread to `cpu` and gives it `SCHED_IDLE`.
    private static func becomeIdleSpinner(on cpu: Int) -> SpinnerSetup {
        _ = cidle_pin_to_cpu(Int32(cpu))
        _ = cidle_become_sched_idle()
        return SpinnerSetup(cpu: cpu, policy: cidle_policy(), allowedCPUs: Int(cidle_allowed_cpu_count()))
    }

    /// `SCHED_IDLE`, the policy a spinner asks for.
    public static let schedIdle = cidle_sched_idle_value()

    /// The CPUs this process may run on (its affinity mask: a container's cpuset, `taskset`).
    public static func allowedCPUs() -> [Int] {
        var cpus = [Int32](repeating: 0, count: 1024)
        let count = cidle_allowed_cpus(&cpus, Int32(cpus.count))
        return cpus.prefix(Int(count)).map(Int.init)
    }

    @inline(__always)
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
