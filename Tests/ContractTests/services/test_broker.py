"""The broker binary, as a real process on an ephemeral port: every cqrs.broker.v1 method with
its replies validated against Protocols/, the status codes of bad input, and behaviour across
restarts and kill -9."""
from __future__ import annotations

import os
import random
import subprocess
import tempfile
import threading
import time

import pytest

import jframe
from conftest import BIN_DIR
from processes import CALLED, BrokerProcess, kafka_partition

B = "cqrs.broker.v1.Broker/"
PACKAGE = BrokerProcess.PACKAGE
CODE = jframe.CODE


def test_topics_are_created_listed_described_and_deleted(broker):
    created = broker.call("CreateTopic", {"name": "orders", "partitions": 3, "config": {"retentionMs": "3600000"}})
    assert [p["partition"] for p in created["partitions"]] == [0, 1, 2]
    assert created["config"]["retentionMs"] == "3600000" and created["config"]["cleanupPolicy"] == "DELETE"
    broker.call("CreateTopic", {"name": "accounts", "config": {"cleanupPolicy": "COMPACT"}})
    assert broker.call("ListTopics", {})["topics"] == [
        {"name": "accounts", "partitions": 1, "cleanupPolicy": "COMPACT"},
        {"name": "orders", "partitions": 3, "cleanupPolicy": "DELETE"}]
    described = broker.call("DescribeTopic", {"name": "orders"})
    assert all(p["highWatermark"] == "0" and p["logStartOffset"] == "0" for p in described["partitions"])
    broker.call("DeleteTopic", {"name": "orders"})
    broker.call("DescribeTopic", {"name": "orders"}, expect="NOT_FOUND")
    broker.call("DeleteTopic", {"name": "orders"}, expect="NOT_FOUND")
    assert [t["name"] for t in broker.call("ListTopics", {})["topics"]] == ["accounts"]
    broker.call("CreateTopic", {"name": "orders", "partitions": 1})
    assert broker.call("DescribeTopic", {"name": "orders"})["partitions"][0]["highWatermark"] == "0"


def test_bad_topic_requests_get_the_right_codes(broker):
    broker.call("CreateTopic", {"name": "t"})
    assert broker.call("CreateTopic", {"name": "t"}, expect="ALREADY_EXISTS")["message"] == "topic t already exists"
    bad = broker.call("CreateTopic", {"name": "../etc"}, expect="INVALID_ARGUMENT")
    assert bad["details"][0]["value"]["violations"][0]["field"] == "name"
    broker.call("CreateTopic", {"name": "p", "partitions": 0}, expect="INVALID_ARGUMENT")
    broker.call("CreateTopic", {"name": "p", "config": {"segmentBytes": "10"}}, expect="INVALID_ARGUMENT")
    broker.call("CreateTopic", {"name": "__internal"}, expect="INVALID_ARGUMENT")
    assert [t["name"] for t in broker.call("ListTopics", {})["topics"]] == ["t"]


def test_keyed_records_land_where_kafka_would_put_them_in_order(broker):
    broker.call("CreateTopic", {"name": "orders", "partitions": 4})
    keys = [f"order-{i % 10}" for i in range(60)]
    reply = broker.call("Produce", {"topic": "orders", "records": [
        {"key": key, "value": {"n": i, "text": "é ✓", "big": 12345678901234567890, "f": 1.5e-3}}
        for i, key in enumerate(keys)]})
    for key, position in zip(keys, reply["results"]):
        assert position["partition"] == kafka_partition(key, 4)
    for partition in range(4):
        records = broker.fetch_all("orders", partition)
        assert [int(r["offset"]) for r in records] == list(range(len(records)))
        per_key: dict[str, list[int]] = {}
        for record in records:
            assert kafka_partition(record["key"], 4) == partition
            assert record["value"]["text"] == "é ✓" and record["value"]["big"] == 12345678901234567890
            per_key.setdefault(record["key"], []).append(record["value"]["n"])
        assert all(ns == sorted(ns) for ns in per_key.values())
    assert sum(len(broker.fetch_all("orders", p)) for p in range(4)) == 60


def test_records_keep_headers_timestamps_tombstones_and_explicit_partitions(broker):
    broker.call("CreateTopic", {"name": "t", "partitions": 2})
    reply = broker.call("Produce", {"topic": "t", "records": [
        {"key": "a", "value": [1], "headers": {"type": "Opened", "v": "1"}, "timestamp": 1000, "partition": 1},
        {"key": "a", "partition": 1},
        {"value": "keyless", "partition": 0}]})
    assert [r["partition"] for r in reply["results"]] == [1, 1, 0]
    first, tombstone = broker.fetch_all("t", 1)
    assert first["headers"] == {"type": "Opened", "v": "1"} and first["timestamp"] == 1000 and first["value"] == [1]
    assert "value" not in tombstone and tombstone["key"] == "a"
    assert broker.fetch_all("t", 0)[0]["value"] == "keyless"


def test_bad_produce_requests_store_nothing(start_server, protocols):
    broker = BrokerProcess(start_server, protocols, "--max-record-bytes", "2000")
    try:
        broker.call("CreateTopic", {"name": "t", "partitions": 2})
        broker.call("CreateTopic", {"name": "c", "config": {"cleanupPolicy": "COMPACT"}})
        broker.call("Produce", {"topic": "nope", "records": [{"value": 1}]}, expect="NOT_FOUND")
        broker.call("Produce", {"topic": "t", "records": [{"value": 1}, {"value": 2, "partition": 2}]}, expect="INVALID_ARGUMENT")
        broker.call("Produce", {"topic": "t", "records": [{"value": 1}, {"value": "x" * 3000}]}, expect="RESOURCE_EXHAUSTED")
        broker.call("Produce", {"topic": "c", "records": [{"value": 1}]}, expect="INVALID_ARGUMENT")
        broker.call("Produce", {"topic": "t", "records": []}, expect="INVALID_ARGUMENT")
        # A header name longer than the log stores (its length is 16 bits): refused, never stored cut.
        broker.call("Produce", {"topic": "t", "records": [{"value": 1, "headers": {"h" * 65536: "v"}}]}, expect="INVALID_ARGUMENT")
        stream = broker.connection.open_call(B + "Produce")
        broker.connection.send_raw(jframe.encode_frame(jframe.MESSAGE, 1, stream, b'{"topic":"t","records":[{"value":01}]}'))
        assert broker.connection.finish(stream).code == CODE["INVALID_ARGUMENT"]
        for partition in range(2):
            assert broker.call("DescribeTopic", {"name": "t"})["partitions"][partition]["highWatermark"] == "0"
    finally:
        broker.cleanup()


def test_an_idempotent_producer_is_not_duplicated_by_retries_and_gaps_are_refused(broker):
    broker.call("CreateTopic", {"name": "t", "partitions": 2})
    producer = broker.call("InitProducer", {})["producerId"]
    assert broker.call("InitProducer", {})["producerId"] != producer
    request = {"topic": "t", "producerId": producer, "sequences": [{"partition": 0, "baseSequence": 0}, {"partition": 1, "baseSequence": 0}],
               "records": [{"partition": 0, "value": 1}, {"partition": 1, "value": 2}, {"partition": 0, "value": 3}]}
    first = broker.call("Produce", request)
    assert first.get("duplicate") is False
    retried = broker.call("Produce", request)
    assert retried["results"] == first["results"] and retried["duplicate"] is True
    broker.restart(hard=True)
    assert broker.call("Produce", request)["results"] == first["results"]
    gap = dict(request, sequences=[{"partition": 0, "baseSequence": 5}, {"partition": 1, "baseSequence": 1}])
    message = broker.call("Produce", gap, expect="FAILED_PRECONDITION")["message"]
    assert "expected" in message and "2" in message
    broker.call("Produce", dict(request, sequences=[{"partition": 0, "baseSequence": 2}]), expect="INVALID_ARGUMENT")
    broker.call("Produce", {"topic": "t", "producerId": producer, "sequences": [{"partition": 0, "baseSequence": 2}],
                            "records": [{"value": 1}]}, expect="INVALID_ARGUMENT")
    assert [r["value"] for r in broker.fetch_all("t", 0)] == [1, 3]
    assert [r["value"] for r in broker.fetch_all("t", 1)] == [2]


def test_fetch_long_polls_until_a_record_arrives_or_the_wait_ends(broker):
    broker.call("CreateTopic", {"name": "t"})
    started = time.monotonic()
    empty = broker.call("Fetch", {"topic": "t", "partition": 0, "offset": "0", "maxWaitMs": 300})
    assert empty["records"] == [] and time.monotonic() - started >= 0.25
    waiter = broker.running.connect()
    result = {}

    def poll():
        result["reply"] = waiter.unary(B + "Fetch", {"topic": "t", "partition": 0, "offset": "0", "maxWaitMs": 20000})
        result["at"] = time.monotonic()

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.3)
    produced_at = time.monotonic()
    broker.call("Produce", {"topic": "t", "records": [{"value": "wake"}]})
    thread.join(10)
    waiter.close()
    assert result["reply"].code == 0 and result["reply"].messages[0]["records"][0]["value"] == "wake"
    assert result["at"] - produced_at < 2.0
    broker.call("Fetch", {"topic": "t", "partition": 0, "offset": "5"}, expect="OUT_OF_RANGE")
    broker.call("Fetch", {"topic": "t", "partition": 3, "offset": "0"}, expect="NOT_FOUND")
    broker.call("Fetch", {"topic": "t", "partition": 0, "offset": "0", "maxRecords": 0}, expect="INVALID_ARGUMENT")


def test_subscribe_streams_stored_then_new_records(broker, protocols):
    CALLED[PACKAGE].add("Subscribe")
    broker.call("CreateTopic", {"name": "t"})
    broker.call("Produce", {"topic": "t", "records": [{"value": i} for i in range(3)]})
    connection = broker.running.connect()
    stream = connection.open_call(B + "Subscribe")
    connection.send_message(stream, {"topic": "t", "partition": 0, "offset": "1"}, end=True)
    seen = []
    while len(seen) < 2:
        frame = connection.next_frame_for(stream)
        assert frame.type == jframe.MESSAGE
        protocols.validate("cqrs.broker.v1.FetchResponse", frame.json())
        seen += [r["value"] for r in frame.json()["records"]]
    broker.call("Produce", {"topic": "t", "records": [{"value": 3}, {"value": 4}]})
    while len(seen) < 4:
        frame = connection.next_frame_for(stream)
        seen += [r["value"] for r in frame.json()["records"]]
    assert seen == [1, 2, 3, 4]
    connection.cancel(stream)
    connection.close()


def test_list_offsets_finds_earliest_latest_and_by_time(broker):
    broker.call("CreateTopic", {"name": "t"})
    broker.call("Produce", {"topic": "t", "records": [{"value": i, "timestamp": 1000 + i * 100} for i in range(5)]})
    assert broker.call("ListOffsets", {"topic": "t", "partition": 0, "spec": "EARLIEST"}) == {"offset": "0"}
    assert broker.call("ListOffsets", {"topic": "t", "partition": 0, "spec": "LATEST"}) == {"offset": "5"}
    assert broker.call("ListOffsets", {"topic": "t", "partition": 0, "spec": "TIMESTAMP", "timestamp": 1250}) == {
        "offset": "3", "timestamp": 1300}
    assert broker.call("ListOffsets", {"topic": "t", "partition": 0, "spec": "TIMESTAMP", "timestamp": 9999}) == {"offset": "5"}
    broker.call("ListOffsets", {"topic": "t", "partition": 0, "spec": "TIMESTAMP"}, expect="INVALID_ARGUMENT")


def owned(membership) -> set[tuple[str, int]]:
    return {(a["topic"], p) for a in membership["assignment"] for p in a["partitions"]}


def as_owned(partitions) -> list[dict]:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(partitions):
        by_topic.setdefault(topic, []).append(partition)
    return [{"topic": t, "partitions": ps} for t, ps in by_topic.items()]


def test_a_group_rebalances_without_two_owners_and_fences_stale_commits(broker):
    broker.call("CreateTopic", {"name": "t", "partitions": 4})
    a = broker.call("JoinGroup", {"group": "g", "topics": ["t"], "clientId": "a", "sessionTimeoutMs": 1000})
    assert owned(a) == {("t", p) for p in range(4)}
    a_owned = owned(a)
    broker.call("CommitOffsets", {"group": "g", "memberId": a["memberId"], "generation": a["generation"],
                                  "offsets": [{"topic": "t", "partition": 3, "offset": "7"}]})
    b = broker.call("JoinGroup", {"group": "g", "topics": ["t"], "clientId": "b", "sessionTimeoutMs": 1000})
    assert b["generation"] > a["generation"]
    assert owned(b) == set() and b["pendingPartitions"] == 2, "A has not released anything yet"
    stale = broker.call("CommitOffsets", {"group": "g", "memberId": a["memberId"], "generation": a["generation"],
                                          "offsets": [{"topic": "t", "partition": 0, "offset": "1"}]}, expect="ABORTED")
    assert "stale" in stale["message"]
    a2 = broker.call("Heartbeat", {"group": "g", "memberId": a["memberId"], "owned": as_owned(a_owned)})
    assert len(owned(a2)) == 2 and a2["generation"] == b["generation"]
    released = a_owned - owned(a2)
    # A may still commit what it is about to release, with the new generation.
    broker.call("CommitOffsets", {"group": "g", "memberId": a["memberId"], "generation": a2["generation"],
                                  "offsets": [{"topic": t, "partition": p, "offset": "5"} for t, p in released]})
    assert owned(broker.call("Heartbeat", {"group": "g", "memberId": b["memberId"], "owned": []})) == set()
    broker.call("Heartbeat", {"group": "g", "memberId": a["memberId"], "owned": as_owned(owned(a2))})
    b2 = broker.call("Heartbeat", {"group": "g", "memberId": b["memberId"], "owned": []})
    assert owned(b2) == released and not (owned(b2) & owned(a2))
    broker.call("CommitOffsets", {"group": "g", "memberId": a["memberId"], "generation": a2["generation"],
                                  "offsets": [{"topic": t, "partition": p, "offset": "6"} for t, p in released]},
                expect="FAILED_PRECONDITION")
    broker.call("CommitOffsets", {"group": "g", "offsets": [{"topic": "t", "partition": 0, "offset": "1"}]},
                expect="FAILED_PRECONDITION")
    described = broker.call("DescribeGroup", {"group": "g"})
    assert described["state"] == "STABLE" and len(described["members"]) == 2
    assert {p["partition"]: p.get("owner") for p in described["partitions"]}.keys() == {0, 1, 2, 3}
    assert broker.call("ListGroups", {})["groups"] == [{"group": "g", "state": "STABLE", "members": 2}]
    # B stops heart-beating: after its session timeout A gets everything back.
    deadline = time.monotonic() + 10
    while True:
        a3 = broker.call("Heartbeat", {"group": "g", "memberId": a["memberId"], "owned": as_owned(owned(a2))})
        if len(owned(a3)) == 4 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(owned(a3)) == 4
    broker.call("Heartbeat", {"group": "g", "memberId": b["memberId"], "owned": []}, expect="FAILED_PRECONDITION")
    broker.call("LeaveGroup", {"group": "g", "memberId": a["memberId"]})
    assert broker.call("DescribeGroup", {"group": "g"})["state"] == "EMPTY"
    broker.call("CommitOffsets", {"group": "g", "offsets": [{"topic": "t", "partition": 0, "offset": "2"}]})
    broker.call("DescribeGroup", {"group": "nope"}, expect="NOT_FOUND")
    broker.call("JoinGroup", {"group": "g", "topics": ["missing"]}, expect="NOT_FOUND")


def test_committed_offsets_survive_restarts_and_kill(broker):
    broker.call("CreateTopic", {"name": "t", "partitions": 2})
    broker.call("Produce", {"topic": "t", "records": [{"key": f"k{i}", "value": i} for i in range(20)]})
    broker.call("CommitOffsets", {"group": "g", "offsets": [{"topic": "t", "partition": 0, "offset": "3", "metadata": "m"},
                                                            {"topic": "t", "partition": 1, "offset": "4"}]})
    broker.restart()
    committed = broker.call("FetchCommittedOffsets", {"group": "g"})["offsets"]
    assert [(o["partition"], o["offset"], o.get("metadata")) for o in committed] == [(0, "3", "m"), (1, "4", None)]
    broker.call("CommitOffsets", {"group": "g", "offsets": [{"topic": "t", "partition": 0, "offset": "9"}]})
    broker.restart(hard=True)
    committed = broker.call("FetchCommittedOffsets", {"group": "g", "topic": "t"})["offsets"]
    assert [(o["partition"], o["offset"]) for o in committed] == [(0, "9"), (1, "4")]
    lag = {p["partition"]: p["lag"] for p in broker.call("DescribeGroup", {"group": "g"})["partitions"]}
    hw = {p["partition"]: int(p["highWatermark"]) for p in broker.call("DescribeTopic", {"name": "t"})["partitions"]}
    assert lag == {0: str(hw[0] - 9), 1: str(hw[1] - 4)}
    again = broker.call("Produce", {"topic": "t", "records": [{"key": f"k{i}", "value": i} for i in range(20)]})
    assert [r["partition"] for r in again["results"]] == [kafka_partition(f"k{i}", 2) for i in range(20)]
    broker.call("DeleteTopic", {"name": "t"})
    assert broker.call("FetchCommittedOffsets", {"group": "g"})["offsets"] == []


def test_kill_9_during_a_producer_workload_loses_no_acknowledged_record(broker):
    broker.call("CreateTopic", {"name": "t", "partitions": 3})
    seed = int(os.environ.get("BROKER_KILL_SEED", random.randrange(1 << 30)))
    print(f"kill -9 workload seed {seed}")
    rng = random.Random(seed)
    acked: dict[tuple[int, int], object] = {}
    for iteration in range(4):
        stop = threading.Event()
        lock = threading.Lock()

        def produce(worker: int):
            connection = broker.running.connect()
            n = 0
            try:
                while not stop.is_set():
                    values = [{"w": worker, "n": n + i, "it": iteration} for i in range(rng.randint(1, 20))]
                    n += len(values)
                    result = connection.unary(B + "Produce", {"topic": "t", "records": [
                        {"key": f"w{worker}-{v['n'] % 7}", "value": v} for v in values]}, timeout=5)
                    if result.code != 0:
                        return
                    with lock:
                        for value, position in zip(values, result.messages[0]["results"]):
                            acked[(position["partition"], int(position["offset"]))] = value
            except (jframe.ConnectionClosed, OSError, TimeoutError):
                return

        workers = [threading.Thread(target=produce, args=(w,)) for w in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(rng.uniform(0.2, 0.8))
        broker.kill()
        stop.set()
        for worker in workers:
            worker.join(10)
        broker.start()
        for partition in range(3):
            stored = {int(r["offset"]): r["value"] for r in broker.fetch_all("t", partition)}
            for (p, offset), value in acked.items():
                if p == partition:
                    assert stored.get(offset) == value, f"seed {seed}: acked {p}/{offset} lost or changed"
    assert len(acked) > 100


def test_the_active_segment_runs_ahead_with_zeros_that_a_clean_stop_trims(start_server, protocols):
    broker = BrokerProcess(start_server, protocols, "--preallocate-bytes", "65536")
    try:
        broker.call("CreateTopic", {"name": "z", "partitions": 1})
        broker.call("Produce", {"topic": "z", "records": [{"key": "k", "value": {"n": i}} for i in range(10)]})
        segment = os.path.join(broker.data, "topics", "z", "0", "00000000000000000000.log")
        running = os.path.getsize(segment)
        assert running > 65536, "the segment is zero-filled ahead of its appends"
        with open(segment, "rb") as f:
            assert f.read()[-65536:] == bytes(65536)
        broker.restart()
        stopped = os.path.getsize(segment)
        assert 0 < stopped <= running - 65536, "a clean stop trims the zeros"
        broker.call("Produce", {"topic": "z", "records": [{"key": "k", "value": {"n": 10}}]})
        broker.restart(hard=True)
        assert [r["value"]["n"] for r in broker.fetch_all("z", 0)] == list(range(11)), "kill -9 with zeros loses nothing"
    finally:
        broker.cleanup()
    off = BrokerProcess(start_server, protocols, "--preallocate-bytes", "0")
    try:
        off.call("CreateTopic", {"name": "z", "partitions": 1})
        off.call("Produce", {"topic": "z", "records": [{"key": "k", "value": {"n": 1}}]})
        segment = os.path.join(off.data, "topics", "z", "0", "00000000000000000000.log")
        running = os.path.getsize(segment)
        off.restart()
        assert os.path.getsize(segment) == running > 0, "no zeros ahead when turned off"
    finally:
        off.cleanup()
    refused = subprocess.run([str(BIN_DIR / "broker"), "--data-dir", tempfile.mkdtemp(), "--preallocate-bytes=-1"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "--preallocate-bytes must be 0 to 1 GiB" in refused.stderr


@pytest.mark.parametrize("place", ["event-loop", "background"])
def test_with_syncs_on_the_event_loop_or_a_thread_every_concurrent_ack_survives_kill_9(start_server, protocols, place):
    broker = BrokerProcess(start_server, protocols, "--sync-on", place)
    try:
        broker.call("CreateTopic", {"name": "s", "partitions": 2})
        acked: list[tuple[int, int, int]] = []
        lock = threading.Lock()

        def produce(worker: int):
            connection = broker.running.connect()
            try:
                for n in range(20):
                    reply = broker.call("Produce", {"topic": "s", "records": [{"key": f"w{worker}", "value": {"w": worker, "n": n}}]},
                                        connection=connection)
                    with lock:
                        acked.append((worker, n, int(reply["results"][0]["offset"])))
            finally:
                connection.close()

        threads = [threading.Thread(target=produce, args=(worker,)) for worker in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(acked) == 160
        broker.restart(hard=True)
        stored = {(r["value"]["w"], r["value"]["n"]) for p in (0, 1) for r in broker.fetch_all("s", p)}
        assert {(w, n) for w, n, _ in acked} <= stored, "an acknowledged record was lost"
        for worker in range(8):
            mine = sorted((offset, n) for w, n, offset in acked if w == worker)
            assert [n for _, n in mine] == list(range(20)), "one key's records keep their order"
    finally:
        broker.cleanup()
    refused = subprocess.run([str(BIN_DIR / "broker"), "--data-dir", tempfile.mkdtemp(), "--sync-on", "sideways"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "event-loop" in refused.stderr and "background" in refused.stderr


def test_every_broker_method_was_called(protocols):
    defined = {m["name"] for m in protocols.packages[PACKAGE]["services"][0]["methods"]}
    assert defined - CALLED[PACKAGE] == set()
