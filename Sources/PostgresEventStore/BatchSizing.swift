/// How many queued appends the writer takes for its next transaction: all of them (up to the
/// batch limit), except just after it waited for work longer than its shortest recent
/// transaction took while no other replica appended, when it takes half of them.
///
/// Why not always all: the store's callers, the command-service's event loops and the writer
/// form a closed loop. Under load the writer answers every caller of a batch at once and waits
/// while the loops run those callers' next commands; the first to arrive wakes it, but the
/// wake-up is queued on a busy loop behind the rest, so the writer takes them all again. The
/// database and the loops then take turns, each idle while the other works: 64 clients on two
/// cores, the writer waited 52% of the time for batches of 60, and half the machine sat idle.
/// Taking half splits the callers into two groups that alternate, one group's commands running
/// while the other's transaction commits; the writer then finds the other group queued as each
/// batch ends and no longer waits, so it takes all that is queued again and the groups stay
/// apart (measured: the writer busy 95-99% of the time; 16,418 to 22,274 deposits a second).
///
/// Why only after such a wait: the extra transaction costs its fixed part (a round trip and a
/// WAL flush), and splitting pays only when the wait it hides is longer than that. The shortest
/// recent transaction, whatever its size, is never shorter than the fixed part, so the rule
/// never splits where it loses: with 4 clients (a wait of about half a transaction that is
/// mostly its flush) splitting by half the last transaction instead cost 16%; with a slow disk
/// batches stay whole; a lone caller's batch of one is one either way.
///
/// Why only while no other replica appends: replicas' transactions take turns on the head lock,
/// each holding it through its flush, so there every extra transaction costs a whole turn, not
/// just its fixed part, and a split lasts (the groups stay apart). Two replicas, 16 clients: a
/// handful of splits in 2,000 transactions, made in moments when the other replica was quiet,
/// cost 40% of the deposits (4,287 a second against 6,635 whole). So the writer splits only
/// after `aloneBeforeSplitting` transactions in a row each found the head where its last one
/// left it.
struct BatchSizing {
    let maxBatch: Int
    /// The shortest recent transaction, from its first statement to its answers (nil: none yet).
    /// It rises a thirty-second of the way towards each longer one, so a fast moment (an idle
    /// disk, a batch of one) is forgotten over a few dozen transactions.
    private(set) var shortestCommit: Duration?
    /// The head the writer's last transaction left (nil: none yet).
    private var lastHead: Int64?
    /// How many transactions in a row found the head where the one before them left it: no
    /// other replica appended in between.
    private(set) var aloneInARow = 0
    static let aloneBeforeSplitting = 64

    init(maxBatch: Int) {
        self.maxBatch = maxBatch
    }

    /// A transaction of the writer's took `duration`, finding the head at `base` and leaving it
    /// at `head`.
    mutating func committed(in duration: Duration, from base: Int64, to head: Int64) {
        aloneInARow = lastHead == base ? aloneInARow + 1 : 0
        lastHead = head
        guard let shortest = shortestCommit, duration > shortest else {
            shortestCommit = duration
            return
        }
        shortestCommit = shortest + (duration - shortest) / 32
    }

    /// How many of `queued` jobs to take; `waited` is how long the writer waited for the first of
    /// them (nil: they were queued when it looked).
    func take(queued: Int, waited: Duration?) -> Int {
        let all = min(queued, maxBatch)
        guard aloneInARow >= Self.aloneBeforeSplitting, let waited, let shortestCommit, waited > shortestCommit else { return all }
        return (all + 1) / 2
    }
}
