import CSQLite
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checkpoints a WAL-mode database from a connection of its own, on a timer, so that commits
/// never do it.
///
/// Why: by default the connection whose commit pushes the WAL past 1,000 pages runs the
/// checkpoint inside that commit — it copies the pages into the database file and fsyncs it —
/// so every thousandth write or so pays several milliseconds, which is what a p99 sees. With the
/// writer's `wal_autocheckpoint` set to 0 (`disableAutomaticCheckpoints(on:)`) and this running
/// beside it, the copying and the fsync happen off the write path. A PASSIVE checkpoint takes no
/// lock that writers or readers wait on: it copies what no reader still needs and stops there,
/// and the writer starts the WAL over once all of it has been copied.
public final class WALCheckpointer: Sendable {
    /// The last checkpoint's figures, for status and tests.
    public struct Progress: Sendable, Hashable {
        public var checkpoints = 0
        /// Frames in the WAL and frames copied into the database at the last checkpoint.
        public var walFrames: Int64 = 0
        public var copiedFrames: Int64 = 0
        /// Checkpoints the writer ran to finish a pass (`catchUp(on:)`).
        public var catchUps = 0
        public var lastError: String?
    }

    private let connection: Mutex<SQLiteConnection?>
    private let queue = DispatchQueue(label: "sqlite.checkpointer")
    private let interval: DispatchTimeInterval
    private let state = Mutex(Progress())
    private let stopped = Mutex(false)
    /// A pass has copied what it could since the writer last caught up (see `catchUp(on:)`).
    private let catchUpDue = Atomic(false)
    private let logger: Logger

    /// Starts checkpointing the database at `path` every `interval`. A failing checkpoint is
    /// logged once as a warning (the WAL keeps growing until one succeeds) and its recovery as a
    /// notice.
    public init(path: String, interval: Duration = .milliseconds(250), logger: Logger = Logger(label: "sqlite.checkpointer")) throws {
        var logger = logger
        logger[metadataKey: "sqlite.path"] = "\(path)"
        self.logger = logger
        connection = Mutex(try SQLiteConnection(path: path))
        let (seconds, attoseconds) = interval.components
        self.interval = .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
        scheduleNext()
    }

    private func scheduleNext() {
        queue.asyncAfter(deadline: .now() + interval) { [weak self] in
            guard let self, !self.stopped.withLock({ $0 }) else { return }
            self.checkpoint()
            self.scheduleNext()
        }
    }

    /// 16 MiB: what one client's commands write to the WAL in seconds; under heavy load group
    /// commit makes a commit's growth cheap by sharing it, and a store opens in a blink.
    public static let defaultWALPreallocateBytes = 16 << 20

    /// Writes zeros after the end of the database's WAL up to `bytes`, and syncs them, so that
    /// commits overwrite blocks the WAL already has.
    ///
    /// Why: until the WAL first starts over (`catchUp(on:)`, after the first pass) and while a
    /// burst outruns the passes, commits append past its end; and on ext4 an fdatasync after a
    /// write that grows a file must also commit its new length through the journal (the broker's
    /// log zero-fills its segments for the same reason). A probe of the event store's own
    /// transaction with the 250 ms checkpointer: 489 commits/s into a growing WAL, 886 into a
    /// zero-filled one (3 rounds, same run). Zeros are safe there: SQLite reads a WAL frame by
    /// frame and stops at the first whose salt and checksum do not match, which a zero frame
    /// never does, and a WAL whose header is zeros counts as empty. SQLite removes the WAL when
    /// the last connection closes, so each open fills it again.
    public static func zeroFillWAL(ofDatabaseAt path: String, upTo bytes: Int) throws {
        guard bytes > 0 else { return }
        let walPath = path + "-wal"
        let fd = open(walPath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SQLiteError(code: SQLITE_CANTOPEN, message: "cannot open \(walPath): errno \(errno)", sql: nil) }
        defer { close(fd) }
        let start = Int(lseek(fd, 0, SEEK_END))
        var end = start
        guard end < bytes else { return }
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        while end < bytes {
            let count = min(zeros.count, bytes - end)
            let written = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress, count, off_t(end)) }
            guard written > 0 else {
                // Out of space (or past a file size limit): give the space back, so the store
                // still has it for its commits, and let the caller go on without zeros ahead.
                let code = errno
                _ = ftruncate(fd, off_t(start))
                throw SQLiteError(
                    code: SQLITE_FULL, message: "cannot zero-fill \(walPath) to \(bytes) bytes: \(String(cString: strerror(code)))",
                    sql: nil)
            }
            end += written
        }
        guard fdatasync(fd) == 0 else { throw SQLiteError(code: SQLITE_IOERR, message: "cannot sync \(walPath): errno \(errno)", sql: nil) }
    }

    /// Turns off the checkpoints `db`'s own commits would run (pair with a checkpointer).
    public static func disableAutomaticCheckpoints(on db: SQLiteConnection) throws {
        try db.execute("PRAGMA wal_autocheckpoint=0")
    }

    public var progress: Progress { state.withLock { $0 } }

    /// Copies, on the writer's own connection, what the last pass could not: call it between two
    /// of the writer's transactions. Cheap when nothing is due.
    ///
    /// Why: a pass from the checkpointer's connection never catches a busy writer up (what commits
    /// while it copies is left for the next pass), and SQLite starts the WAL over at its first
    /// frame only when a write transaction begins with every frame copied. Without this the WAL
    /// grows for as long as writes keep coming (70 MB after 18 s of one client's deposits),
    /// and every commit grows the file, whose fdatasync on ext4 then commits the new length
    /// through the journal too. Once per pass, the writer copies the few frames committed since
    /// the pass (a PASSIVE checkpoint: some pages and one fsync of the database file), so its next
    /// transaction starts the WAL over, on blocks the file already has. A reader still using
    /// older frames makes it copy less and the WAL start over at a later pass; nothing waits.
    public func catchUp(on writer: SQLiteConnection) {
        guard catchUpDue.exchange(false, ordering: .acquiringAndReleasing) else { return }
        do {
            _ = try writer.first("PRAGMA wal_checkpoint(PASSIVE)") { $0.int64(0) }
            state.withLock { $0.catchUps += 1 }
        } catch {
            logger.debug("the writer's WAL catch-up failed; the next pass tries again", metadata: ["error": "\(error)"])
        }
    }

    /// Runs one PASSIVE checkpoint now (the timer calls this; tests may too).
    public func checkpoint() {
        let outcome: Result<(Int64, Int64), any Error> = connection.withLock { connection in
            guard let connection else { return .failure(SQLiteError(code: SQLITE_MISUSE, message: "checkpointer stopped", sql: nil)) }
            return Result {
                try connection.first("PRAGMA wal_checkpoint(PASSIVE)") { ($0.int64(1), $0.int64(2)) } ?? (0, 0)
            }
        }
        enum Change {
            case none
            case failing(String)
            case recovered
        }
        let change = state.withLock { progress -> Change in
            switch outcome {
            case .success(let (frames, copied)):
                if frames > 0 { catchUpDue.store(true, ordering: .releasing) }
                progress.checkpoints += 1
                progress.walFrames = frames
                progress.copiedFrames = copied
                defer { progress.lastError = nil }
                return progress.lastError == nil ? .none : .recovered
            case .failure(let error):
                defer { progress.lastError = "\(error)" }
                return progress.lastError == nil ? .failing("\(error)") : .none
            }
        }
        switch change {
        case .none: break
        case .failing(let error): logger.warning("WAL checkpoint failed; the WAL grows until one succeeds", metadata: ["error": "\(error)"])
        case .recovered: logger.notice("WAL checkpoints succeed again")
        }
    }

    /// Stops the timer, runs a last checkpoint and closes the connection.
    public func stop() {
        guard
            !stopped.withLock({ stopped in
                defer { stopped = true }
                return stopped
            })
        else { return }
        queue.sync {}
        checkpoint()
        connection.withLock { $0 = nil }
    }
}
