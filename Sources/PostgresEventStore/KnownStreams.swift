/// What one store knows of the head and of streams' versions from its own reads and writes.
/// While the database's head is at `head` they are exact (every append moves the head); after
/// another replica moved it (`moved(to:)`) a version may be behind that replica's appends.
///
/// Why: with it a batch of appends to streams the store has seen is decided without reading
/// (`AppendBatchPlan` from memory) and written by one statement that moves the head only if it is
/// still at `head`; a lone command then costs one round trip. When the head moved (another
/// replica appended), that statement writes nothing and answers where the head is, and the batch
/// is planned again there. A version memory holds behind the stored one cannot write: versions
/// grow one by one, so the version it would write is stored already, the statement fails on
/// `(stream_id, stream_version)`, and the batch goes the reading way, which learns the stream
/// again. Pure state: the store keeps it behind a lock.
struct KnownStreams {
    /// The head the versions are exact at; nil: nothing known.
    private(set) var head: Int64?
    private var versions: [String: Int64] = [:]
    /// Most streams remembered; past it they are forgotten and learned again.
    let capacity: Int

    init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    var count: Int { versions.count }

    /// A plan for appends to `streamIds`, from memory; nil when the head or any stream is unknown.
    func plan(for streamIds: [String]) -> AppendBatchPlan? {
        guard let head else { return nil }
        var known: [String: Int64] = [:]
        for streamId in streamIds {
            guard let version = versions[streamId] else { return nil }
            if version > 0 { known[streamId] = version }
        }
        return AppendBatchPlan(head: head, commands: [:], events: [:], versions: known)
    }

    /// After a batch that read or wrote at `base` (the head its reads saw or its lock found) and
    /// left the head at `head`: `streamVersions` are exact there. What was known at another head
    /// is dropped first (the head moved elsewhere in between).
    mutating func learned(at base: Int64, _ streamVersions: [(String, Int64)], head: Int64) {
        if self.head != base || versions.count + streamVersions.count > capacity { versions = [:] }
        for (streamId, version) in streamVersions { versions[streamId] = version }
        self.head = head
    }

    /// Another replica moved the head to `head`: the versions stay (a stale one cannot write,
    /// see above), positions are planned from there.
    mutating func moved(to head: Int64) {
        guard self.head != nil else { return }
        self.head = head
    }

    /// An outcome is unknown, or the head keeps moving: nothing is known any more.
    mutating func forget() {
        head = nil
        versions = [:]
    }
}
