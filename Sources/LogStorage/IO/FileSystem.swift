import CoreMetrics
import WallTime

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One open file of the log. The seam where tests inject faults (dropped unsynced writes, torn
/// writes, failing fsync): everything the log layer does to disk goes through this protocol.
///
/// Positional reads and writes are safe from several threads at once; the log serialises writes
/// to one file itself.
public protocol StorageFile: AnyObject, Sendable {
    var path: String { get }
    /// The file's current length in bytes.
    func size() throws -> Int64
    /// Up to `count` bytes from `offset`; fewer only at the end of the file.
    func read(at offset: Int64, count: Int) throws -> [UInt8]
    /// Writes all of `bytes` at `offset` or throws.
    func write(_ bytes: [UInt8], at offset: Int64) throws
    /// Makes every completed write durable (fdatasync).
    func sync() throws
    func truncate(to size: Int64) throws
}

/// The directory operations of the log, behind a protocol for the same reason as `StorageFile`.
public protocol FileSystem: Sendable {
    func open(_ path: String) throws -> any StorageFile
    func exists(_ path: String) -> Bool
    /// Names (not paths) of the entries in `directory`, unsorted.
    func list(_ directory: String) throws -> [String]
    /// Creates the directory and its missing parents.
    func createDirectory(_ path: String) throws
    /// Atomic rename; replaces `to` if it exists.
    func rename(_ from: String, to: String) throws
    func remove(_ path: String) throws
    func removeTree(_ path: String) throws
    /// Makes the directory's entries (creations, renames, removals) durable.
    func syncDirectory(_ path: String) throws
}

extension FileSystem {
    /// Replaces the file at `path` with `bytes` so that a crash leaves either the old or the new
    /// content, never a mix: write a temporary file, fsync it, rename it over, fsync the directory.
    public func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
        let temporary = path + ".tmp"
        let file = try open(temporary)
        try file.truncate(to: 0)
        try file.write(bytes, at: 0)
        try file.sync()
        try rename(temporary, to: path)
        try syncDirectory(parentDirectory(of: path))
    }

    /// The whole content of a file, or nil when it does not exist.
    public func readWholeFile(_ path: String) throws -> [UInt8]? {
        guard exists(path) else { return nil }
        let file = try open(path)
        return try file.read(at: 0, count: Int(try file.size()))
    }
}

func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// What went wrong in the log layer.
public enum StorageError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)
    /// Stored bytes that were once written whole and synced no longer check out.
    case corruption(path: String, position: Int64, reason: String)
    /// A write or an fsync failed earlier: what the file and the page cache hold is unknown, so
    /// the log takes no more writes until it is recovered from disk by a restart.
    case offline(path: String, cause: String)
    /// A read asked for an offset the log does not have.
    case offsetOutOfRange(requested: Int64, logStartOffset: Int64, highWatermark: Int64)
    /// A record or batch is over a configured limit.
    case tooLarge(String)
    /// An idempotent producer's batch is not the next in its sequence.
    case outOfOrderSequence(producerId: Int64, expected: Int32, received: Int32)

    public var description: String {
        switch self {
        case .io(let operation, let path, let code):
            return "\(operation) \(path): \(String(cString: strerror(code))) (errno \(code))"
        case .corruption(let path, let position, let reason):
            return "corrupt log data in \(path) at byte \(position): \(reason)"
        case .offline(let path, let cause):
            return "log \(path) is offline after a failed write or fsync (\(cause)); restart to recover it from disk"
        case .offsetOutOfRange(let requested, let start, let watermark):
            return "offset \(requested) is out of range: the log holds [\(start), \(watermark))"
        case .tooLarge(let what):
            return what
        case .outOfOrderSequence(let producer, let expected, let received):
            return "producer \(producer) sent sequence \(received) where \(expected) was expected"
        }
    }
}

/// The real file system, through POSIX calls.
public struct PosixFileSystem: FileSystem {
    /// Bounds the descriptors its files hold open at once.
    public let descriptors: DescriptorBudget

    public init(descriptors: DescriptorBudget = .shared) { self.descriptors = descriptors }

    public func open(_ path: String) throws -> any StorageFile { try PosixFile(path: path, budget: descriptors) }

    public func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public func list(_ directory: String) throws -> [String] {
        guard let dir = opendir(directory) else { throw StorageError.io(operation: "opendir", path: directory, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func createDirectory(_ path: String) throws {
        if exists(path) { return }
        let parent = parentDirectory(of: path)
        if parent != path && !exists(parent) { try createDirectory(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw StorageError.io(operation: "mkdir", path: path, errno: errno)
        }
    }

    public func rename(_ from: String, to: String) throws {
        if systemRename(from, to) != 0 { throw StorageError.io(operation: "rename to \(to)", path: from, errno: errno) }
    }

    public func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw StorageError.io(operation: "unlink", path: path, errno: errno) }
    }

    public func removeTree(_ path: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        if (status.st_mode & S_IFMT) == S_IFDIR {
            for name in try list(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 { throw StorageError.io(operation: "rmdir", path: path, errno: errno) }
        } else {
            try remove(path)
        }
    }

    public func syncDirectory(_ path: String) throws {
        let fd = systemOpen(path, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw StorageError.io(operation: "open directory", path: path, errno: errno) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw StorageError.io(operation: "fsync directory", path: path, errno: errno) }
    }
}

/// A file of the log whose descriptor the `DescriptorBudget` opens and closes: the first open
/// creates the file; when the budget has closed it, the next call opens it again by path.
///
/// The descriptor goes when the last reference goes. While open, it keeps a segment alive for a
/// reader even after retention unlinked it; once the budget closed it, such a read fails
/// (ENOENT) instead of seeing a new empty file.
final class PosixFile: StorageFile {
    let path: String
    private let budget: DescriptorBudget

    init(path: String, budget: DescriptorBudget) throws {
        self.path = path
        self.budget = budget
        budget.adopt(try budget.open(path), for: self)
    }

    deinit { budget.release(self) }

    func size() throws -> Int64 {
        try budget.withDescriptor(self) { fd in
            var status = stat()
            guard fstat(fd, &status) == 0 else { throw StorageError.io(operation: "fstat", path: path, errno: errno) }
            return Int64(status.st_size)
        }
    }

    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        guard count > 0 else { return [] }
        return try budget.withDescriptor(self) { fd in
            var filled = 0
            return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                while filled < count {
                    let n = pread(fd, buffer.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled))
                    if n < 0 {
                        if errno == EINTR { continue }
                        initialized = filled
                        throw StorageError.io(operation: "pread", path: path, errno: errno)
                    }
                    if n == 0 { break }
                    filled += n
                }
                initialized = filled
            }
        }
    }

    func write(_ bytes: [UInt8], at offset: Int64) throws {
        try budget.withDescriptor(self, write: true) { fd in
            try bytes.withUnsafeBytes { buffer in
                var done = 0
                while done < buffer.count {
                    let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw StorageError.io(operation: "pwrite", path: path, errno: errno)
                    }
                    done += n
                }
            }
        }
    }

    func sync() throws {
        try budget.sync(self) { fd in
            let start = ContinuousClock.now
            #if canImport(Darwin)
            let result = fsync(fd)
            #else
            let result = fdatasync(fd)
            #endif
            Self.syncDuration.recordNanoseconds((ContinuousClock.now - start).wholeNanoseconds)
            if result != 0 { throw StorageError.io(operation: "fdatasync", path: path, errno: errno) }
        }
    }

    /// `broker_fdatasync_duration_seconds`: every sync of a log file, the disk's own latency (what
    /// an acknowledged produce waits for, beside group commit).
    private static let syncDuration = CoreMetrics.Timer(label: "broker_fdatasync_duration_seconds")

    func truncate(to size: Int64) throws {
        try budget.withDescriptor(self, write: true) { fd in
            if ftruncate(fd, off_t(size)) != 0 { throw StorageError.io(operation: "ftruncate", path: path, errno: errno) }
        }
    }
}

// The C functions under names that the methods above do not shadow.
private func systemRename(_ from: String, _ to: String) -> Int32 { rename(from, to) }
func systemOpen(_ path: String, _ flags: Int32) -> Int32 { open(path, flags, 0o644) }
