"""Several command-service processes on one PostgreSQL event store (`--store postgres://…`), on
real sockets: optimistic concurrency holds across processes (one winner per round, the others
ABORTED), the global order has no hole a follower can fall into while writers in every process
commit, a command id names one command whichever replica is asked, and a database that is not
there stops the binary with a one-line error that never shows the password.

The database comes from JFRAME_TEST_POSTGRES_URL (`Scripts/test` starts a throwaway cluster and
sets it); each test gets a schema of its own."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

import jframe
from conftest import BIN_DIR
from processes import BrokerProcess, CommandService, eur, open_request

PG_URL = os.environ.get("JFRAME_TEST_POSTGRES_URL", "")
pytestmark = pytest.mark.skipif(not PG_URL, reason="JFRAME_TEST_POSTGRES_URL is not set (Scripts/test sets it)")
DEPOSIT = "cqrs.commands.v1.BankAccounts/DepositFunds"


def store_url() -> str:
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema=p_{uuid.uuid4().hex}"


@pytest.fixture
def replicas(start_server):
    """Three command-service processes on one fresh store, relays off (no broker needed)."""
    url = store_url()
    return [start_server("--data-dir", tempfile.mkdtemp(prefix="pg-replica-"), "--store", url, "--no-relay",
                         binary="command-service") for _ in range(3)]


def test_racers_in_three_processes_on_one_version_end_with_exactly_one_winner(replicas):
    setup = replicas[0].connect()
    opened = setup.unary("cqrs.commands.v1.BankAccounts/OpenAccount", open_request("race-1", 0))
    assert opened.code == 0, opened.trailers
    version = int(opened.messages[0]["version"])
    racers_per_process, rounds = 4, 12
    connections = [replica.connect() for replica in replicas for _ in range(racers_per_process)]
    for round_number in range(rounds):
        barrier = threading.Barrier(len(connections))
        codes: list[int] = []
        lock = threading.Lock()

        def race(connection: jframe.Connection, expected: int):
            barrier.wait()
            result = connection.unary(DEPOSIT, {"accountId": "race-1", "amount": eur(1), "expectedVersion": str(expected)})
            with lock:
                codes.append(result.code)
            if result.code not in (0, jframe.CODE["ABORTED"]):
                raise AssertionError(result.trailers)

        threads = [threading.Thread(target=race, args=(connection, version)) for connection in connections]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert codes.count(0) == 1, f"round {round_number}: {codes.count(0)} winners of {len(codes)} racers"
        assert codes.count(jframe.CODE["ABORTED"]) == len(connections) - 1
        version += 1
    stream = setup.unary("cqrs.commands.v1.EventStore/ReadStream", {"streamId": "BankAccount-race-1", "maxCount": 1000})
    assert stream.code == 0, stream.trailers
    assert [int(e["streamVersion"]) for e in stream.messages[0]["events"]] == list(range(1, version + 1))
    for connection in connections + [setup]:
        connection.close()


def test_a_follower_of_all_sees_every_event_once_in_order_while_three_processes_write(replicas):
    stop = threading.Event()
    errors: list[str] = []

    def write(replica, account: str):
        connection = replica.connect()
        try:
            assert connection.unary("cqrs.commands.v1.BankAccounts/OpenAccount", open_request(account, 0)).code == 0
            while not stop.is_set():
                result = connection.unary(DEPOSIT, {"accountId": account, "amount": eur(1)})
                if result.code != 0:
                    errors.append(str(result.trailers))
                    return
        finally:
            connection.close()

    seen: list[int] = []
    writers_done = threading.Event()

    def follow():
        connection = replicas[0].connect()
        position = 1
        try:
            while True:
                finished = writers_done.is_set()  # read before the page: the page then holds every last commit
                page = connection.unary("cqrs.commands.v1.EventStore/ReadAll", {"fromPosition": str(position), "maxCount": 500})
                assert page.code == 0, page.trailers
                events = page.messages[0]["events"]
                seen.extend(int(e["position"]) for e in events)
                position = int(page.messages[0]["nextPosition"])
                if finished and not events:
                    return
        finally:
            connection.close()

    writers = [threading.Thread(target=write, args=(replica, f"w{i}-{j}")) for i, replica in enumerate(replicas) for j in range(3)]
    follower = threading.Thread(target=follow)
    follower.start()
    for writer in writers:
        writer.start()
    time.sleep(4)
    stop.set()
    for writer in writers:
        writer.join(30)
    writers_done.set()
    follower.join(60)
    assert not errors, errors[:3]
    head = replicas[1].connect().unary("cqrs.commands.v1.EventStore/GetStatus", {}).messages[0]["headPosition"]
    assert len(seen) > 50, "the writers made progress"
    assert seen == list(range(1, int(head) + 1)), "every position once, in order, none skipped"
    verified = replicas[2].connect().server_streaming("cqrs.commands.v1.EventStore/Verify", {"pageSize": 100}, timeout_ms=60000)
    assert verified.code == 0, verified.trailers
    assert verified.messages[-1]["done"] is True and verified.messages[-1]["problems"] == []
    assert int(verified.messages[-1]["eventsChecked"]) == int(head)


def test_a_command_id_names_one_command_across_replicas(replicas):
    first, second = replicas[0].connect(), replicas[2].connect()
    assert first.unary("cqrs.commands.v1.BankAccounts/OpenAccount", open_request("idem-1", 0)).code == 0
    request = {"accountId": "idem-1", "amount": eur(5), "commandId": "deposit-once"}
    one = first.unary(DEPOSIT, request)
    again = second.unary(DEPOSIT, request)
    assert one.code == 0 and again.code == 0, (one.trailers, again.trailers)
    assert again.messages[0]["duplicate"] is True
    assert again.messages[0]["position"] == one.messages[0]["position"]
    other = second.unary(DEPOSIT, {**request, "amount": eur(6)})
    assert other.code == jframe.CODE["ALREADY_EXISTS"], other.trailers
    first.close()
    second.close()


def test_an_unreachable_database_stops_the_binary_with_one_line_and_no_password(tmp_path):
    result = subprocess.run(
        [str(BIN_DIR / "command-service"), "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path), "--no-relay",
         "--store", "postgres://ada:s3cret-pw@127.0.0.1:1/events"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "postgres://ada:***@127.0.0.1:1/events" in result.stderr, result.stderr


def test_one_relay_publishes_and_another_replica_takes_over_after_kill_9(start_server, protocols, tmp_path):
    """Two replicas with relays on one store and one broker: only the lease holder publishes; it
    is killed mid-workload, the other takes the lease, and every stored event is on the broker
    exactly once."""
    broker = BrokerProcess(start_server, protocols)
    url = store_url()
    key = str(tmp_path / "relay.key")  # replicas sharing a store share its relay key
    replicas = [CommandService(start_server, protocols, broker, "--store", url, "--relay-key-file", key) for _ in range(2)]

    def leader() -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            holders = [index for index, replica in enumerate(replicas)
                       if replica.running.process.poll() is None and replica.call("EventStore", "GetStatus", {})["brokerConnected"]]
            assert len(holders) <= 1, f"replicas {holders} both publishing"
            if holders:
                return holders[0]
            time.sleep(0.1)
        raise AssertionError("no replica took the relay's lease")

    stop = threading.Event()
    acknowledged: list[int] = []

    def deposit(replica: CommandService, account: str):
        connection = replica.running.connect()
        try:
            assert connection.unary("cqrs.commands.v1.BankAccounts/OpenAccount", open_request(account, 0)).code == 0
            while not stop.is_set():
                reply = connection.unary(DEPOSIT, {"accountId": account, "amount": eur(1)})
                if reply.code != 0:
                    return
                acknowledged.append(int(reply.messages[0]["position"]))
        except Exception:
            return  # the connection died with its process
        finally:
            connection.close()

    threads = [threading.Thread(target=deposit, args=(replica, f"f{i}-{j}")) for i, replica in enumerate(replicas) for j in range(3)]
    for thread in threads:
        thread.start()
    first = leader()  # the holder reports the broker connected once it published
    standby = replicas[1 - first].call("EventStore", "GetStatus", {})
    assert "standing by" in standby.get("lastError", ""), standby
    # The standby reports how far the holder published (its checkpoint in the shared store).
    deadline = time.monotonic() + 10
    while int(replicas[1 - first].call("EventStore", "GetStatus", {})["publishedPosition"]) == 0:
        assert time.monotonic() < deadline, "the standby's publishedPosition stayed 0"
        time.sleep(0.1)
    time.sleep(1.0)
    replicas[first].kill()
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(10)
    survivor = replicas[1 - first]
    assert leader() == 1 - first
    head = int(survivor.wait_published(timeout=30)["headPosition"])
    assert acknowledged and max(acknowledged) <= head
    topic = broker.call("DescribeTopic", {"name": "BankAccount"})
    records = [r for p in topic["partitions"] for r in broker.fetch_all("BankAccount", p["partition"])]
    positions = [int(r["headers"]["ce_position"]) for r in records]
    assert sorted(positions) == list(range(1, head + 1)), "every stored event published exactly once"
    for replica in replicas:
        replica.cleanup()
    broker.cleanup()


class Cluster:
    """A PostgreSQL cluster of this test's own (Scripts/lib/postgres.sh's recipe), to stop and
    start under a running command-service."""

    def __init__(self, directory: str):
        self.bin = os.environ.get("PG_BIN") or sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.dir = directory
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.run("initdb", "-D", f"{directory}/data", "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        self.start()

    def run(self, tool: str, *args: str):
        command = [f"{self.bin}/{tool}", *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self):
        self.run("pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/server.log", "-w", "start",
                 "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1")

    def crash(self):
        """Stops the server without a clean shutdown, as a crash or a lost host would."""
        self.run("pg_ctl", "-D", f"{self.dir}/data", "-m", "immediate", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"


def test_postgres_down_mid_workload_is_unavailable_never_a_false_success_and_work_resumes(start_server):
    cluster = Cluster(tempfile.mkdtemp(prefix="pg-fault-"))
    try:
        service = start_server("--data-dir", tempfile.mkdtemp(prefix="pg-fault-svc-"), "--store", cluster.url, "--no-relay",
                               binary="command-service")
        accounts = [f"d{i}" for i in range(4)]
        setup = service.connect()
        for account in accounts:
            assert setup.unary("cqrs.commands.v1.BankAccounts/OpenAccount", open_request(account, 0)).code == 0
        acknowledged = {account: 0 for account in accounts}
        codes: set[int] = set()
        stop = threading.Event()

        def deposit(account: str):
            connection = service.connect()
            try:
                while not stop.is_set():
                    result = connection.unary(DEPOSIT, {"accountId": account, "amount": eur(1)}, timeout_ms=5000)
                    codes.add(result.code)
                    if result.code == 0:
                        acknowledged[account] += 1
                    else:
                        time.sleep(0.05)
            finally:
                connection.close()

        threads = [threading.Thread(target=deposit, args=(account,)) for account in accounts]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        cluster.crash()
        time.sleep(2.0)
        down = setup.unary(DEPOSIT, {"accountId": "d0", "amount": eur(1)}, timeout_ms=5000)
        assert down.code == jframe.CODE["UNAVAILABLE"], down.trailers

        def health(service_name: str) -> str:
            reply = setup.unary("jframe.health.v1.Health/Check", {"service": service_name} if service_name else {})
            assert reply.code == 0, reply.trailers
            return reply.messages[0]["status"]

        # Health says what callers meet: the commands (and the server) NOT_SERVING while the
        # database is away, SERVING again once it is back.
        deadline = time.monotonic() + 15
        while health("cqrs.commands.v1.BankAccounts") != "NOT_SERVING":
            assert time.monotonic() < deadline, "the commands stayed SERVING with the database down"
            time.sleep(0.2)
        assert health("") == "NOT_SERVING" and health("jframe.health.v1.Health") == "SERVING"
        cluster.start()
        deadline = time.monotonic() + 30
        while setup.unary(DEPOSIT, {"accountId": "d0", "amount": eur(1), "commandId": "after-restart"}, timeout_ms=5000).code != 0:
            assert time.monotonic() < deadline, "commands did not resume after PostgreSQL came back"
            time.sleep(0.2)
        deadline = time.monotonic() + 15
        while health("cqrs.commands.v1.BankAccounts") != "SERVING" or health("") != "SERVING":
            assert time.monotonic() < deadline, "the commands stayed NOT_SERVING after the database came back"
            time.sleep(0.2)
        acknowledged["d0"] += 1
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert codes <= {0, jframe.CODE["UNAVAILABLE"], jframe.CODE["DEADLINE_EXCEEDED"]}, codes
        for account in accounts:
            stream = setup.unary("cqrs.commands.v1.EventStore/ReadStream", {"streamId": f"BankAccount-{account}", "maxCount": 10000})
            deposits = [e for e in stream.messages[0]["events"] if e["type"] == "FundsDeposited"]
            # Every acknowledged deposit is stored; one answered UNAVAILABLE may be stored too
            # (its COMMIT reached the server, the answer did not): the client retries with its
            # command id to know.
            assert len(deposits) >= acknowledged[account], (account, len(deposits), acknowledged[account])
        setup.close()
    finally:
        try:
            cluster.crash()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(cluster.dir, ignore_errors=True)


def test_cqrs_dev_postgres_runs_the_stack_on_a_local_cluster_and_stops_it():
    import json
    import signal
    data = tempfile.mkdtemp(prefix="dev-pg-")
    os.chmod(data, 0o755)  # the cluster runs as the postgres user when we are root
    dev = subprocess.Popen([str(BIN_DIR / "cqrs"), "dev", "--postgres", "--postgres-port", "0", "--data-dir", data,
                            "--broker-port", "0", "--commands-port", "0", "--queries-port", "0", "--no-metrics", "--no-kafka", "--json",
                            "--log-level", "warning"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(dev.stdout.readline() or "{}")
        assert ready.get("event") == "ready", dev.stderr.read()
        env = {**os.environ, "CQRS_COMMANDS": ready["commands"], "CQRS_QUERIES": ready["queries"]}
        opened = subprocess.run([str(BIN_DIR / "cqrs"), "accounts", "open", "--id", "pg-dev", "--holder", "Ada", "--amount", "2.50", "--json"],
                                capture_output=True, text=True, timeout=30, env=env)
        assert opened.returncode == 0, opened.stderr
        position = json.loads(opened.stdout)["position"]
        got = subprocess.run([str(BIN_DIR / "cqrs"), "accounts", "get", "pg-dev", "--min-position", str(position), "--json"],
                             capture_output=True, text=True, timeout=30, env=env)
        assert got.returncode == 0 and json.loads(got.stdout)["balance"]["amountMinor"] == "250", got.stderr
        assert os.path.exists(os.path.join(data, "postgres", "data", "PG_VERSION"))
        assert not os.path.exists(os.path.join(data, "commands", "events.sqlite")), "the events are in PostgreSQL"
        assert not os.path.exists(os.path.join(data, "queries", "readmodels.sqlite")), "the read models are in PostgreSQL"
    finally:
        dev.send_signal(signal.SIGINT)
        assert dev.wait(timeout=60) == 0
    stopped = dev.stderr.read()
    assert "postgres stopped" in stopped, stopped
    shutil.rmtree(data, ignore_errors=True)
