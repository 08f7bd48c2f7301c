/// The deadline of the call being served, carried across `await`s so that calls a handler makes
/// to other services inherit what is left of its budget, and so that what it waits on below the
/// RPC layer (a database transaction) can be bounded by it. Here, beside the clocks, so that
/// modules without RPC (the event stores) can read it.
public enum CallDeadline {
    @TaskLocal public static var current: ContinuousClock.Instant?
}
