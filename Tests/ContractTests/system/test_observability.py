"""Observability. Prometheus metrics (`--metrics-listen`): the three services scraped while they
run, each page parsed with the `prometheus_client` package's parser (the one Prometheus's own
Python client ships), checking that the values move with traffic and agree with the services' own
status. Logs for machines (`--log-format json`): every line one JSON object with the ids lifted."""
from __future__ import annotations

import json
import re
import time

import urllib.error
import urllib.request

import httpx
from prometheus_client.parser import text_string_to_metric_families

from processes import BrokerProcess, CommandService, QueryService, eur, open_request, place

METRICS = ("--metrics-listen", "127.0.0.1:0")


class Page:
    """One scrape: every sample by name, labels as a dict."""

    def __init__(self, address: str):
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
            assert response.status == 200
            self.content_type = response.headers["Content-Type"]
            text = response.read().decode()
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.samples = [sample for family in self.families.values() for sample in family.samples]

    def values(self, name: str, **labels) -> list[float]:
        return [s.value for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def value(self, name: str, **labels) -> float:
        """The one sample with this name and these labels (0 when there is none yet)."""
        found = self.values(name, **labels)
        assert len(found) <= 1, (name, labels, found)
        return found[0] if found else 0.0

    def total(self, name: str, **labels) -> float:
        return sum(self.values(name, **labels))


def test_three_services_scraped_before_and_after_traffic(start_server, protocols):
    broker = BrokerProcess(start_server, protocols, *METRICS)
    commands = CommandService(start_server, protocols, broker, *METRICS)
    queries = QueryService(start_server, protocols, broker, commands, *METRICS, "--http2-listen", "127.0.0.1:0")
    try:
        for running in (broker.running, commands.running, queries.running):
            assert running.metrics, "each server announces its metrics port"

        before = Page(commands.running.metrics)
        assert before.content_type.startswith("text/plain; version=0.0.4")
        assert before.families["rpc_server_connections"].type == "gauge"

        account = "acct-metrics"
        commands.account("OpenAccount", open_request(account, balance=1000))
        for _ in range(3):
            commands.account("DepositFunds", {"accountId": account, "amount": eur(250)})
        commands.account("WithdrawFunds", {"accountId": account, "amount": eur(1_000_000)}, expect="FAILED_PRECONDITION")
        place(commands, "order-metrics", "ada.lovelace@example.com")
        queries.wait_caught_up()
        queries.call("Accounts", "GetAccount", {"accountId": account})
        with httpx.Client(http1=False, http2=True, base_url=f"http://{queries.running.http2}", timeout=10) as edge:
            reply = edge.post("/cqrs.queries.v1.Accounts/GetAccount", json={"accountId": account},
                              headers={"content-type": "application/json"})
            assert reply.status_code == 200, reply.text

        # The command-service: calls by method and code, latency histograms, the store and the relay.
        after = Page(commands.running.metrics)
        service = "cqrs.commands.v1.BankAccounts"
        deposits = dict(transport="jframe", service=service, method="DepositFunds")
        assert after.value("rpc_server_calls_total", **deposits, code="OK") - before.value(
            "rpc_server_calls_total", **deposits, code="OK") == 3
        assert after.value("rpc_server_calls_total", transport="jframe", service=service, method="WithdrawFunds",
                           code="FAILED_PRECONDITION") == 1
        assert after.value("rpc_server_call_duration_seconds_count", **deposits) == 3
        assert after.value("rpc_server_call_duration_seconds_bucket", **deposits, le="+Inf") == 3
        assert 0 < after.value("rpc_server_call_duration_seconds_sum", **deposits) < 30
        assert after.families["rpc_server_call_duration_seconds"].type == "histogram"
        assert after.families["rpc_server_calls"].type == "counter"
        assert after.value("commands_total", command="DepositFunds", outcome="ok") == 3
        assert after.value("commands_total", command="WithdrawFunds", outcome="refused") == 1
        assert after.value("eventstore_append_duration_seconds_count", store="sqlite") >= 5
        assert after.value("eventstore_commit_batch_size_count", store="sqlite") >= 1
        status = commands.wait_published()
        settled = Page(commands.running.metrics)
        assert settled.value("eventstore_head_position") == int(status["headPosition"]) == 5
        assert settled.value("relay_published_position") == int(status["publishedPosition"])
        assert settled.value("relay_lag_events") == 0
        assert settled.value("relay_broker_connected") == 1
        assert settled.value("rpc_server_connections", transport="jframe") >= 1

        # The broker: records in and out, partitions, fdatasync, the projection's group.
        page = Page(broker.running.metrics)
        assert page.total("broker_produced_records_total") == 5
        assert page.value("broker_produced_records_total", topic="OnNewOrder") == 1
        assert page.total("broker_produced_bytes_total") > 5 * 50
        assert page.total("broker_fetched_records_total") >= 5
        assert page.total("broker_partition_high_watermark", topic="BankAccount") == 4
        assert page.total("broker_partition_log_size_bytes", topic="BankAccount") > 0
        assert page.value("broker_fdatasync_duration_seconds_count") >= 1
        assert page.families["broker_fdatasync_duration_seconds"].type == "histogram"
        assert page.values("broker_consumer_group_lag", group="query-service"), "the projection's group is seen"

        # The query-service: the projection's progress per partition, and both ports' calls.
        page = Page(queries.running.metrics)
        assert page.value("projection_applied_position") == 5
        lags = page.values("projection_lag_records")
        assert lags and all(lag == 0 for lag in lags)
        assert page.total("projection_applied_offset", topic="BankAccount") == 4
        assert page.value("readmodel_parked_events") == 0
        assert page.value("projection_broker_connected") == 1
        lookup = dict(service="cqrs.queries.v1.Accounts", method="GetAccount", code="OK")
        assert page.value("rpc_server_calls_total", transport="jframe", **lookup) == 1
        assert page.value("rpc_server_calls_total", transport="http2", **lookup) == 1
    finally:
        for part in (queries, commands, broker):
            part.cleanup()


def test_the_metrics_port_answers_only_get_metrics(start_server):
    server = start_server(*METRICS)
    for path, method, status in (("/", "GET", 404), ("/metrics/x", "GET", 404), ("/metrics", "POST", 405)):
        request = urllib.request.Request(f"http://{server.metrics}{path}", method=method, data=b"" if method == "POST" else None)
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError(f"{method} {path} answered 200")
        except urllib.error.HTTPError as error:
            assert error.code == status, (method, path, error.code)
    # Several scrapes on one keep-alive connection, as Prometheus scrapes.
    with httpx.Client(base_url=f"http://{server.metrics}", timeout=10) as client:
        for _ in range(3):
            assert client.get("/metrics").status_code == 200
        assert client.head("/metrics").status_code == 200


def test_metrics_are_off_unless_asked(start_server):
    server = start_server()
    assert server.metrics is None


def test_a_bad_metrics_address_is_refused_at_start(tmp_path):
    import subprocess
    from conftest import BIN_DIR
    done = subprocess.run([str(BIN_DIR / "rpc-testserver"), "--listen", "127.0.0.1:0", "--metrics-listen", "nowhere"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "--metrics-listen must be host:port" in done.stderr


def json_lines(server, messages: set[str], timeout: float = 10.0) -> list[dict]:
    """The server's stderr as JSON objects (each line must be one), once lines with each of
    `messages` are in (stderr is drained by a thread, so a line can come a moment late)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(line) for line in server.log.splitlines() if line.strip()]
        if messages <= {line["message"] for line in lines} or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_json_logs_one_object_per_line_with_the_request_id(start_server):
    server = start_server("--log-format", "json", "--log-level", "debug")
    connection = server.connect()
    try:
        failed = connection.unary("jframe.testing.v1.Echo/Fail", {"code": 5, "message": "no such thing"},
                                  metadata={"x-request-id": "req-json-1"})
        assert failed.code == 5
        ok = connection.unary("jframe.testing.v1.Echo/Get", {"id": "1", "account": "a", "amount": 1, "note": "hi"},
                              metadata={"x-request-id": "req-json-2"})
        assert ok.code == 0
    finally:
        connection.close()
    lines = json_lines(server, {"call failed", "call ok"})
    for line in lines:
        assert set(line) >= {"time", "level", "service", "logger", "message"}, line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]), line["time"]
        assert line["service"] == "rpc-testserver"
    failure = next(line for line in lines if line["message"] == "call failed")
    assert failure["level"] == "info"
    assert failure["request_id"] == "req-json-1"
    assert failure["metadata"]["rpc.status"] == "NOT_FOUND"
    assert failure["metadata"]["rpc.method"] == "jframe.testing.v1.Echo/Fail"
    success = next(line for line in lines if line["message"] == "call ok")
    assert success["level"] == "debug" and success["request_id"] == "req-json-2"


def test_an_unknown_log_format_is_refused_at_start():
    import subprocess
    from conftest import BIN_DIR
    done = subprocess.run([str(BIN_DIR / "rpc-testserver"), "--listen", "127.0.0.1:0", "--log-format", "xml"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "--log-format is text or json" in done.stderr


def health(running, service: str = "") -> str:
    connection = running.connect()
    try:
        reply = connection.unary("jframe.health.v1.Health/Check", {"service": service} if service else {})
        assert reply.code == 0, reply.trailers
        return reply.messages[0]["status"]
    finally:
        connection.close()


def test_a_query_service_waiting_to_catch_up_is_not_serving_until_it_has(start_server, protocols):
    """--ready-when-caught-up: with the broker away the read models cannot know their lag, so the
    query services (and the server as a whole) say NOT_SERVING; once the broker is back and the
    models caught up, SERVING; the health service itself answers throughout."""
    broker = BrokerProcess(start_server, protocols)
    commands = CommandService(start_server, protocols, broker)
    try:
        commands.account("OpenAccount", open_request("acct-health"))
        commands.wait_published()
        broker.kill()
        queries = QueryService(start_server, protocols, broker, commands, "--ready-when-caught-up")
        time.sleep(2.5)  # a few of the server's once-a-second reports
        assert health(queries.running, "cqrs.queries.v1.Accounts") == "NOT_SERVING"
        assert health(queries.running) == "NOT_SERVING"
        assert health(queries.running, "jframe.health.v1.Health") == "SERVING"
        broker.start()
        deadline = time.monotonic() + 30
        while health(queries.running, "cqrs.queries.v1.Accounts") != "SERVING":
            assert time.monotonic() < deadline, "the query service did not become SERVING after catching up"
            time.sleep(0.2)
        assert health(queries.running) == "SERVING"
        assert queries.call("Accounts", "GetAccount", {"accountId": "acct-health"})["accountId"] == "acct-health"
        queries.cleanup()
    finally:
        commands.cleanup()
        broker.cleanup()
