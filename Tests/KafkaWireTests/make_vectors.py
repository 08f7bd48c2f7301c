"""Writes Tests/KafkaWireTests/Fixtures/kafka-python-vectors.json, the golden vectors of the Kafka
wire tests: messages and record batches encoded by kafka-python 3.0.12 (a Kafka client no one here
wrote). Run from the repository root: .venv/bin/python Tests/KafkaWireTests/make_vectors.py"""
import json
import os
import uuid
import warnings

warnings.simplefilter("ignore")
from kafka.protocol.consumer import FetchRequest, FetchResponse, ListOffsetsRequest  # noqa: E402
from kafka.protocol.metadata import ApiVersionsRequest, MetadataRequest, MetadataResponse  # noqa: E402
from kafka.protocol.producer import InitProducerIdRequest, ProduceRequest, ProduceResponse  # noqa: E402
from kafka.protocol.admin import CreateTopicsRequest  # noqa: E402
from kafka.protocol.consumer import (HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest,  # noqa: E402
                                     OffsetFetchRequest, SyncGroupRequest)
from kafka.protocol.metadata import FindCoordinatorRequest  # noqa: E402
from kafka.record.default_records import DefaultRecordBatchBuilder  # noqa: E402


def batch(codec):
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=0, producer_id=7,
                                        producer_epoch=0, base_sequence=3, batch_size=1 << 20)
    builder.append(0, timestamp=1796400000000, key=b"order-7", value=b'{"orderId":"order-7"}', headers=[("type", b"OrderPlaced")])
    builder.append(1, timestamp=1796400000005, key=None, value=None, headers=[])
    for i in range(2, 40):  # enough alike records that every codec compresses (kafka-python keeps a batch raw otherwise)
        builder.append(i, timestamp=1796400000005 + i, key=b"order-%d" % i, value=b'{"orderId":"order-%d","quantity":1}' % i,
                       headers=[("type", b"OrderPlaced")])
    return bytes(builder.build())


def build(cls, data):
    """kafka-python's messages want their nested structs as objects: built from plain dicts here."""
    values = {}
    for key, value in data.items():
        if key == "version":
            values[key] = value
            continue
        field = cls.fields[key]
        struct_array = field.is_struct_array() if callable(field.is_struct_array) else field.is_struct_array
        if struct_array and value is not None:
            values[key] = [build(field.data_class, item) for item in value]
        else:
            values[key] = value
    return cls(**values)


def msg(cls, version, **data):
    return build(cls, dict(data, version=version))


MESSAGES = []


def show(name, message):
    MESSAGES.append({"name": name, "version": message.version, "hex": message.encode().hex()})


show("ApiVersionsRequest", msg(ApiVersionsRequest, 3, client_software_name="kafka-python", client_software_version="3.0.12"))
show("MetadataRequest", msg(MetadataRequest, 12, topics=[{"topic_id": None, "name": "OnNewOrder"}], allow_auto_topic_creation=False,
                                        include_topic_authorized_operations=True))
show("MetadataRequest", msg(MetadataRequest, 4, topics=None, allow_auto_topic_creation=True))
show("ProduceRequest", msg(ProduceRequest, 9, transactional_id=None, acks=-1, timeout_ms=30000,
                                      topic_data=[{"name": "OnNewOrder", "partition_data": [{"index": 2, "records": batch(0)}]}]))
show("ProduceRequest", msg(ProduceRequest, 7, transactional_id=None, acks=1, timeout_ms=1500,
                                      topic_data=[{"name": "t", "partition_data": [{"index": 0, "records": batch(1)}]}]))
show("FetchRequest", msg(FetchRequest, 12, replica_id=-1, max_wait_ms=500, min_bytes=1, max_bytes=52428800, isolation_level=0,
                                  session_id=0, session_epoch=-1,
                                  topics=[{"topic": "OnNewOrder", "partitions": [{"partition": 1, "current_leader_epoch": -1,
                                                                                  "fetch_offset": 42, "last_fetched_epoch": -1,
                                                                                  "log_start_offset": -1, "partition_max_bytes": 1048576}]}],
                                  forgotten_topics_data=[], rack_id=""))
show("FetchRequest", msg(FetchRequest, 4, replica_id=-1, max_wait_ms=100, min_bytes=1, max_bytes=1000, isolation_level=1,
                                  topics=[{"topic": "x", "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 100}]}]))
show("ListOffsetsRequest", msg(ListOffsetsRequest, 7, replica_id=-1, isolation_level=0,
                                              topics=[{"name": "OnNewOrder", "partitions": [{"partition_index": 0, "current_leader_epoch": -1,
                                                                                             "timestamp": -2}]}]))
show("InitProducerIdRequest", msg(InitProducerIdRequest, 4, transactional_id=None, transaction_timeout_ms=60000, producer_id=-1,
                                                    producer_epoch=-1))
show("CreateTopicsRequest", msg(CreateTopicsRequest, 7, topics=[{"name": "OnNewOrder", "num_partitions": 3, "replication_factor": -1,
                                                                    "assignments": [], "configs": [{"name": "cleanup.policy", "value": "compact"}]}],
                                                timeout_ms=30000, validate_only=False))
show("FindCoordinatorRequest", msg(FindCoordinatorRequest, 4, key_type=0, coordinator_keys=["workers"]))
show("FindCoordinatorRequest", msg(FindCoordinatorRequest, 1, key="workers", key_type=0))
show("JoinGroupRequest", msg(JoinGroupRequest, 5, group_id="workers", session_timeout_ms=45000, rebalance_timeout_ms=300000, member_id="",
                             group_instance_id=None, protocol_type="consumer",
                             protocols=[{"name": "range", "metadata": b"\x00\x01\x00\x00\x00\x01\x00\x04work\xff\xff\xff\xff"}]))
show("SyncGroupRequest", msg(SyncGroupRequest, 3, group_id="workers", generation_id=2, member_id="m-1", group_instance_id=None,
                             assignments=[{"member_id": "m-1", "assignment": b"\x00\x01"}]))
show("HeartbeatRequest", msg(HeartbeatRequest, 4, group_id="workers", generation_id=2, member_id="m-1", group_instance_id=None))
show("LeaveGroupRequest", msg(LeaveGroupRequest, 4, group_id="workers", members=[{"member_id": "m-1", "group_instance_id": None}]))
show("OffsetCommitRequest", msg(OffsetCommitRequest, 8, group_id="workers", generation_id_or_member_epoch=2, member_id="m-1",
                                group_instance_id=None,
                                topics=[{"name": "work", "partitions": [{"partition_index": 0, "committed_offset": 41,
                                                                         "committed_leader_epoch": -1, "committed_metadata": "m"}]}]))
show("OffsetFetchRequest", msg(OffsetFetchRequest, 7, group_id="workers", topics=[{"name": "work", "partition_indexes": [0, 1]}],
                               require_stable=False))
show("MetadataResponse", msg(MetadataResponse, 12, throttle_time_ms=0, brokers=[{"node_id": 0, "host": "127.0.0.1", "port": 9093, "rack": None}],
                                          cluster_id="cqrs-broker", controller_id=0,
                                          topics=[{"error_code": 0, "name": "OnNewOrder", "topic_id": uuid.UUID("08be4e07-b562-8fce-34fb-46cb03cb2197"),
                                                   "is_internal": False, "partitions": [{"error_code": 0, "partition_index": 0, "leader_id": 0,
                                                                                         "leader_epoch": -1, "replica_nodes": [0], "isr_nodes": [0],
                                                                                         "offline_replicas": []}]}]))
show("ProduceResponse", msg(ProduceResponse, 9, responses=[{"name": "t", "partition_responses": [
    {"index": 0, "error_code": 0, "base_offset": 10, "log_append_time_ms": -1, "log_start_offset": 0, "record_errors": [], "error_message": None}]}],
    throttle_time_ms=0))
show("FetchResponse", msg(FetchResponse, 12, throttle_time_ms=0, error_code=0, session_id=0, responses=[
    {"topic": "t", "partitions": [{"partition_index": 0, "error_code": 0, "high_watermark": 2, "last_stable_offset": 2, "log_start_offset": 0,
                                   "aborted_transactions": [], "preferred_read_replica": -1, "records": batch(0)}]}]))
BATCHES = [{"codec": name, "hex": batch(codec).hex()} for codec, name in [(0, "none"), (1, "gzip"), (2, "snappy"), (3, "lz4"), (4, "zstd")]]
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "kafka-python-vectors.json"), "w") as out:
    json.dump({"messages": MESSAGES, "batches": BATCHES}, out, indent=1)
    out.write("\n")
