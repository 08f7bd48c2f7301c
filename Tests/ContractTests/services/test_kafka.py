"""The broker's Kafka port (`--kafka-listen`) with clients no one here wrote: kcat (librdkafka
2.0.2, Debian), confluent-kafka (librdkafka 2.16) and kafka-python 3 (pure Python), plus raw
frames for the answers Kafka defines exactly (ApiVersions' v0 fallback, error codes). The same
topics are read and written through the jframe port in the same tests."""

import base64
import warnings
import json
import socket
import struct
import subprocess
import threading
import time

import confluent_kafka
import confluent_kafka.admin
import pytest

with warnings.catch_warnings():
    # kafka-python 3.0.12 loads its schemas with importlib.resources' deprecated read_text.
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka.protocol.schemas.load_json  # noqa: F401
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.record.default_records import DefaultRecordBatchBuilder

from processes import BrokerProcess

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.fixture
def kafka_broker(start_server, protocols):
    process = BrokerProcess(start_server, protocols, "--kafka-listen", "127.0.0.1:0", "--max-record-bytes", "65536")
    yield process
    process.cleanup()


def create_topic(broker, name: str, partitions: int = 1):
    broker.call("CreateTopic", {"name": name, "partitions": partitions})


# MARK: raw frames


class RawKafka:
    """One Kafka connection speaking frames by hand: for the replies Kafka defines byte for byte."""

    def __init__(self, address: str):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.correlation = 0

    def send(self, api_key: int, version: int, body: bytes, flexible_header: bool = False) -> int:
        self.correlation += 1
        client = b"raw-test"
        header = struct.pack(">hhih", api_key, version, self.correlation, len(client)) + client
        if flexible_header:
            header += b"\x00"
        frame = header + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        return self.correlation

    def receive(self) -> bytes:
        size = struct.unpack(">i", self._exactly(4))[0]
        return self._exactly(size)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by the broker")
            data += chunk
        return data

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def produce_v7(topic: str, partition: int, records: bytes, acks: int = -1) -> bytes:
    """A Produce v7 body (non-flexible): transactional id null, acks, timeout, one partition."""
    name = topic.encode()
    return (struct.pack(">hhi", -1, acks, 30000) + struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
            + struct.pack(">i", 1) + struct.pack(">i", partition) + struct.pack(">i", len(records)) + records)


def parse_produce_v7(body: bytes) -> dict:
    """correlation id, then [topic [partition error base_offset log_append_time log_start]] throttle."""
    offset = 4
    (topics,) = struct.unpack_from(">i", body, offset)
    offset += 4
    assert topics == 1
    (name_length,) = struct.unpack_from(">h", body, offset)
    offset += 2 + name_length
    (partitions,) = struct.unpack_from(">i", body, offset)
    offset += 4
    assert partitions == 1
    index, error, base, append_time, log_start = struct.unpack_from(">ihqqq", body, offset)
    return {"partition": index, "error": error, "baseOffset": base, "logStartOffset": log_start}


def batch(values: list[bytes], codec: str = "none", key: bytes | None = b"k") -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=CODEC_IDS[codec], is_transactional=0, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 24)
    for i, value in enumerate(values):
        builder.append(i, timestamp=None, key=key, value=value, headers=[])
    return bytes(builder.build())


def test_api_versions_every_version_and_the_v0_fallback(kafka_broker):
    raw = RawKafka(kafka_broker.running.kafka)
    # v0: error, [key min max]; the response header is v0 in every version.
    correlation = raw.send(18, 0, b"")
    reply = raw.receive()
    got, error, count = struct.unpack_from(">ihi", reply)
    assert (got, error) == (correlation, 0)
    ranges = {k: (lo, hi) for k, lo, hi in (struct.unpack_from(">hhh", reply, 10 + 6 * i) for i in range(count))}
    assert ranges[0] == (0, 9) and ranges[1][0] <= 4 <= ranges[1][1] and ranges[18] == (0, 4)
    # v3 (flexible request header and body: client software name and version, compact strings).
    body = bytes([len(b"raw") + 1]) + b"raw" + bytes([len(b"1.0") + 1]) + b"1.0" + b"\x00"
    correlation = raw.send(18, 3, body, flexible_header=True)
    reply = raw.receive()
    got, error = struct.unpack_from(">ih", reply)
    assert (got, error) == (correlation, 0)
    assert reply[6] == len(ranges) + 1  # compact array of the same keys
    # A version above ours: the v0 reply with UNSUPPORTED_VERSION and our ranges (KIP-511).
    correlation = raw.send(18, 9, b"whatever", flexible_header=True)
    reply = raw.receive()
    got, error, count = struct.unpack_from(">ihi", reply)
    assert (got, error, count) == (correlation, 35, len(ranges))
    raw.close()


def test_a_request_kafka_would_not_serve_closes_the_connection(kafka_broker):
    for api_key, version in [(9999, 0), (0, 2), (1, 99)]:  # unknown key; Produce v2 (advertised, refused); Fetch v99
        raw = RawKafka(kafka_broker.running.kafka)
        raw.send(api_key, version, b"\x00" * 16)
        assert raw.closed_by_peer(), (api_key, version)
        raw.close()
    # A frame over the request size limit closes before its bytes are read.
    raw = RawKafka(kafka_broker.running.kafka)
    raw.sock.sendall(struct.pack(">i", 500 << 20) + b"\x00" * 64)
    assert raw.closed_by_peer()
    raw.close()
    # A body that does not parse (Produce v7 cut short) closes too; the broker keeps serving.
    raw = RawKafka(kafka_broker.running.kafka)
    raw.send(0, 7, produce_v7("t", 0, b"")[:9])
    assert raw.closed_by_peer()
    raw.close()
    assert kafka_broker.call("ListTopics", {})["topics"] == []


def test_produce_error_codes_as_kafka_defines_them(kafka_broker):
    create_topic(kafka_broker, "errors")
    raw = RawKafka(kafka_broker.running.kafka)

    def produce(topic, records, partition=0, acks=-1):
        raw.send(0, 7, produce_v7(topic, partition, records, acks))
        return parse_produce_v7(raw.receive())

    good = produce("errors", batch([b'{"n":1}', b'{"n":2}'], "gzip"))
    assert (good["error"], good["baseOffset"]) == (0, 0)
    assert produce("missing", batch([b"1"]))["error"] == 3  # UNKNOWN_TOPIC_OR_PARTITION
    assert produce("errors", batch([b"1"]), partition=7)["error"] == 3
    assert produce("errors", batch([b"x" * 70000]))["error"] == 10  # MESSAGE_TOO_LARGE (--max-record-bytes 65536)
    corrupt = bytearray(batch([b'{"n":3}']))
    corrupt[-3] ^= 0xFF  # a record byte: the CRC-32C no longer matches
    assert produce("errors", bytes(corrupt))["error"] == 2  # CORRUPT_MESSAGE
    assert produce("errors", batch([b"1"]) + batch([b"2"]))["error"] == 87  # INVALID_RECORD: one batch per partition
    assert produce("errors", batch([b"1"]), acks=5)["error"] == 21  # INVALID_REQUIRED_ACKS
    # Nothing refused was stored: the two good records only.
    assert [r["value"] for r in kafka_broker.fetch_all("errors", 0)] == [{"n": 1}, {"n": 2}]
    # acks=0: no response at all; the next request's response is the next one read.
    raw.send(0, 7, produce_v7("errors", 0, batch([b'{"n":4}']), acks=0))
    after = produce("errors", batch([b'{"n":5}']))
    assert (after["error"], after["baseOffset"]) == (0, 3)
    raw.close()


# MARK: kcat


def kcat(*args: str, stdin: str | None = None, timeout: float = 30) -> str:
    done = subprocess.run(["kcat", *args], input=stdin, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kcat_reads_what_jframe_wrote_and_the_reverse_with_every_codec(kafka_broker):
    address = kafka_broker.running.kafka
    create_topic(kafka_broker, "OnNewOrder", partitions=3)
    listing = kcat("-b", address, "-L", "-J")
    topics = {t["topic"]: t for t in json.loads(listing)["topics"]}
    assert len(topics["OnNewOrder"]["partitions"]) == 3
    # jframe → Kafka: same key, value, headers, offset.
    wrote = kafka_broker.call("Produce", {"topic": "OnNewOrder", "records": [
        {"key": "order-7", "value": {"orderId": "order-7", "quantity": 2}, "headers": {"type": "OrderPlaced"}}]})
    position = wrote["results"][0]
    lines = kcat("-b", address, "-C", "-t", "OnNewOrder", "-o", "beginning", "-e", "-J").splitlines()
    seen = [json.loads(line) for line in lines if line.startswith("{")]
    assert [(r["partition"], r["offset"], r["key"], json.loads(r["payload"]), r["headers"]) for r in seen] == [
        (position["partition"], int(position["offset"]), "order-7", {"orderId": "order-7", "quantity": 2}, ["type", "OrderPlaced"])]
    # Kafka → jframe, one codec each: with murmur2 (Java's partitioner) keys land where jframe puts them.
    for codec in CODECS:
        kcat("-b", address, "-P", "-t", "OnNewOrder", "-K:", "-z", codec, "-H", f"codec={codec}", "-X", "enable.idempotence=true",
             "-X", "partitioner=murmur2_random", stdin=f'order-{codec}:{{"codec":"{codec}"}}\n')
    for codec in CODECS:
        from processes import kafka_partition
        partition = kafka_partition(f"order-{codec}", 3)
        records = [r for r in kafka_broker.fetch_all("OnNewOrder", partition) if r.get("key") == f"order-{codec}"]
        assert [(r["value"], r["headers"]) for r in records] == [({"codec": codec}, {"codec": codec})]
    # A value that is not JSON reaches jframe readers base64-encoded, never as broken JSON.
    create_topic(kafka_broker, "plain")
    kcat("-b", address, "-P", "-t", "plain", "-K:", stdin="k1:not json at all\n")
    (record,) = kafka_broker.fetch_all("plain", 0)
    assert "value" not in record and base64.b64decode(record["valueBase64"]) == b"not json at all"
    assert kcat("-b", address, "-C", "-t", "plain", "-e", "-q", "-f", "%k=%s\\n") == "k1=not json at all\n"


# MARK: confluent-kafka


def test_confluent_kafka_idempotent_producer_and_consumer_with_every_codec(kafka_broker):
    address = kafka_broker.running.kafka
    create_topic(kafka_broker, "ck", partitions=2)
    expected = []
    for codec in CODECS:
        producer = confluent_kafka.Producer({"bootstrap.servers": address, "enable.idempotence": True, "acks": "all",
                                             "compression.type": codec, "partitioner": "murmur2_random", "linger.ms": 5})
        acked = []
        for i in range(200):
            value = json.dumps({"codec": codec, "i": i})
            producer.produce("ck", key=f"{codec}-{i}", value=value, headers=[("codec", codec.encode())],
                             on_delivery=lambda error, message: acked.append((error, message.partition(), message.offset(), message.value())))
        assert producer.flush(30) == 0
        assert [a for a in acked if a[0] is not None] == []
        expected += acked
    # Every acknowledged record at its offset, once, through the jframe port.
    for partition in (0, 1):
        stored = {int(r["offset"]): json.dumps(r["value"], separators=(", ", ": ")) for r in kafka_broker.fetch_all("ck", partition)}
        mine = {offset: value.decode() for _, p, offset, value in expected if p == partition}
        assert len(stored) == len(mine) and {o: json.loads(v) for o, v in stored.items()} == {o: json.loads(v) for o, v in mine.items()}
    # A consumer from the beginning and from an offset.
    consumer = confluent_kafka.Consumer({"bootstrap.servers": address, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([confluent_kafka.TopicPartition("ck", 0, 0), confluent_kafka.TopicPartition("ck", 1, 100)])
    got = []
    deadline = time.time() + 30
    want = len([1 for _, p, o, _ in expected if p == 0 or o >= 100])
    while len(got) < want and time.time() < deadline:
        message = consumer.poll(1)
        if message is None:
            continue
        assert message.error() is None, message.error()
        got.append((message.partition(), message.offset(), message.key().decode(), dict(message.headers())))
    consumer.close()
    assert len(got) == want
    assert all(offset >= 100 for p, offset, _, _ in got if p == 1)
    assert all(headers["codec"].decode() == key.split("-")[0] for _, _, key, headers in got)


def test_confluent_kafka_reports_an_unknown_topic(kafka_broker):
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_broker.running.kafka, "message.timeout.ms": 3000})
    errors = []
    producer.produce("nowhere", value=b"{}", on_delivery=lambda error, _: errors.append(error))
    producer.flush(10)
    assert len(errors) == 1 and errors[0].code() in (confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART,
                                                   confluent_kafka.KafkaError._UNKNOWN_TOPIC,
                                                   confluent_kafka.KafkaError._MSG_TIMED_OUT)


def test_idempotent_producer_through_kill_9_stores_every_acknowledged_record_once(kafka_broker):
    """confluent-kafka's idempotent producer keeps sending while the broker is killed and started
    again on its data: every acknowledged record is stored exactly once, and nothing twice."""
    address = kafka_broker.running.kafka
    create_topic(kafka_broker, "survive", partitions=2)
    producer = confluent_kafka.Producer({"bootstrap.servers": address, "enable.idempotence": True, "acks": "all",
                                         "linger.ms": 2, "message.timeout.ms": 60000, "partitioner": "murmur2_random",
                                         "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
    acked, failed = set(), []

    def delivered(error, message):
        if error:
            failed.append(error)
        else:
            acked.add(json.loads(message.value())["i"])

    total = 3000
    for i in range(total):
        producer.produce("survive", key=f"k{i % 50}", value=json.dumps({"i": i}), on_delivery=delivered)
        producer.poll(0)
        if i == total // 2:
            producer.flush(30)
            kafka_broker.kill()
            # Keep producing into the client's queue while the broker is down.
        if i == total // 2 + 500:
            kafka_broker.start()
    assert producer.flush(90) == 0
    assert failed == []
    stored = [r["value"]["i"] for p in (0, 1) for r in kafka_broker.fetch_all("survive", p)]
    assert len(stored) == len(set(stored)), "a record was stored twice"
    assert acked <= set(stored)
    assert len(acked) == total


# MARK: kafka-python


def test_kafka_python_admin_produce_list_offsets_and_consume(kafka_broker):
    address = kafka_broker.running.kafka
    admin = KafkaAdminClient(bootstrap_servers=address)
    admin.create_topics([NewTopic("kp", 2, 1, topic_configs={"cleanup.policy": "delete", "retention.ms": "3600000"})])
    with pytest.raises(Exception, match="TopicAlreadyExists"):
        admin.create_topics([NewTopic("kp", 2, 1)])
    with pytest.raises(Exception, match="InvalidConfig|INVALID_CONFIG"):
        admin.create_topics([NewTopic("kp2", 1, 1, topic_configs={"no.such.config": "1"})])
    assert len(kafka_broker.call("DescribeTopic", {"name": "kp"})["partitions"]) == 2
    before = int(time.time() * 1000)
    sent = 0
    for codec in CODECS:
        producer = KafkaProducer(bootstrap_servers=address, acks="all", enable_idempotence=True,
                                 compression_type=None if codec == "none" else codec)
        futures = [producer.send("kp", key=f"{codec}-{i}".encode(), value=json.dumps({"i": i}).encode(), headers=[("c", codec.encode())],
                                 partition=i % 2) for i in range(40)]
        producer.flush()
        assert all(f.get(10).offset >= 0 for f in futures)
        producer.close()
        sent += 40
    consumer = KafkaConsumer(bootstrap_servers=address, consumer_timeout_ms=3000, enable_auto_commit=False)
    partitions = [TopicPartition("kp", 0), TopicPartition("kp", 1)]
    assert consumer.beginning_offsets(partitions) == {p: 0 for p in partitions}
    assert consumer.end_offsets(partitions) == {p: sent // 2 for p in partitions}
    by_time = consumer.offsets_for_times({partitions[0]: before})
    assert by_time[partitions[0]].offset == 0
    assert consumer.offsets_for_times({partitions[0]: int(time.time() * 1000) + 3_600_000})[partitions[0]] is None
    consumer.assign(partitions)
    consumer.seek(partitions[0], 0)
    consumer.seek(partitions[1], 70)
    got = list(consumer)
    assert len(got) == sent // 2 + (sent // 2 - 70)
    assert {(m.partition, m.offset) for m in got if m.partition == 1} == {(1, o) for o in range(70, sent // 2)}
    consumer.close()
    admin.delete_topics(["kp"])
    assert kafka_broker.call("ListTopics", {})["topics"] == []
    admin.close()


def test_describe_configs_lists_a_topics_configs_for_both_python_clients(kafka_broker):
    address = kafka_broker.running.kafka
    admin = confluent_kafka.admin.AdminClient({"bootstrap.servers": address})
    created = admin.create_topics([confluent_kafka.admin.NewTopic("configured", 2, 1, config={"cleanup.policy": "compact",
                                                                                            "retention.ms": "60000"})])
    created["configured"].result(10)
    resource = confluent_kafka.admin.ConfigResource(confluent_kafka.admin.ResourceType.TOPIC, "configured")
    configs = admin.describe_configs([resource])[resource].result(10)
    assert configs["cleanup.policy"].value == "compact" and configs["retention.ms"].value == "60000"
    assert configs["segment.bytes"].value == str(64 << 20) and configs["segment.bytes"].is_default
    assert configs["max.message.bytes"].value == "65536" and configs["max.message.bytes"].is_read_only
    missing = confluent_kafka.admin.ConfigResource(confluent_kafka.admin.ResourceType.TOPIC, "absent")
    with pytest.raises(confluent_kafka.KafkaException):
        admin.describe_configs([missing])[missing].result(10)
    from kafka.admin import ConfigResource, ConfigResourceType
    kp = KafkaAdminClient(bootstrap_servers=address)
    described = kp.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "configured")])
    text = str(described)
    assert "cleanup.policy" in text and "compact" in text
    kp.close()


def test_a_fetch_waits_for_a_record_then_returns_it_at_once(kafka_broker):
    address = kafka_broker.running.kafka
    create_topic(kafka_broker, "wait")
    consumer = confluent_kafka.Consumer({"bootstrap.servers": address, "group.id": "unused", "fetch.wait.max.ms": 5000,
                                         "enable.auto.commit": False})
    consumer.assign([confluent_kafka.TopicPartition("wait", 0, 0)])
    consumer.poll(0.5)  # the consumer is now parked in a long-poll Fetch
    threading.Timer(0.5, lambda: kafka_broker.call("Produce", {"topic": "wait", "records": [{"value": 1}]})).start()
    started = time.time()
    message = None
    while message is None and time.time() - started < 10:
        message = consumer.poll(0.2)
    consumer.close()
    assert message is not None and message.value() == b"1"
    assert time.time() - started < 3, "the long poll did not wake when the record arrived"


# MARK: consumer groups (the classic protocol)


@pytest.fixture
def group_broker(start_server, protocols):
    process = BrokerProcess(start_server, protocols, "--kafka-listen", "127.0.0.1:0", "--kafka-group-session-timeouts", "1000:60000")
    yield process
    process.cleanup()


def group_consumer(address: str, group: str, **extra) -> confluent_kafka.Consumer:
    return confluent_kafka.Consumer({"bootstrap.servers": address, "group.id": group, "auto.offset.reset": "earliest",
                                     "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 300,
                                     "topic.metadata.refresh.interval.ms": 1000, **extra})


def drain(consumers: list, until, timeout: float = 60) -> dict:
    """Polls the consumers in turn, committing each record synchronously, until `until(seen)`.
    A commit refused because the group is rebalancing (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION)
    is what Kafka answers too: that record may come again (at least once), and is counted under
    "uncommitted"."""
    seen: dict = {}
    deadline = time.time() + timeout
    while not until(seen) and time.time() < deadline:
        for name, consumer in consumers:
            message = consumer.poll(0.1)
            if message is None or message.error():
                continue
            seen.setdefault(name, []).append((message.partition(), message.offset(), message.value()))
            try:
                consumer.commit(message=message, asynchronous=False)
            except confluent_kafka.KafkaException as refused:
                assert refused.args[0].code() in (confluent_kafka.KafkaError.REBALANCE_IN_PROGRESS,
                                                  confluent_kafka.KafkaError.ILLEGAL_GENERATION), refused
                seen.setdefault("uncommitted", []).append(message.value())
    return seen


def values(seen: dict, *names: str) -> list[int]:
    return sorted(int(value) for name in names for _, _, value in seen.get(name, []))


def test_kcat_group_consumer_commits_what_cqrs_groups_describe_shows(group_broker):
    address = group_broker.running.kafka
    create_topic(group_broker, "kg", partitions=4)
    kcat("-b", address, "-P", "-t", "kg", "-K:", stdin="".join(f"k{i}:{{\"i\":{i}}}\n" for i in range(20)))
    out = kcat("-b", address, "-G", "kcat-group", "kg", "-o", "beginning", "-e", "-q", "-f", "%p@%o\\n", timeout=60)
    assert len(out.splitlines()) == 20
    described = group_broker.call("DescribeGroup", {"group": "kcat-group"})
    committed = {p["partition"]: int(p["committedOffset"]) for p in described["partitions"] if p.get("committedOffset") is not None}
    ends = {p: int(group_broker.call("ListOffsets", {"topic": "kg", "partition": p, "spec": "LATEST"})["offset"]) for p in range(4)}
    assert committed == {p: end for p, end in ends.items() if end > 0}


def test_a_group_of_two_splits_the_partitions_rebalances_when_one_leaves_and_resumes_after_a_restart(group_broker):
    address = group_broker.running.kafka
    create_topic(group_broker, "work", partitions=4)
    producer = confluent_kafka.Producer({"bootstrap.servers": address, "enable.idempotence": True, "partitioner": "murmur2_random"})

    def produce(start: int, count: int):
        for i in range(start, start + count):
            producer.produce("work", key=f"k{i}", value=str(i))
        assert producer.flush(30) == 0

    produce(0, 200)
    a, b = group_consumer(address, "workers"), group_consumer(address, "workers")
    a.subscribe(["work"])
    b.subscribe(["work"])
    seen = drain([("a", a), ("b", b)], lambda s: len(set(values(s, "a", "b"))) >= 200 and "a" in s and "b" in s)
    assert set(values(seen, "a", "b")) == set(range(200))
    assert len(values(seen, "a", "b")) - 200 <= len(seen.get("uncommitted", [])), "a record came twice though it was committed"
    # Once both have joined, the group splits the partitions between them (who joined first may
    # have read some partitions alone before the second came: they moved, they were not shared).
    drain([("a", a), ("b", b)], lambda s: False, timeout=2)
    owned_a = {tp.partition for tp in a.assignment()}
    owned_b = {tp.partition for tp in b.assignment()}
    assert owned_a and owned_b and not owned_a & owned_b and owned_a | owned_b == {0, 1, 2, 3}, (owned_a, owned_b)
    # b leaves (LeaveGroup): a takes every partition.
    b.close()
    produce(200, 100)
    later = drain([("a", a)], lambda s: set(range(200, 300)) <= set(values(s, "a")))
    assert set(range(200, 300)) <= set(values(later, "a"))
    assert {p for p, _, _ in later["a"]} == {0, 1, 2, 3}
    # Records whose commit met the rebalance come again from the committed offsets (at least
    # once) and are committed then: keep consuming until every partition's commit is at its end.
    ends = {p: int(group_broker.call("ListOffsets", {"topic": "work", "partition": p, "spec": "LATEST"})["offset"]) for p in range(4)}

    def all_committed(_):
        committed = a.committed([confluent_kafka.TopicPartition("work", p) for p in range(4)], timeout=10)
        return {tp.partition: tp.offset for tp in committed} == ends

    drain([("a", a)], all_committed, timeout=30)
    assert all_committed(None)
    a.close()
    # The committed offsets survive a restart of the broker: a new member resumes after them.
    group_broker.restart()
    produce(300, 10)
    c = group_consumer(group_broker.running.kafka, "workers")
    c.subscribe(["work"])
    resumed = drain([("c", c)], lambda s: len(s.get("c", [])) >= 10, timeout=40)
    time.sleep(1)
    extra = c.poll(1)
    c.close()
    assert values(resumed, "c") == list(range(300, 310))
    assert extra is None or extra.error() is not None, "nothing before the committed offsets came again"


def test_kafka_python_group_consumer_commits_and_a_new_member_resumes(group_broker):
    address = group_broker.running.kafka
    create_topic(group_broker, "kpg", partitions=3)
    producer = KafkaProducer(bootstrap_servers=address)
    for i in range(30):
        producer.send("kpg", key=f"k{i}".encode(), value=str(i).encode())
    producer.flush()
    consumer = KafkaConsumer("kpg", bootstrap_servers=address, group_id="kp-group", auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=8000, session_timeout_ms=6000, heartbeat_interval_ms=500)
    got = []
    for message in consumer:
        got.append(int(message.value))
        if len(got) == 20:
            break
    consumer.commit()
    consumer.close()
    assert len(got) == 20
    for i in range(30, 35):
        producer.send("kpg", key=f"k{i}".encode(), value=str(i).encode())
    producer.flush()
    producer.close()
    again = KafkaConsumer("kpg", bootstrap_servers=address, group_id="kp-group", auto_offset_reset="earliest",
                          enable_auto_commit=False, consumer_timeout_ms=8000, session_timeout_ms=6000, heartbeat_interval_ms=500)
    rest = [int(m.value) for m in again]
    again.close()
    assert sorted(got + rest) == list(range(35)), "the second member started at the first one's committed offsets"
