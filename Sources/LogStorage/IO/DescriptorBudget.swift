import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A bound on the descriptors the log's files hold open at once. A file past it is closed, least
/// recently used first, and opened again when it is next read, written or synced.
///
/// Why: every partition has a log file and two index files per segment, so descriptors grew with
/// partitions and segments until the process hit its open-file limit. Then partitions went
/// offline, accept failed, and the broker could not even start on its own data. With the budget
/// a broker opens what it needs when it needs it, whatever the limit and however many partitions
/// it holds; past the budget it pays an `open` per touch of a cold file instead of failing (Kafka
/// keeps every segment open and asks operators to raise the limit instead).
///
/// Only files not in use are closed: a read, write or sync holds its descriptor for the call. A
/// file written since its last sync is synced before it is closed, because Linux reports a
/// writeback error only to descriptors open when it happened: closing first would let a later
/// fsync on a new descriptor succeed over lost data. A failed sync there is kept and thrown by
/// that file's next `sync()`.
public final class DescriptorBudget: Sendable {
    /// Descriptors open at most, one per open file; at least 8.
    public let capacity: Int

    /// An open file's bookkeeping, changed only under the lock. A class, so a call finds its
    /// file's entry once and then works on it: as a struct in the dictionary, every field read
    /// or written was a lookup (about sixteen per produced batch, a fiftieth of the broker's
    /// instructions for a one-record produce).
    private final class Entry {
        let fd: Int32
        let path: String
        var users: Int
        var lastUse: UInt64
        /// Writes counted, and the count the last completed sync covered.
        var writes: UInt64 = 0
        var syncedWrites: UInt64 = 0

        init(fd: Int32, path: String, users: Int, lastUse: UInt64) {
            self.fd = fd
            self.path = path
            self.users = users
            self.lastUse = lastUse
        }
    }

    private struct State {
        var open: [ObjectIdentifier: Entry] = [:]
        var tick: UInt64 = 0
        /// Syncs that failed while closing a file for the budget, thrown by its next `sync()`.
        var failedSyncs: [ObjectIdentifier: StorageError] = [:]
        var opens = 0
        var evictions = 0
    }

    private let state = Mutex(State())

    public init(capacity: Int) { self.capacity = max(8, capacity) }

    /// Half the process's open-file limit (the rest is for connections, SQLite and the like):
    /// what a broker takes when no budget is configured.
    public static func halfOfOpenFileLimit() -> Int {
        var limit = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0 else { return 4096 }
        // An unlimited limit (RLIM_INFINITY, all ones) lands on the cap.
        return Int(min(limit.rlim_cur / 2, 1 << 20))
    }

    /// The budget every `PosixFileSystem` shares unless it is given its own.
    public static let shared = DescriptorBudget(capacity: halfOfOpenFileLimit())

    public struct Statistics: Sendable, Hashable {
        public var openNow: Int
        /// Opens since the start, and closes the budget forced.
        public var opens: Int
        public var evictions: Int
    }

    public var statistics: Statistics {
        state.withLock { Statistics(openNow: $0.open.count, opens: $0.opens, evictions: $0.evictions) }
    }

    /// Runs `body` with `file`'s descriptor, opening it first if it is closed.
    func withDescriptor<T>(_ file: PosixFile, write: Bool = false, _ body: (Int32) throws -> T) throws -> T {
        let entry = try acquire(file, id: ObjectIdentifier(file))
        defer {
            state.withLock { _ in
                entry.users -= 1
                // Counted once done, so a sync that starts during a write does not cover it.
                if write { entry.writes += 1 }
            }
        }
        return try body(entry.fd)
    }

    /// Syncs `file`: the sync covers every write counted before it started.
    func sync(_ file: PosixFile, _ body: (Int32) throws -> Void) throws {
        let id = ObjectIdentifier(file)
        if let failure = state.withLock({ $0.failedSyncs.isEmpty ? nil : $0.failedSyncs.removeValue(forKey: id) }) { throw failure }
        let entry = try acquire(file, id: id)
        let covered = state.withLock { _ in entry.writes }
        defer { state.withLock { _ in entry.users -= 1 } }
        try body(entry.fd)
        state.withLock { _ in entry.syncedWrites = max(entry.syncedWrites, covered) }
    }

    /// Forgets `file` and closes its descriptor (the file is going away; nobody uses it).
    func release(_ file: PosixFile) {
        let id = ObjectIdentifier(file)
        let entry = state.withLock { state -> Entry? in
            state.failedSyncs.removeValue(forKey: id)
            return state.open.removeValue(forKey: id)
        }
        if let entry { close(entry.fd) }
    }

    /// Opens `path` (creating it if missing) for a new file object, making room first.
    func open(_ path: String) throws -> Int32 {
        closeIdle(toHold: capacity - 1)
        return try Self.openDescriptor(path, flags: O_RDWR | O_CREAT | O_CLOEXEC)
    }

    /// Counts a descriptor `open` returned as `file`'s.
    func adopt(_ fd: Int32, for file: PosixFile) {
        state.withLock { state in
            state.tick += 1
            state.opens += 1
            state.open[ObjectIdentifier(file)] = Entry(fd: fd, path: file.path, users: 0, lastUse: state.tick)
        }
    }

    private static func openDescriptor(_ path: String, flags: Int32) throws -> Int32 {
        let fd = systemOpen(path, flags)
        guard fd >= 0 else { throw StorageError.io(operation: "open", path: path, errno: errno) }
        return fd
    }

    /// `file`'s entry, opened if it is closed, counted as in use (the caller gives it back).
    private func acquire(_ file: PosixFile, id: ObjectIdentifier) throws -> Entry {
        if let entry = state.withLock({ state -> Entry? in
            guard let entry = state.open[id] else { return nil }
            state.tick += 1
            entry.users += 1
            entry.lastUse = state.tick
            return entry
        }) {
            return entry
        }
        // Make room before opening, so the open itself does not meet the process's limit. No
        // O_CREAT: a file unlinked since (a segment retention deleted) must not come back empty.
        closeIdle(toHold: capacity - 1)
        let opened = try Self.openDescriptor(file.path, flags: O_RDWR | O_CLOEXEC)
        let (entry, unused) = state.withLock { state -> (Entry, Int32?) in
            state.tick += 1
            if let theirs = state.open[id] {
                // Another thread opened it meanwhile: use theirs.
                theirs.users += 1
                theirs.lastUse = state.tick
                return (theirs, opened)
            }
            state.opens += 1
            let entry = Entry(fd: opened, path: file.path, users: 1, lastUse: state.tick)
            state.open[id] = entry
            return (entry, nil)
        }
        if let unused { close(unused) }
        return entry
    }

    /// Closes idle files, least recently used first, until at most `target` are open; an
    /// eighth of the budget at a time, so the sort is paid once per many opens.
    private func closeIdle(toHold target: Int) {
        let victims = state.withLock { state -> [(ObjectIdentifier, Entry)] in
            guard state.open.count > target else { return [] }
            let wanted = max(state.open.count - target, capacity / 8)
            let idle = state.open.filter { $0.value.users == 0 }.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(wanted)
            for (id, _) in idle { state.open.removeValue(forKey: id) }
            state.evictions += idle.count
            return Array(idle)
        }
        for (id, entry) in victims {
            if entry.writes > entry.syncedWrites {
                #if canImport(Darwin)
                let result = fsync(entry.fd)
                #else
                let result = fdatasync(entry.fd)
                #endif
                if result != 0 {
                    let failure = StorageError.io(operation: "fdatasync before closing for the descriptor budget", path: entry.path, errno: errno)
                    state.withLock { _ = $0.failedSyncs[id] = failure }
                }
            }
            close(entry.fd)
        }
    }
}
