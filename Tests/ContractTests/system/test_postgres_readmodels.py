"""Several query-service processes on one PostgreSQL schema of read models
(`--read-store postgres://…`), in one consumer group, on real sockets: each applies the
partitions it owns, any replica answers any query with read-your-writes for positions another
replica applied, a replica killed with kill -9 mid-workload costs nothing (the other takes its
partitions, every acknowledged deposit counts once), a rebuild in a shadow schema swaps in while
both replicas keep answering, and a database that is not there stops the binary with one line
that never shows the password.

The database comes from JFRAME_TEST_POSTGRES_URL (`Scripts/test` starts a throwaway cluster and
sets it); each test gets schemas of its own."""
from __future__ import annotations

import os
import random
import subprocess
import threading
import time
import uuid

import pytest

from conftest import BIN_DIR
from processes import BrokerProcess, CommandService, DepositWorkload, QueryService, assert_counted_once, eur, open_request

PG_URL = os.environ.get("JFRAME_TEST_POSTGRES_URL", "")
pytestmark = pytest.mark.skipif(not PG_URL, reason="JFRAME_TEST_POSTGRES_URL is not set (Scripts/test sets it)")


def with_schema(prefix: str) -> str:
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={prefix}_{uuid.uuid4().hex[:16]}"


class Replicas:
    """A broker, a command-service on a PostgreSQL store, and two query-services sharing one
    PostgreSQL read store and one consumer group."""

    def __init__(self, start_server, protocols):
        self.broker = BrokerProcess(start_server, protocols)
        self.commands = CommandService(start_server, protocols, self.broker, "--store", with_schema("es"))
        read_store = with_schema("rm")
        self.queries = [QueryService(start_server, protocols, self.broker, self.commands, "--read-store", read_store) for _ in range(2)]

    def cleanup(self):
        for service in [*self.queries, self.commands, self.broker]:
            service.cleanup()


@pytest.fixture
def replicas(start_server, protocols):
    stack = Replicas(start_server, protocols)
    yield stack
    stack.cleanup()


def wait_for_two_members(broker: BrokerProcess, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        group = broker.call("DescribeGroup", {"group": "query-service"})
        owners = {m["memberId"] for m in group["members"] if m["assignment"] and m["topics"] == ["BankAccount"]}
        if group["state"] == "STABLE" and len(owners) == 2:
            return group
        assert time.monotonic() < deadline, group
        time.sleep(0.1)


def test_each_replica_applies_its_partitions_and_any_replica_reads_your_writes(replicas):
    for index in range(12):
        replicas.commands.account("OpenAccount", open_request(f"rw-{index}", 0))
    wait_for_two_members(replicas.broker)
    for round in range(3):
        for index in range(12):
            reply = replicas.commands.account("DepositFunds", {"accountId": f"rw-{index}", "amount": eur(index + 1)})
            # Whichever replica is asked, and whichever applied the account's partition.
            asked = replicas.queries[(round + index) % 2]
            account = asked.call("Accounts", "GetAccount", {"accountId": f"rw-{index}", "minPosition": reply["position"]})
            assert int(account["balance"]["amountMinor"]) == (round + 1) * (index + 1)
    statuses = [q.call("ReadModels", "GetStatus", {}) for q in replicas.queries]
    assert statuses[0]["appliedPosition"] == statuses[1]["appliedPosition"]
    assert statuses[0]["accounts"] == statuses[1]["accounts"] == 12


def test_kill_9_of_a_replica_mid_workload_and_a_rebuild_while_both_answer(replicas):
    seed = random.randrange(1 << 30)
    workload = DepositWorkload(replicas.commands, [f"k{seed % 1000}-{i}" for i in range(6)], random.Random(seed))
    wait_for_two_members(replicas.broker)
    time.sleep(1.0)
    replicas.queries[0].kill()
    time.sleep(1.5)
    expected = workload.stop()
    survivor = replicas.queries[1]
    survivor.wait_caught_up(timeout=60)  # after the session timeout, its partitions move here
    live = survivor.dump()
    assert_counted_once(live, expected, seed)

    replicas.queries[0].start()  # back, on the same schema
    answering, stop = [], threading.Event()

    def keep_asking(query: QueryService):
        connection = query.running.connect()
        try:
            while not stop.is_set():
                reply = connection.unary("cqrs.queries.v1.Accounts/GetAccount", {"accountId": next(iter(expected))})
                answering.append(reply.code)
        finally:
            connection.close()

    askers = [threading.Thread(target=keep_asking, args=(query,)) for query in replicas.queries]
    for asker in askers:
        asker.start()
    rebuilt: list[list[dict]] = []
    rebuilder = threading.Thread(target=lambda: rebuilt.append(replicas.queries[0].stream("ReadModels", "Rebuild", {"pageSize": 1})))
    started = time.monotonic()
    rebuilder.start()
    time.sleep(0.5)
    # One rebuild at a time across replicas: the shadow schema is taken.
    replicas.queries[1].call("ReadModels", "Rebuild", {}, expect="FAILED_PRECONDITION")
    assert rebuilder.is_alive(), f"the rebuild took {time.monotonic() - started:.2f} s: too short to see the other refused"
    rebuilder.join(120)
    progress = rebuilt[0]
    stop.set()
    for asker in askers:
        asker.join(10)
    assert progress[-1]["done"] is True
    assert [p.get("phase") for p in progress[-3:]] == ["INDEXING", "SWAPPING", None], "the put-off indexes are built, then the swap"
    assert answering and set(answering) == {0}, "both replicas answered throughout the rebuild and its swap"
    for query in replicas.queries:
        assert query.dump() == live, f"the models after the swap equal the live ones, on every replica (seed {seed})"


def test_an_unreachable_read_store_stops_the_binary_with_one_line_and_no_password(tmp_path):
    result = subprocess.run(
        [str(BIN_DIR / "query-service"), "--data-dir", str(tmp_path), "--listen", "127.0.0.1:0", "--no-projection",
         "--read-store", "postgres://ada:s3cret-pw@127.0.0.1:1/readmodels"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "postgres://ada:***@127.0.0.1:1/readmodels" in result.stderr, result.stderr
