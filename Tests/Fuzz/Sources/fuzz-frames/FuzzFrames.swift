import FuzzSupport
import NIOCore
import RPCCore
import RPCTransportTCP

@main
enum Target {
    static func main() { runFuzzer { data, count in fuzzFrames(data, count) } }
}

/// The TCP frame decoder on arbitrary bytes, arriving in chunks whose size the input chooses (its
/// first byte), as reads from a socket would, buffered as NIO's ByteToMessageHandler buffers them.
/// Every whole frame must be exactly the bytes it came from (re-encoding it finds them, in order),
/// no frame over the limit is delivered whole, and an oversized one is reported with its length.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrames(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start = data, count > 0 else { return 0 }
    let chunk = Int(start.pointee % 32) + 1
    let bytes = Array(UnsafeBufferPointer(start: start + 1, count: count - 1))
    var limits = ConnectionLimits.defaults
    limits.maxFrameBytes = 1024
    limits.maxSkippableFrameBytes = 4096
    var decoder = FrameDecoder(limits: limits)
    var buffer = ByteBuffer()
    var events: [FrameEvent] = []
    var offset = 0
    reading: while offset < bytes.count {
        let end = min(offset + chunk, bytes.count)
        buffer.writeBytes(bytes[offset..<end])
        offset = end
        while true {
            let step: FrameDecoder.Step
            do {
                step = try decoder.step(&buffer)
            } catch let error as FrameTooLargeError {
                precondition(error.length > limits.maxSkippableFrameBytes, "refused a frame within the skippable limit")
                break reading  // the connection ends here
            } catch {
                fatalError("unexpected decoder error: \(error)")
            }
            guard case .event(let event) = step else {
                if case .needMoreData = step { break }
                continue
            }
            events.append(event)
        }
        buffer.discardReadBytes()
    }
    var searchFrom = 0
    for event in events {
        switch event {
        case .frame(let frame):
            precondition(frame.payload.count <= limits.maxFrameBytes, "a frame over the limit was delivered whole")
            var one = ByteBuffer()
            frame.encode(into: &one)
            let wanted = Array(one.readableBytesView)
            guard let at = firstIndex(of: wanted, in: bytes, from: searchFrom) else {
                fatalError("frame \(frame.type) on stream \(frame.streamID) does not match the bytes it came from")
            }
            searchFrom = at + wanted.count
        case .oversizedFrame(_, _, let length):
            precondition(length > limits.maxFrameBytes && length <= limits.maxSkippableFrameBytes, "oversized report of \(length) bytes")
        case .partialFrame:
            fatalError("partial frames are steps, not events")
        }
    }
    return 0
}

private func firstIndex(of needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
    var index = start
    while index + needle.count <= haystack.count {
        if haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
        index += 1
    }
    return nil
}
