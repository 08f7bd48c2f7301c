/// A call as the connection state machines' tests see it: only the credit it was opened with.
final class StateMachineCall {
    let credit: Int
    init(credit: Int) { self.credit = credit }
}
