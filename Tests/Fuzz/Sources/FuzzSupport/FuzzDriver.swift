import RPCCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// libFuzzer's entry for programs that have their own `main` (SwiftPM gives every executable
/// one): it parses the usual libFuzzer flags and calls `test` with each input.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs libFuzzer with the process's arguments on `test`, then exits with its status.
///
/// The main thread, which runs every input, may grow its stack to 1 MiB only: recursion that a
/// peer's input drives past the JSON nesting bound then overflows within the inputs' length
/// (a few thousand brackets), so the fuzzer finds it, where 8 MiB would need ~90 KB inputs.
public func runFuzzer(_ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var stack = rlimit()
    if getrlimit(rlimitStack, &stack) == 0 {
        stack.rlim_cur = min(stack.rlim_cur, 1 << 20)
        _ = setrlimit(rlimitStack, &stack)
    }
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, test))
}

#if canImport(Glibc)
private let rlimitStack = __rlimit_resource_t(RLIMIT_STACK.rawValue)
#else
private let rlimitStack = RLIMIT_STACK
#endif

/// The property the JSON targets check: bytes that decode as `type` encode to JSON that decodes
/// to the same value (so nothing a client sends is read one way and written back another).
public func checkStableRoundTrip<Message: Codable & Hashable>(_ type: Message.Type, _ bytes: [UInt8]) {
    guard let value = try? MessageCoding.decode(type, from: bytes) else { return }
    guard let encoded = try? MessageCoding.encode(value) else { fatalError("\(type) decoded but does not encode: \(value)") }
    guard let again = try? MessageCoding.decode(type, from: encoded) else {
        fatalError("\(type) encoded to JSON it cannot read back: \(String(decoding: encoded, as: UTF8.self))")
    }
    precondition(again == value, "\(type) changed across a round trip: \(value) -> \(again)")
}
