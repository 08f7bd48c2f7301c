import RPCCore
import RPCHosting
import Testing

@Suite("Server options")
struct ServerOptionsTests {
    @Test("--stream-window-bytes sets the request streams' byte window; 0 turns it off; negative is refused")
    func streamWindowBytes() throws {
        #expect(try ServerOptions.parse([]).configuration().limits.streamWindowBytes == ConnectionLimits.defaults.streamWindowBytes)
        #expect(try ServerOptions.parse(["--stream-window-bytes", "65536"]).configuration().limits.streamWindowBytes == 65536)
        #expect(try ServerOptions.parse(["--stream-window-bytes", "0"]).configuration().limits.streamWindowBytes == 0)
        #expect(throws: (any Error).self) { try ServerOptions.parse(["--stream-window-bytes", "-1"]) }
    }
}
