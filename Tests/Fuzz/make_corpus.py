"""Writes the seed corpus (Tests/Fuzz/Corpus/<target>/): valid inputs the fuzzer mutates from.
Run from anywhere: python3 Tests/Fuzz/make_corpus.py. The message examples come from Protocols/."""
import json
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
PROTOCOLS = HERE.parents[1] / "Protocols"

# The order of messageDecoders in Sources/fuzz-messages/FuzzMessages.swift.
MESSAGES = [
    ("jframe.testing.v1", "EchoMessage"), ("jframe.testing.v1", "ExpandRequest"),
    ("cqrs.broker.v1", "CreateTopicRequest"), ("cqrs.broker.v1", "ProduceRequest"), ("cqrs.broker.v1", "FetchRequest"),
    ("cqrs.broker.v1", "JoinGroupRequest"), ("cqrs.broker.v1", "CommitOffsetsRequest"),
    ("cqrs.commands.v1", "OpenAccountRequest"), ("cqrs.commands.v1", "DepositFundsRequest"),
    ("cqrs.commands.v1", "PlaceOrderRequest"), ("cqrs.commands.v1", "ReadAllRequest"),
    ("cqrs.queries.v1", "GetAccountRequest"), ("cqrs.queries.v1", "FindAccountsRequest"),
    ("cqrs.queries.v1", "ListOrdersRequest"), ("cqrs.queries.v1", "Account"),
]


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">IBBI", len(payload), kind, flags, stream) + payload


def h2frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def literal(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 127
    return bytes([len(data)]) + data


def write(target: str, name: str, data: bytes) -> None:
    directory = HERE / "Corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


envelopes = {
    "hello": {"versions": [1], "maxFrameBytes": 4194304, "initialCredit": 64, "agent": "fuzz"},
    "headers": {"method": "jframe.testing.v1.Echo/Get", "timeoutMs": 250, "metadata": {"x-request-id": "abc"}},
    "trailers": {"code": 3, "message": "bad", "details": [{"type": "jframe.rpc.v1.FieldViolations",
                                                           "value": {"violations": [{"field": "a", "description": "b"}]}}]},
    "trailers-ok": {"code": 0},
    "cancel": {"code": 1},
    "credit": {"n": 16},
    "goaway": {"lastStreamId": 7, "code": 0, "message": "bye"},
    "nested": {"a": [1, -2.5e3, "x\\u00e9\\n", True, None, {"b": []}], "c": 9007199254740993},
}
# The first byte picks the envelope type (the switch in Sources/fuzz-envelopes/FuzzEnvelopes.swift).
selector = {"hello": 0, "headers": 1, "trailers": 2, "trailers-ok": 2, "cancel": 3, "credit": 4, "goaway": 5, "nested": 6}
for name, value in envelopes.items():
    write("envelopes", name, bytes([selector[name]]) + json.dumps(value).encode())

headers = json.dumps(envelopes["headers"]).encode()
message = b'{"id":"m1","account":"acct-000042","amount":123,"note":"hello"}'
write("frames", "unary", bytes([7]) + frame(0, 0, 0, json.dumps(envelopes["hello"]).encode())
      + frame(1, 0, 1, headers) + frame(2, 1, 1, message))
write("frames", "reply", bytes([0]) + frame(2, 0, 1, message) + frame(3, 0, 1, b'{"code":0}') + frame(6, 2, 0, b"keepaliv"))
write("frames", "oversized", bytes([31]) + struct.pack(">IBBI", 2000, 2, 0, 3) + b"x" * 64)

for index, (package, name) in enumerate(MESSAGES):
    document = json.loads((PROTOCOLS / f"{package}.json").read_text())
    examples = document["messages"][name].get("examples", [])
    for number, example in enumerate(examples[:3]):
        write("messages", f"{index:02d}-{name}-{number}", bytes([index]) + json.dumps(example).encode())

# Deep nesting, at and past the bound (128) and far past it (what overflowed the stack before
# there was one): the fuzzer mutates from these, with json.dict's tokens, instead of having to
# grow a few thousand brackets on its own.
def arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


for depth in (127, 128, 129, 2000):
    write("envelopes", f"deep-arrays-{depth}", bytes([6]) + arrays(depth))
    write("envelopes", f"deep-hello-{depth}", bytes([0]) + b'{"versions":[1],"maxFrameBytes":4096,"initialCredit":1,"x":'
          + arrays(depth) + b"}")
    write("messages", f"03-ProduceRequest-deep-{depth}", bytes([3]) + b'{"topic":"t","records":[{"value":' + arrays(depth) + b"}]}")
    write("messages", f"11-GetAccountRequest-deep-{depth}", bytes([11]) + b'{"accountId":"a","x":' + arrays(depth) + b"}")
write("envelopes", "deep-objects-1500", bytes([6]) + objects(1500))

block = bytes([0x83, 0x86, 0x04]) + literal("/jframe.testing.v1.Echo/Get") + bytes([0x01]) + literal("edge") \
    + bytes([0x0F, 0x10]) + literal("application/grpc") + bytes([0x00]) + literal("grpc-timeout") + literal("250m")
write("http2", "grpc-unary", h2frame(1, 0x4, 1, block) + h2frame(0, 0x1, 1, b"\x00" + len(message).to_bytes(4, "big") + message))
write("http2", "ping-window-rst", h2frame(6, 0, 0, b"12345678") + h2frame(8, 0, 0, (1000).to_bytes(4, "big"))
      + h2frame(1, 0x4, 3, block) + h2frame(3, 0, 3, (8).to_bytes(4, "big")))

# The Kafka port (Sources/fuzz-kafka): byte 0 picks the decoder in requestDecoders' order, byte 1 the
# version (from the lowest parsed); seeds are kafka-python's own encodings (Tests/KafkaWireTests).
KAFKA_DECODERS = ["ApiVersionsRequest", "MetadataRequest", "ProduceRequest", "FetchRequest", "ListOffsetsRequest",
                  "InitProducerIdRequest", "CreateTopicsRequest", "DeleteTopicsRequest", "FindCoordinatorRequest", "JoinGroupRequest",
                  "SyncGroupRequest", "HeartbeatRequest", "LeaveGroupRequest", "OffsetCommitRequest", "OffsetFetchRequest",
                  "DescribeGroupsRequest", "ListGroupsRequest", "DescribeConfigsRequest"]
KAFKA_LOWEST = {"ApiVersionsRequest": 0, "MetadataRequest": 0, "ProduceRequest": 3, "FetchRequest": 4, "ListOffsetsRequest": 1,
                "InitProducerIdRequest": 0, "CreateTopicsRequest": 2, "DeleteTopicsRequest": 1, "FindCoordinatorRequest": 0,
                "JoinGroupRequest": 0, "SyncGroupRequest": 0, "HeartbeatRequest": 0, "LeaveGroupRequest": 0, "OffsetCommitRequest": 2,
                "OffsetFetchRequest": 1, "DescribeGroupsRequest": 0, "ListGroupsRequest": 0,
                "DescribeConfigsRequest": 1}
vectors = json.loads((HERE.parents[0] / "KafkaWireTests" / "Fixtures" / "kafka-python-vectors.json").read_text())
for vector in vectors["messages"]:
    if vector["name"] in KAFKA_DECODERS:
        index = KAFKA_DECODERS.index(vector["name"])
        write("kafka", f"{index:02d}-{vector['name']}-v{vector['version']}",
              bytes([index, vector["version"] - KAFKA_LOWEST[vector["name"]]]) + bytes.fromhex(vector["hex"]))
header, batches = len(KAFKA_DECODERS), len(KAFKA_DECODERS) + 1  # then a request header, then record batches
write("kafka", f"{header}-header-v2", bytes([header, 1]) + bytes.fromhex("00120003000000070004746573740000"))
for batch in vectors["batches"]:
    write("kafka", f"{batches}-batch-{batch['codec']}", bytes([batches, 0]) + bytes.fromhex(batch["hex"]))
