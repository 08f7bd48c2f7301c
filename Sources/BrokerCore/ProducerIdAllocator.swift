import LogStorage
import Synchronization

/// Hands out producer ids that are never reused, across restarts too. Ids are reserved in blocks
/// of 1000 written durably before the first id of a block is given out (as Kafka's controller
/// does), so a crash skips the rest of a block rather than repeating an id.
final class ProducerIdAllocator: Sendable {
    static let blockSize: Int64 = 1000

    private let path: String
    private let fileSystem: any FileSystem
    private let state: Mutex<(next: Int64, reservedEnd: Int64)>

    init(path: String, fileSystem: any FileSystem) throws {
        self.path = path
        self.fileSystem = fileSystem
        let stored = try fileSystem.readWholeFile(path).flatMap { Int64(String(decoding: $0, as: UTF8.self)) } ?? 0
        state = Mutex((stored, stored))
    }

    func next() throws -> Int64 {
        try state.withLock { state in
            if state.next == state.reservedEnd {
                let end = state.reservedEnd + Self.blockSize
                try fileSystem.writeAtomically(path, Array(String(end).utf8))
                state.reservedEnd = end
            }
            defer { state.next += 1 }
            return state.next
        }
    }
}
