import KafkaClient
import Testing

@Suite struct KafkaBusLocationTests {
    @Test func bootstrapServersAndLibrdkafkaPropertiesComeFromTheURL() throws {
        let location = try KafkaBusLocation(
            url: "kafka://k1:9092,k2:19092?security.protocol=SASL_SSL&sasl.username=ada&sasl.password=p%40ss%26w0rd&linger.ms=5")
        #expect(location.bootstrapServers == ["k1:9092", "k2:19092"])
        #expect(location.properties.map(\.name) == ["security.protocol", "sasl.username", "sasl.password", "linger.ms"])
        #expect(location.properties[2].value == "p@ss&w0rd", "percent-decoded")
        #expect(location.description == "kafka://k1:9092,k2:19092?security.protocol=SASL_SSL&sasl.username=ada&sasl.password=***&linger.ms=5")
        #expect(try KafkaBusLocation(url: "kafka://[::1]:9093").bootstrapServers == ["[::1]:9093"])
        #expect(try KafkaBusLocation(url: "kafka://localhost:9093/").properties.isEmpty)
    }

    @Test(arguments: [
        ("localhost:9093", "kafka://host:port"),
        ("kafka://", "host:port"),
        ("kafka://localhost", "host:port"),
        ("kafka://localhost:0", "port 1 to 65535"),
        ("kafka://a:1,,b:2", "host:port"),
        ("kafka://a:1?linger.ms", "property=value"),
        ("kafka://a:1?x=%zz", "property=value"),
        ("kafka://a:1?enable.idempotence=false", "set by the bus itself"),
        ("kafka://a:1?group.id=other", "set by the bus itself"),
        ("kafka://a:1?bootstrap.servers=b:2", "set by the bus itself"),
    ])
    func aBadLocationSaysWhatIsWrong(url: String, says: String) {
        #expect {
            _ = try KafkaBusLocation(url: url)
        } throws: { error in
            "\(error)".contains(says)
        }
    }

    @Test func aSecretInABadQueryIsNotRepeated() {
        #expect {
            _ = try KafkaBusLocation(url: "kafka://a:1?sasl.password=hunter2&x")
        } throws: { error in
            !"\(error)".contains("hunter2")
        }
    }

    @Test func theFlagIsOptional() throws {
        #expect(try BusFlag.kafkaLocation(nil) == nil)
        #expect(try BusFlag.kafkaLocation("") == nil)
        #expect(try BusFlag.kafkaLocation("kafka://a:1")?.bootstrapServers == ["a:1"])
    }
}
