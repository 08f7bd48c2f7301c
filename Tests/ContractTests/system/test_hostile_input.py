"""Hostile input against the real binaries (WIRE.md §8, limits): JSON nested past the bound on
every path a peer reaches before and after authentication (an unknown member of any request,
Health/Check, reflection, a broker record value, HELLO) is INVALID_ARGUMENT and the server
lives on; the bound is a flag; and a process out of descriptors backs off its accepts and says
so instead of spinning."""
from __future__ import annotations

import json
import os
import pathlib
import resource
import socket
import subprocess
import sys
import time
import types

import pytest

import jframe
from conftest import BIN_DIR
from processes import BrokerProcess, CommandService, QueryService, eur, open_request

HEALTH = "jframe.health.v1.Health/Check"
REFLECTION = "jframe.reflection.v1.Reflection/ListServices"
DEFAULT_DEPTH = 128


def arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def with_unknown_member(known: bytes, inner: bytes) -> bytes:
    """A request object with `inner` as the value of a member no schema defines."""
    return known[:-1] + (b"," if known != b"{}" else b"") + b'"future":' + inner + b"}"


def call_raw(connection: jframe.Connection, method: str, payload: bytes) -> jframe.CallResult:
    stream = connection.open_call(method)
    connection.send_message(stream, payload, end=True)
    return connection.finish(stream)


def assert_refused_and_alive(server, method: str, payload: bytes) -> None:
    connection = server.connect()
    try:
        result = call_raw(connection, method, payload)
        assert result.code == jframe.CODE["INVALID_ARGUMENT"], (method, result.trailers)
        assert "nested deeper than" in result.trailers["message"], result.trailers
        # The same connection and a new one still answer.
        assert connection.unary(HEALTH, {}).code == 0
    finally:
        connection.close()
    assert server.process.poll() is None, server.log
    fresh = server.connect()
    assert fresh.unary(HEALTH, {}).code == 0
    fresh.close()


@pytest.fixture(scope="module")
def stack(request, protocols):
    """broker, command-service and query-service, wired together, with a test server beside them."""
    started = []

    def start(*args: str, binary: str):
        from conftest import RunningServer
        running = RunningServer(binary, *args)
        started.append(running)
        return running

    broker = BrokerProcess(start, protocols)
    commands = CommandService(start, protocols, broker)
    queries = QueryService(start, protocols, broker, commands)
    servers = {"broker": broker.running, "command-service": commands.running, "query-service": queries.running,
               "rpc-testserver": start(binary="rpc-testserver")}
    yield types.SimpleNamespace(servers=servers, broker=broker, commands=commands, queries=queries)
    for running in started:
        running.stop()
    broker.cleanup()


@pytest.mark.parametrize("binary", ["broker", "command-service", "query-service", "rpc-testserver"])
def test_deep_nesting_is_invalid_argument_on_every_path_and_the_server_lives(stack, binary):
    server = stack.servers[binary]
    # What crashed every server: ~90 KB of '[' and ~700 KB of objects, far under the frame limit.
    for deep in (arrays(45_000), objects(110_000)):
        assert_refused_and_alive(server, HEALTH, with_unknown_member(b'{"service":""}', deep))
        assert_refused_and_alive(server, REFLECTION, with_unknown_member(b"{}", deep))
    # One level past the bound (the request object is the first level), and the bound itself.
    assert_refused_and_alive(server, HEALTH, with_unknown_member(b"{}", arrays(DEFAULT_DEPTH)))
    connection = server.connect()
    assert call_raw(connection, HEALTH, with_unknown_member(b"{}", arrays(DEFAULT_DEPTH - 1))).code == 0
    connection.close()


def test_a_hello_nested_past_the_bound_is_refused_with_goaway(stack):
    server = stack.servers["broker"]
    connection = jframe.Connection(server.host, server.port, send_hello=False)
    connection.send(jframe.HELLO, 0, 0, b'{"versions":[1],"x":' + arrays(45_000) + b"}")
    assert connection.wait_goaway()["code"] == jframe.CODE["INVALID_ARGUMENT"]
    connection.close()
    assert server.process.poll() is None, server.log


def test_a_record_value_past_the_bound_is_refused_and_nothing_is_stored(stack):
    server = stack.servers["broker"]
    connection = server.connect()
    assert connection.unary("cqrs.broker.v1.Broker/CreateTopic", {"name": "deep", "partitions": 1}).code == 0

    def produce(value: bytes) -> jframe.CallResult:
        return call_raw(connection, "cqrs.broker.v1.Broker/Produce",
                        b'{"topic":"deep","records":[{"value":' + value + b"}]}")

    # The value sits three levels down (request, records, record).
    refused = produce(arrays(DEFAULT_DEPTH))
    assert refused.code == jframe.CODE["INVALID_ARGUMENT"] and "nested deeper" in refused.trailers["message"]
    assert produce(arrays(43_000)).code == jframe.CODE["INVALID_ARGUMENT"]
    deepest = arrays(DEFAULT_DEPTH - 3)
    assert produce(deepest).code == 0, "a value within the bound is stored"
    fetched = connection.unary("cqrs.broker.v1.Broker/Fetch", {"topic": "deep", "partition": 0, "offset": "0"})
    assert fetched.code == 0, fetched.trailers
    assert [json.dumps(r["value"], separators=(",", ":")).encode() for r in fetched.messages[0]["records"]] == [deepest]
    connection.close()


def test_the_bound_is_a_flag_and_out_of_range_values_stop_the_binary(start_server):
    server = start_server("--max-json-depth", "16")
    connection = server.connect()
    assert call_raw(connection, HEALTH, with_unknown_member(b"{}", arrays(15))).code == 0
    refused = call_raw(connection, HEALTH, with_unknown_member(b"{}", arrays(16)))
    assert refused.code == jframe.CODE["INVALID_ARGUMENT"] and "deeper than 16" in refused.trailers["message"]
    connection.close()
    for value in ("8", "5000"):
        result = subprocess.run([str(BIN_DIR / "rpc-testserver"), "--listen", "127.0.0.1:0", "--max-json-depth", value],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode != 0 and "--max-json-depth must be between 16 and 1024" in result.stderr, result.stderr
    result = subprocess.run([str(BIN_DIR / "rpc-testserver"), "--listen", "127.0.0.1:0"], capture_output=True, text=True,
                            timeout=30, env={**os.environ, "JFRAME_MAX_JSON_DEPTH": "2000"})
    assert result.returncode != 0 and "JFRAME_MAX_JSON_DEPTH must be between 16 and 1024" in result.stderr, result.stderr


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_the_server_backs_off_warns_and_recovers():
    """With the open-file limit at 64, connections past it wait in the backlog: the accept loop
    must not spin (it did: 48k failing accept4 calls in 3 s at 100% CPU, and no log line)."""
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    process = subprocess.Popen([str(BIN_DIR / "rpc-testserver"), "--listen", "127.0.0.1:0", "--log-level", "warning"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=low_limit)
    held = []
    try:
        port = json.loads(process.stdout.readline())["port"]
        for _ in range(80):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(jframe.encode_frame(jframe.HELLO, 0, 0, jframe.dumps(
                {"versions": [1], "maxFrameBytes": 65536, "initialCredit": 8})))
            held.append(sock)
        time.sleep(0.5)
        before = cpu_seconds(process.pid)
        time.sleep(3)
        busy = cpu_seconds(process.pid) - before
        assert busy < 0.6, f"the server used {busy:.2f} s of CPU in 3 s while out of descriptors"
        for sock in held:
            sock.close()
        held.clear()
        # Descriptors are free again: a new client is served within the longest pause.
        deadline = time.monotonic() + 10
        while True:
            try:
                connection = jframe.Connection("127.0.0.1", port)
                assert connection.unary(HEALTH, {}).code == 0
                connection.close()
                break
            except (OSError, TimeoutError):
                assert time.monotonic() < deadline, "no connection was served after descriptors were freed"
                time.sleep(0.2)
    finally:
        for sock in held:
            sock.close()
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    warnings = [line for line in stderr.splitlines() if "accept failed" in line]
    assert warnings and "Too many open files" in warnings[0], stderr[-2000:]
    assert len(warnings) <= 2, f"the warning is rate-limited: {len(warnings)} lines"


def broker_with_file_limit(data: str, limit: int, *args: str) -> subprocess.Popen:
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return subprocess.Popen([str(BIN_DIR / "broker"), "--listen", "127.0.0.1:0", "--log-level", "warning",
                             "--data-dir", data, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=low_limit)


def test_partitions_past_the_open_file_limit_serve_and_the_broker_starts_again(tmp_path):
    """Each partition held three descriptors open: a few wide topics took the broker past its
    open-file limit, partitions went offline, and it would not start again. With the descriptor
    budget, 600 partitions (1,800 files) live under a limit of 256."""
    data = str(tmp_path / "broker")
    topics = {f"wide{i}": 200 for i in range(3)}
    for start in range(2):
        process = broker_with_file_limit(data, 256)
        try:
            line = process.stdout.readline()
            assert line, process.stderr.read()
            connection = jframe.Connection("127.0.0.1", json.loads(line)["port"])
            if start == 0:
                for name, partitions in topics.items():
                    created = connection.unary("cqrs.broker.v1.Broker/CreateTopic", {"name": name, "partitions": partitions})
                    assert created.code == 0, created.trailers
                for name, partitions in topics.items():
                    for partition in range(partitions):
                        produced = connection.unary("cqrs.broker.v1.Broker/Produce", {
                            "topic": name, "records": [{"key": "k", "value": f"{name}/{partition}", "partition": partition}]})
                        assert produced.code == 0, (name, partition, produced.trailers)
            for name, partitions in topics.items():
                for partition in range(0, partitions, 7):
                    fetched = connection.unary("cqrs.broker.v1.Broker/Fetch", {"topic": name, "partition": partition, "offset": "0"})
                    assert fetched.code == 0, (start, name, partition, fetched.trailers)
                    assert [r["value"] for r in fetched.messages[0]["records"]] == [f"{name}/{partition}"]
            described = connection.unary("cqrs.broker.v1.Broker/ListTopics", {})
            assert described.code == 0
            connection.close()
            open_fds = len(os.listdir(f"/proc/{process.pid}/fd"))
            assert open_fds < 256, open_fds
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr[-3000:]
        assert "offline" not in stderr and "Too many open files" not in stderr, stderr[-3000:]


def test_create_topic_past_the_partition_budget_is_resource_exhausted(tmp_path):
    process = broker_with_file_limit(str(tmp_path / "broker"), 4096, "--max-partitions", "100")
    try:
        connection = jframe.Connection("127.0.0.1", json.loads(process.stdout.readline())["port"])
        assert connection.unary("cqrs.broker.v1.Broker/CreateTopic", {"name": "a", "partitions": 60}).code == 0
        refused = connection.unary("cqrs.broker.v1.Broker/CreateTopic", {"name": "b", "partitions": 41})
        assert refused.code == jframe.CODE["RESOURCE_EXHAUSTED"], refused.trailers
        assert "holds 60 partitions" in refused.trailers["message"] and "budget of 100" in refused.trailers["message"]
        assert connection.unary("cqrs.broker.v1.Broker/ListTopics", {}).messages[0]["topics"][0]["name"] == "a"
        assert connection.unary("cqrs.broker.v1.Broker/CreateTopic", {"name": "b", "partitions": 40}).code == 0
        connection.close()
    finally:
        process.terminate()
        process.communicate(timeout=60)


def test_int64_strings_follow_the_schema_pattern(stack):
    """"+5" passed Swift's Int64("+5") though every int64 member's pattern is ^-?[0-9]+$."""
    stack.commands.account("OpenAccount", open_request("acct-int64", 100))
    for amount in ("+5", " 5", "5 ", "", "-", "1e3", "0x10", "9223372036854775808"):
        refused = stack.commands.call("BankAccounts", "DepositFunds", {
            "accountId": "acct-int64", "amount": {"amountMinor": amount, "currency": "EUR"}}, expect="INVALID_ARGUMENT")
        assert "amountMinor" in refused["message"], (amount, refused)


def test_a_nul_inside_a_name_is_stored_and_shown_whole(stack):
    holder = "Ada\u0000Lovelace"
    opened = stack.commands.account("OpenAccount", {**open_request("acct-nul", 100), "holder": holder})
    account = stack.queries.call("Accounts", "GetAccount", {"accountId": "acct-nul", "minPosition": opened["position"]})
    assert account["holder"] == holder


def test_a_topic_name_of_the_longest_valid_length_lives_through_create_produce_restart_delete(start_server, protocols):
    broker = BrokerProcess(start_server, protocols)
    try:
        name = "t" * 249
        broker.call("CreateTopic", {"name": name, "partitions": 2})
        broker.call("Produce", {"topic": name, "records": [{"key": "k", "value": 1}]})
        broker.restart()
        assert sum(len(broker.fetch_all(name, p)) for p in range(2)) == 1
        broker.call("DeleteTopic", {"name": name})
        assert broker.call("ListTopics", {})["topics"] == []
        assert os.listdir(os.path.join(broker.data, "topics")) == []
    finally:
        broker.cleanup()


def test_a_command_service_short_of_disk_starts_without_the_zeros_ahead_of_its_wal(stack, tmp_path):
    """The event store zero-fills 16 MiB of WAL when it opens; with less room than that it
    refused to start. A file size limit of 8 MiB stands in for the full disk (the same failing
    write): the service starts, says why its WAL is not preallocated, and takes commands."""
    import signal

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, 8 << 20))

    broker = stack.servers["broker"]
    data = tmp_path / "commands"
    data.mkdir()
    process = subprocess.Popen([str(BIN_DIR / "command-service"), "--listen", "127.0.0.1:0", "--log-level", "warning",
                                "--data-dir", str(data), "--broker", f"{broker.host}:{broker.port}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=small_files)
    try:
        line = process.stdout.readline()
        assert line, process.stderr.read()
        connection = jframe.Connection("127.0.0.1", json.loads(line)["port"])
        opened = connection.unary("cqrs.commands.v1.BankAccounts/OpenAccount", open_request("acct-short", 100))
        assert opened.code == 0, opened.trailers
        connection.close()
        wal = [path for path in data.rglob("*-wal")]
        assert wal and all(path.stat().st_size < 8 << 20 for path in wal)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert "the WAL is not zero-filled ahead" in stderr, stderr[-2000:]


def small_disk(tmp_path) -> pathlib.Path:
    """A 4 MiB tmpfs to fill (root only: it mounts one; the test is skipped otherwise). The
    caller unmounts it."""
    if os.geteuid() != 0:
        pytest.skip("mounts a tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    return disk


def fill(disk: pathlib.Path) -> None:
    """Writes zeros into `disk` until it is full: unbuffered, in ever smaller writes down to one
    byte (a buffered file's close would flush what the full disk refused, and raise)."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        size = 65536
        while size:
            try:
                os.write(fd, b"\0" * size)
            except OSError:
                size //= 2
    finally:
        os.close(fd)


def test_a_rebuild_on_a_full_disk_is_resource_exhausted_and_leaves_no_file(stack, tmp_path):
    """It answered UNKNOWN and left an empty .rebuild file. A 4 MiB tmpfs, filled once the
    query-service is up, is the full disk (root only: it mounts one)."""
    disk = small_disk(tmp_path)
    broker, commands = stack.servers["broker"], stack.servers["command-service"]
    process = None
    try:
        process = subprocess.Popen([str(BIN_DIR / "query-service"), "--listen", "127.0.0.1:0", "--log-level", "warning",
                                    "--data-dir", str(disk), "--broker", f"{broker.host}:{broker.port}",
                                    "--commands", f"{commands.host}:{commands.port}", "--group", "full-disk"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        connection = jframe.Connection("127.0.0.1", json.loads(process.stdout.readline())["port"])
        before = set(os.listdir(disk))
        fill(disk)
        refused = connection.unary("cqrs.queries.v1.ReadModels/Rebuild", {"pageSize": 100})
        assert refused.code == jframe.CODE["RESOURCE_EXHAUSTED"], refused.trailers
        assert "disk is full" in refused.trailers["message"]
        assert not [name for name in os.listdir(disk) if ".rebuild" in name], os.listdir(disk)
        os.remove(disk / "filler")
        rebuilt = connection.unary("cqrs.queries.v1.ReadModels/Rebuild", {"pageSize": 100})
        assert rebuilt.code == 0 and rebuilt.messages[-1]["done"], rebuilt.trailers
        assert set(os.listdir(disk)) <= before | {"filler"}
        connection.close()
    finally:
        if process:
            process.terminate()
            process.communicate(timeout=30)
        subprocess.run(["umount", str(disk)], check=False)


def test_the_relay_reports_a_refusing_broker_at_once(start_server, protocols, tmp_path):
    """The relay said brokerConnected: true for ~30 s while every produce was refused (its
    producer retries for up to its delivery timeout). A broker whose disk fills refuses."""
    disk = small_disk(tmp_path)
    try:
        broker = start_server("--data-dir", str(disk / "broker"), "--preallocate-bytes", "0", binary="broker")
        commands = CommandService(start_server, protocols, types.SimpleNamespace(running=broker))
        commands.account("OpenAccount", open_request("acct-relay", 100))
        commands.wait_published()
        assert commands.call("EventStore", "GetStatus", {})["brokerConnected"] is True
        fill(disk)
        # A record may still fit the last page a segment file has; a few dozen do not. Two
        # events behind is a refusal, not the relay's ordinary lag; one behind with the status
        # already saying so (a loaded machine's relay may tell before the next deposit) is too.
        refused_since = None
        for _ in range(200):
            commands.account("DepositFunds", {"accountId": "acct-relay", "amount": {"amountMinor": "5", "currency": "EUR"}})
            status = commands.call("EventStore", "GetStatus", {})
            if int(status["publishedPosition"]) < int(status["headPosition"]) - 1:
                refused_since = refused_since or time.monotonic()
            if not status["brokerConnected"] or (refused_since and time.monotonic() - refused_since > 5):
                break
            time.sleep(0.05)
        assert int(status["publishedPosition"]) < int(status["headPosition"]), f"the broker never refused: {status}"
        assert not status["brokerConnected"], f"still connected 5 s after the broker began refusing: {status}"
        assert "retried" in status.get("lastError", ""), status
        commands.cleanup()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


DAY_MS = 86_400_000


def test_producer_timestamps_are_bounded_and_log_append_time_keeps_what_a_skewed_clock_makes_look_old(start_server, protocols):
    """A producer clock 8 days behind made records arrive past the 7-day retention, and the
    broker took 0 and Int64.max alike. Bounds on CREATE_TIME topics (an hour ahead by default),
    and LOG_APPEND_TIME topics, whose records retention counts from their append."""
    broker = BrokerProcess(start_server, protocols, "--segment-bytes", "1024", "--maintenance-interval-ms", "100")
    try:
        broker.call("CreateTopic", {"name": "create-time", "partitions": 1})
        appended = broker.call("CreateTopic", {"name": "append-time", "partitions": 1, "config": {"timestampType": "LOG_APPEND_TIME"}})
        assert appended["config"]["timestampType"] == "LOG_APPEND_TIME"
        assert broker.call("DescribeTopic", {"name": "create-time"})["config"]["timestampType"] == "CREATE_TIME"
        now = int(time.time() * 1000)

        def produce(topic: str, timestamp: int, expect: str = "OK", value: str = "x"):
            return broker.call("Produce", {"topic": topic, "records": [{"value": value, "timestamp": timestamp}]}, expect=expect)

        ahead = broker.connection.unary("cqrs.broker.v1.Broker/Produce", {
            "topic": "create-time", "records": [{"value": "x", "timestamp": now + 2 * 3_600_000}]})
        assert ahead.code == jframe.CODE["INVALID_ARGUMENT"] and "ahead of the broker's clock" in ahead.trailers["message"]
        assert ahead.trailers["details"][0]["value"]["violations"][0]["field"] == "records[0].timestamp"
        for bad in (9_223_372_036_854_775_807, -5):
            assert broker.connection.unary("cqrs.broker.v1.Broker/Produce", {
                "topic": "create-time", "records": [{"value": "x", "timestamp": bad}]}).code == jframe.CODE["INVALID_ARGUMENT"]
        # Eight days behind: accepted on both (no bound behind by default), 40 records each so
        # that segments of 1 KiB seal, then one of now.
        for topic in ("create-time", "append-time"):
            for i in range(40):
                produce(topic, now - 8 * DAY_MS, value="r" * 60)
            produce(topic, now)
        time.sleep(1.0)
        created = broker.call("DescribeTopic", {"name": "create-time"})["partitions"][0]
        assert int(created["logStartOffset"]) > 0, "retention deleted the CREATE_TIME topic's old segments"
        kept = broker.fetch_all("append-time", 0)
        assert len(kept) == 41, "retention kept every record of the LOG_APPEND_TIME topic"
        assert all(abs(int(record["timestamp"]) - now) < 60_000 for record in kept), "stamped with the broker's clock"
    finally:
        broker.cleanup()
    strict = BrokerProcess(start_server, protocols, "--max-timestamp-behind-ms", str(DAY_MS))
    try:
        strict.call("CreateTopic", {"name": "t", "partitions": 1})
        behind = strict.connection.unary("cqrs.broker.v1.Broker/Produce", {
            "topic": "t", "records": [{"value": "x", "timestamp": int(time.time() * 1000) - 8 * DAY_MS}]})
        assert behind.code == jframe.CODE["INVALID_ARGUMENT"] and "behind the broker's clock" in behind.trailers["message"]
    finally:
        strict.cleanup()


def test_the_relays_event_topics_take_the_brokers_append_time(stack):
    stack.commands.account("OpenAccount", open_request("acct-append-time", 100))
    stack.commands.wait_published()
    topic = stack.broker.call("DescribeTopic", {"name": "BankAccount"})
    assert topic["config"]["timestampType"] == "LOG_APPEND_TIME"


def test_a_rebuild_repairs_a_read_side_that_retention_left_behind(start_server, protocols):
    """Retention deleted records a stopped query-service had not read: it said OUT_OF_RANGE and
    stopped following; `cqrs rebuild` fixed the balances, but the partition never followed again
    and every read-your-writes query timed out until its data was wiped."""
    from test_queries import QueryService
    broker = BrokerProcess(start_server, protocols, "--retention-ms", "1", "--segment-bytes", "1024",
                           "--maintenance-interval-ms", "100")
    commands = CommandService(start_server, protocols, broker)
    queries = QueryService(start_server, protocols, broker, commands)
    try:
        opened = commands.account("OpenAccount", open_request("acct-behind", 100))
        queries.call("Accounts", "GetAccount", {"accountId": "acct-behind", "minPosition": opened["position"]})
        queries.connection.close()
        assert queries.running.terminate() == 0

        def deposit(minor: int) -> dict:
            return commands.account("DepositFunds", {"accountId": "acct-behind", "amount": {"amountMinor": str(minor), "currency": "EUR"}})

        for _ in range(40):
            last = deposit(1)
        commands.wait_published()
        deadline = time.monotonic() + 10
        while not any(int(p["logStartOffset"]) > 1 for p in broker.call("DescribeTopic", {"name": "BankAccount"})["partitions"]):
            assert time.monotonic() < deadline, "retention did not delete the unread records"
            time.sleep(0.1)
        queries.start()
        stalled = queries.connection.unary("cqrs.queries.v1.Accounts/GetAccount",
                                           {"accountId": "acct-behind", "minPosition": last["position"]}, timeout_ms=1500)
        assert stalled.code == jframe.CODE["DEADLINE_EXCEEDED"], stalled.trailers
        assert "stop following" in (queries.call("ReadModels", "GetStatus", {}).get("lastError") or "")
        assert queries.stream("ReadModels", "Rebuild", {"pageSize": 100})[-1]["done"]
        account = queries.call("Accounts", "GetAccount", {"accountId": "acct-behind", "minPosition": last["position"]})
        assert account["balance"]["amountMinor"] == "140"
        # The projection follows again: a deposit after the rebuild is read back by position.
        after = deposit(5)
        followed = queries.connection.unary("cqrs.queries.v1.Accounts/GetAccount",
                                            {"accountId": "acct-behind", "minPosition": after["position"]}, timeout_ms=15000)
        assert followed.code == 0, followed.trailers
        assert followed.messages[0]["balance"]["amountMinor"] == "145"
        assert not queries.call("ReadModels", "GetStatus", {}).get("lastError")
    finally:
        broker.cleanup()
        commands.cleanup()


def test_read_your_writes_never_answers_without_a_parked_event(stack):
    """A record claiming the next event of an account, with a value that cannot be applied, was
    parked FAILED yet counted as handled: GetAccount at its position answered OK with the old
    balance. Now the answer names the parked event instead."""
    opened = stack.commands.account("OpenAccount", open_request("acct-forged", 100))
    stack.commands.account("OpenAccount", open_request("acct-bystander", 100))
    status = stack.commands.wait_published()
    forged_position = int(status["headPosition"]) + 1
    produced = stack.broker.call("Produce", {"topic": "BankAccount", "records": [{
        "key": "acct-forged", "value": {"amount": "not money"},
        "headers": {"ce_id": "forged-1", "ce_type": "FundsDeposited", "ce_subject": "BankAccount-acct-forged",
                    "ce_position": str(forged_position), "ce_streamversion": "2", "ce_schemaversion": "1",
                    "ce_time": "2026-12-03T00:00:00.000Z"}}]})
    assert produced["results"]
    try:
        deadline = time.monotonic() + 10
        while not any(e["eventId"] == "forged-1" for e in stack.queries.call("ReadModels", "ListParked", {}).get("events", [])):
            assert time.monotonic() < deadline, "the forged record was not parked"
            time.sleep(0.05)
        refused = stack.queries.connection.unary("cqrs.queries.v1.Accounts/GetAccount",
                                                 {"accountId": "acct-forged", "minPosition": str(forged_position)}, timeout_ms=5000)
        assert refused.code == jframe.CODE["FAILED_PRECONDITION"], refused.trailers
        assert f"position {forged_position}" in refused.trailers["message"] and "parked" in refused.trailers["message"]
        # Below it, and for another account, the answers stand.
        below = stack.queries.call("Accounts", "GetAccount", {"accountId": "acct-forged", "minPosition": opened["position"]})
        assert below["balance"]["amountMinor"] == "100"
        other = stack.queries.connection.unary("cqrs.queries.v1.Accounts/GetAccount",
                                               {"accountId": "acct-bystander", "minPosition": str(forged_position)}, timeout_ms=5000)
        assert other.code == 0, other.trailers
        # A query over every account would miss it too.
        listed = stack.queries.connection.unary("cqrs.queries.v1.Accounts/ListAccounts", {"minPosition": str(forged_position)},
                                                timeout_ms=5000)
        assert listed.code == jframe.CODE["FAILED_PRECONDITION"], listed.trailers
    finally:
        # The next test counts parked events: none of this one's may stay.
        stack.queries.call("ReadModels", "SkipParked", {"all": True})


def wait_parked(stack, count: int) -> list:
    deadline = time.monotonic() + 10
    while len(events := stack.queries.call("ReadModels", "ListParked", {}).get("events", [])) < count:
        assert time.monotonic() < deadline, events
        time.sleep(0.05)
    return events


def test_a_record_claiming_the_next_events_identity_cannot_take_its_place(stack):
    """A forged record with the next real event's stream version and position was parked; the
    real event then arrived, was dropped as a duplicate of it, and a skip of the forged record
    moved the stream past the real one for good. Now the real event is kept as a CONFLICT, a
    skip is checked against the event store, and the store's event wins."""
    stack.commands.account("OpenAccount", open_request("acct-claimed", 100))
    status = stack.commands.wait_published()
    claimed_position = int(status["headPosition"]) + 1
    stack.broker.call("Produce", {"topic": "BankAccount", "records": [{
        "key": "acct-claimed", "value": {"amount": "not money"},
        "headers": {"ce_id": "forged-claim", "ce_type": "FundsDeposited", "ce_subject": "BankAccount-acct-claimed",
                    "ce_position": str(claimed_position), "ce_streamversion": "2", "ce_schemaversion": "1",
                    "ce_time": "2026-12-03T00:00:00.000Z"}}]})
    wait_parked(stack, 1)
    deposit = stack.commands.account("DepositFunds", {"accountId": "acct-claimed", "amount": eur(25)})
    assert deposit["position"] == str(claimed_position)
    parked = {e["eventId"]: e for e in wait_parked(stack, 2)}
    forged, real = parked.pop("forged-claim"), next(iter(parked.values()))
    assert forged["state"] == real["state"] == "CONFLICT", (forged, real)
    assert real["streamVersion"] == "2" and "claimed by parked event" in real["error"]
    refused = stack.queries.connection.unary("cqrs.queries.v1.Accounts/GetAccount",
                                             {"accountId": "acct-claimed", "minPosition": deposit["position"]}, timeout_ms=5000)
    assert refused.code == jframe.CODE["FAILED_PRECONDITION"], refused.trailers
    # The store holds the real one: it cannot be skipped, and nothing changes.
    denied = stack.queries.connection.unary("cqrs.queries.v1.ReadModels/SkipParked", {"ids": [real["id"], forged["id"]]},
                                            timeout_ms=5000)
    assert denied.code == jframe.CODE["FAILED_PRECONDITION"], denied.trailers
    assert f"record {real['id']} is an event the event store holds" in denied.trailers["message"]
    assert len(stack.queries.call("ReadModels", "ListParked", {})["events"]) == 2
    # The forged one is not the store's: skipping it lets the real deposit in.
    skipped = stack.queries.call("ReadModels", "SkipParked", {"ids": [forged["id"]]})
    assert (skipped["skipped"], skipped["applied"], skipped["stillParked"]) == (1, 1, 0), skipped
    account = stack.queries.call("Accounts", "GetAccount", {"accountId": "acct-claimed", "minPosition": deposit["position"]})
    assert account["balance"] == eur(125) and account["version"] == "2"


def test_a_rebuild_needs_the_command_service_only(start_server, protocols):
    """The swap asks the broker for its log starts (to repair offsets retention left behind);
    with the broker away it does without, rather than fail the whole rebuild at its end."""
    from test_queries import QueryService
    broker = BrokerProcess(start_server, protocols)
    commands = CommandService(start_server, protocols, broker)
    queries = QueryService(start_server, protocols, broker, commands)
    try:
        opened = commands.account("OpenAccount", open_request("acct-no-broker", 100))
        queries.call("Accounts", "GetAccount", {"accountId": "acct-no-broker", "minPosition": opened["position"]})
        broker.connection.close()
        assert broker.running.terminate() == 0
        assert queries.stream("ReadModels", "Rebuild", {"pageSize": 100})[-1]["done"]
        assert queries.call("Accounts", "GetAccount", {"accountId": "acct-no-broker"})["balance"]["amountMinor"] == "100"
    finally:
        broker.cleanup()
        commands.cleanup()


def wal_frames(path: str) -> tuple[int, list[int]]:
    """The WAL's page size and the offsets of its frames that belong to the current WAL (their
    salts match the header's; the file may run on with zero-filled space)."""
    data = pathlib.Path(path).read_bytes()
    page_size = int.from_bytes(data[8:12], "big")
    salts = data[16:24]
    offsets, offset = [], 32
    while offset + 24 + page_size <= len(data) and data[offset + 8:offset + 16] == salts:
        offsets.append(offset)
        offset += 24 + page_size
    return page_size, offsets


def test_a_flipped_wal_frame_loses_commits_and_the_store_refuses_to_reuse_their_positions(start_server, protocols):
    """One bit flipped in a WAL frame after a kill -9: SQLite drops that commit and every later
    one, so acknowledged, published deposits are gone. The store used to start as if nothing
    happened and hand their positions out again. Now the relay finds the broker holding events
    past the store's head, appends are refused with DATA_LOSS, the status says why, and
    cqrs verify exits 15."""
    broker = BrokerProcess(start_server, protocols)
    commands = CommandService(start_server, protocols, broker)
    reader = None
    try:
        commands.account("OpenAccount", open_request("acct-wal", 100))
        commands.wait_published()
        database = f"{commands.data}/events.sqlite"
        # A reader holding a snapshot keeps the checkpointer from copying later frames into the
        # database file, so the next commits live only in the WAL, as after a crash.
        reader = subprocess.Popen(
            [sys.executable, "-c", "import sqlite3, sys, time\n"
             f"c = sqlite3.connect({database!r}, isolation_level=None); c.execute('BEGIN')\n"
             "c.execute('SELECT count(*) FROM events').fetchone(); print('pinned', flush=True); time.sleep(600)"],
            stdout=subprocess.PIPE, text=True)
        assert reader.stdout.readline().strip() == "pinned"
        _, pinned = wal_frames(database + "-wal")
        salts = pathlib.Path(database + "-wal").read_bytes()[16:24]
        lost = [commands.account("DepositFunds", {"accountId": "acct-wal", "amount": eur(n)}) for n in (5, 7)]
        commands.wait_published()
        commands.kill()
        reader.kill()
        reader.wait()
        page_size, frames = wal_frames(database + "-wal")
        # A snapshot taken when every frame was already in the database file reads the file
        # alone, and the writer may then start the WAL over (new salts): the deposits' frames
        # come first.
        kept = len(pinned) if pathlib.Path(database + "-wal").read_bytes()[16:24] == salts else 0
        assert len(frames) > kept, "the deposits' frames are in the WAL"
        first_new = frames[kept]
        with open(database + "-wal", "r+b") as wal:
            wal.seek(first_new + 24 + page_size // 2)
            byte = wal.read(1)
            wal.seek(first_new + 24 + page_size // 2)
            wal.write(bytes([byte[0] ^ 0x10]))

        commands.start()
        deadline = time.monotonic() + 15
        while "writeRefusal" not in (status := commands.call("EventStore", "GetStatus", {})):
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        assert int(status["headPosition"]) < int(lost[-1]["position"]), "the flipped frame took the deposits with it"
        assert f"position {lost[-1]['position']}" in status["writeRefusal"], status
        refused = commands.connection.unary("cqrs.commands.v1.BankAccounts/DepositFunds",
                                            {"accountId": "acct-wal", "amount": eur(1)}, timeout_ms=5000)
        assert refused.code == jframe.CODE["DATA_LOSS"], refused.trailers
        assert "appends are refused" in refused.trailers["message"]
        verify = subprocess.run([str(BIN_DIR / "cqrs"), "verify", "--commands", f"{commands.running.host}:{commands.running.port}"],
                                capture_output=True, text=True, timeout=60)
        assert verify.returncode == 15, (verify.stdout, verify.stderr)
        assert "appends are refused" in verify.stdout
        # Reads go on, for recovery.
        assert commands.call("EventStore", "ReadAll", {"fromPosition": "1"})["events"]
    finally:
        if reader and reader.poll() is None:
            reader.kill()
        commands.connection.close()
        commands.running.stop()
        broker.cleanup()
        commands.cleanup()


def test_cqrs_verify_checks_a_sound_store(start_server, protocols):
    broker = BrokerProcess(start_server, protocols)
    commands = CommandService(start_server, protocols, broker)
    try:
        for n in range(3):
            commands.account("OpenAccount", open_request(f"acct-verify-{n}", 100))
        verify = subprocess.run([str(BIN_DIR / "cqrs"), "verify", "--json", "--page-size", "2",
                                 "--commands", f"{commands.running.host}:{commands.running.port}"],
                                capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stderr
        lines = [json.loads(line) for line in verify.stdout.splitlines()]
        assert [line["done"] for line in lines] == [False, False, True]
        assert lines[-1]["eventsChecked"] == "3" and lines[-1]["problemCount"] == 0 and lines[-1]["streams"] == 3
    finally:
        broker.cleanup()
        commands.cleanup()


def test_invalid_utf8_in_a_string_is_invalid_argument_and_nothing_is_stored(stack):
    """Invalid UTF-8 inside a JSON string was replaced by U+FFFD and stored altered (a broker
    record's key, an account's holder). Now it ends the call with code 3 naming the member."""
    bad = b'"k\xff\xfey"'
    produced = call_raw(stack.broker.connection, "cqrs.broker.v1.Broker/Produce",
                        b'{"topic":"utf8-test","records":[{"key":' + bad + b',"value":1}]}')
    assert produced.code == jframe.CODE["INVALID_ARGUMENT"], produced.trailers
    assert "invalid UTF-8" in produced.trailers["message"]
    fields = {v["field"] for d in produced.trailers["details"] for v in d["value"]["violations"]}
    assert any(field.startswith("records") and field.endswith("key") for field in fields), fields
    topics = stack.broker.call("ListTopics", {}).get("topics", [])
    assert "utf8-test" not in {t["name"] for t in topics}
    opened = call_raw(stack.commands.connection, "cqrs.commands.v1.BankAccounts/OpenAccount",
                      b'{"accountId":"acct-utf8","holder":"Ada \xc3\x28","accountType":"SAVINGS",'
                      b'"openingBalance":{"amountMinor":"1","currency":"EUR"}}')
    assert opened.code == jframe.CODE["INVALID_ARGUMENT"], opened.trailers
    assert stack.commands.call("EventStore", "ReadStream", {"streamId": "BankAccount-acct-utf8"})["events"] == []
    # Valid multi-byte text still passes.
    assert call_raw(stack.commands.connection, "cqrs.commands.v1.BankAccounts/OpenAccount",
                    '{"accountId":"acct-utf8","holder":"Ada Lovelace é","accountType":"SAVINGS",'
                    '"openingBalance":{"amountMinor":"1","currency":"EUR"}}'.encode()).code == 0
