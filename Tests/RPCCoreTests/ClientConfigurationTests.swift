import RPCCore
import Testing

@Suite("Client reconnect backoff")
struct ClientConfigurationTests {
    @Test func backoffGrowsByTheMultiplierUpToTheCapWithJitter() {
        var configuration = ClientConfiguration.defaults
        configuration.initialBackoff = .milliseconds(100)
        configuration.backoffMultiplier = 2
        configuration.maxBackoff = .seconds(1)
        for _ in 0..<50 {
            #expect((.milliseconds(80)...(.milliseconds(120))).contains(configuration.backoff(afterFailures: 1)))
            #expect((.milliseconds(320)...(.milliseconds(480))).contains(configuration.backoff(afterFailures: 3)))
            #expect((.milliseconds(800)...(.milliseconds(1200))).contains(configuration.backoff(afterFailures: 30)))
        }
    }
}
