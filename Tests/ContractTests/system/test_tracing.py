"""Traces (`--otlp-endpoint`): W3C Trace Context continued across the services and exported over
OTLP/HTTP to a collector written here from the OTLP specification (its JSON encoding, with the
standard library's HTTP server), so no part of the check comes from the code under test."""
from __future__ import annotations

import base64
import http.server
import json
import secrets
import threading
import time

import httpx
import pytest

import jframe

from processes import BrokerProcess, CommandService, QueryService, eur, open_request


class Collector:
    """An OTLP/HTTP receiver: POST /v1/traces with an ExportTraceServiceRequest in JSON."""

    def __init__(self):
        self.spans: list[dict] = []
        self.requests = 0
        lock = threading.Lock()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = self.path == "/v1/traces" and self.headers.get("Content-Type", "").startswith("application/json")
                if ok:
                    request = json.loads(body)
                    with lock:
                        collector.requests += 1
                        for resource in request.get("resourceSpans", []):
                            service = next((a["value"].get("stringValue") for a in resource.get("resource", {}).get("attributes", [])
                                            if a["key"] == "service.name"), None)
                            for scope in resource.get("scopeSpans", []):
                                for span in scope.get("spans", []):
                                    collector.spans.append({**span, "service": service})
                self.send_response(200 if ok else 415)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, predicate, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            found = [span for span in list(self.spans) if predicate(span)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def tree(self, trace_id: str) -> str:
        """One trace as an indented tree: service, kind, name, duration; children by start time."""
        spans = [s for s in list(self.spans) if hex_id(s["traceId"]) == trace_id]
        ids = {hex_id(s["spanId"]) for s in spans}
        children: dict[str, list[dict]] = {}
        for span in spans:
            parent = hex_id(span["parentSpanId"]) if span.get("parentSpanId") else ""
            children.setdefault(parent if parent in ids else "", []).append(span)
        lines: list[str] = []

        def walk(parent: str, depth: int):
            for span in sorted(children.get(parent, []), key=lambda s: int(s["startTimeUnixNano"])):
                took = (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e6
                lines.append(f"{'  ' * depth}{span['service']:<16} {kind(span):<8} {span['name']}  {took:.2f} ms")
                walk(hex_id(span["spanId"]), depth + 1)
        walk("", 0)
        return "\n".join(lines)

    def close(self):
        self.server.shutdown()


def hex_id(value: str) -> str:
    """OTLP/JSON ids are hex by the specification; swift-otel's JSON encoder writes protobuf's
    JSON mapping, base64: accept both (its default protocol, http/protobuf, has no such question)."""
    if len(value) in (16, 32) and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    return base64.b64decode(value).hex()


def kind(span: dict) -> str:
    value = span.get("kind")
    names = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
    return names.get(value, str(value).replace("SPAN_KIND_", ""))


def attributes(span: dict) -> dict:
    return {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}


@pytest.fixture
def collector(monkeypatch):
    running = Collector()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    yield running
    running.close()


def test_a_callers_trace_is_continued_across_the_services_and_exported(start_server, protocols, collector):
    tracing = ("--otlp-endpoint", collector.endpoint)
    broker = BrokerProcess(start_server, protocols, *tracing)
    commands = CommandService(start_server, protocols, broker, *tracing)
    queries = QueryService(start_server, protocols, broker, commands, *tracing, "--http2-listen", "127.0.0.1:0")
    try:
        commands.account("OpenAccount", open_request("acct-trace"))
        queries.wait_caught_up()

        # A jframe call carrying traceparent: the server span continues it.
        trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
        connection = commands.running.connect()
        reply = connection.unary("cqrs.commands.v1.BankAccounts/DepositFunds", {"accountId": "acct-trace", "amount": eur(5)},
                                 metadata={"traceparent": f"00-{trace_id}-{parent_id}-01"})
        assert reply.code == 0, reply.trailers
        connection.close()
        [deposit] = collector.wait_for(lambda s: hex_id(s["traceId"]) == trace_id and s["name"].endswith("/DepositFunds"))
        assert hex_id(deposit["parentSpanId"]) == parent_id
        assert kind(deposit) == "SERVER" and deposit["service"] == "command-service"
        assert attributes(deposit)["rpc.system"] == "jframe"
        assert attributes(deposit)["rpc.service"] == "cqrs.commands.v1.BankAccounts"
        # The handling's own steps are its children.
        collector.wait_for(lambda s: hex_id(s["traceId"]) == trace_id and s["name"] == "append")
        inner = {s["name"]: s for s in collector.spans
                 if hex_id(s["traceId"]) == trace_id and hex_id(s.get("parentSpanId", "")) == hex_id(deposit["spanId"])}
        assert {"load", "decide", "append"} <= set(inner), sorted(inner)
        assert attributes(inner["append"])["cqrs.stream"] == "BankAccount-acct-trace"
        assert attributes(inner["decide"])["cqrs.command"] == "DepositFunds"
        print(collector.tree(trace_id))  # what the README shows (pytest -s)

        # A query whose minPosition is not applied shows its wait (here until its deadline).
        trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
        connection = queries.running.connect()
        waited = connection.unary("cqrs.queries.v1.Accounts/GetAccount", {"accountId": "acct-trace", "minPosition": "1000000"},
                                  timeout_ms=400, metadata={"traceparent": f"00-{trace_id}-{parent_id}-01"})
        connection.close()
        assert waited.code == jframe.CODE["DEADLINE_EXCEEDED"], waited.trailers
        [wait] = collector.wait_for(lambda s: hex_id(s["traceId"]) == trace_id and s["name"] == "wait for position")
        [lookup] = [s for s in collector.spans if hex_id(s["traceId"]) == trace_id and s["name"].endswith("/GetAccount")]
        assert hex_id(wait["parentSpanId"]) == hex_id(lookup["spanId"])
        assert 0.2 < (int(wait["endTimeUnixNano"]) - int(wait["startTimeUnixNano"])) / 1e9 < 2
        assert attributes(lookup)["rpc.jframe.status_code"] in (4, "4")

        # A Rebuild through the HTTP/2 edge with the header: the query-service's server span, its
        # client span for the command-service's ReadAll, and that call's server span there, one trace.
        trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
        with httpx.Client(http1=False, http2=True, base_url=f"http://{queries.running.http2}", timeout=30) as edge:
            answer = edge.post("/cqrs.queries.v1.ReadModels/Rebuild", content=b"\x00\x00\x00\x00\x02{}",
                               headers={"content-type": "application/connect+json", "traceparent": f"00-{trace_id}-{parent_id}-01"})
            assert answer.status_code == 200, answer.text
        in_trace = lambda s: hex_id(s["traceId"]) == trace_id  # noqa: E731
        collector.wait_for(lambda s: in_trace(s) and s["service"] == "command-service")
        # The rebuild also asks the broker where its topics start (DescribeTopic): the third service.
        assert collector.wait_for(lambda s: in_trace(s) and s["service"] == "broker"), "the broker's spans joined the trace"
        time.sleep(0.5)  # the rest of the trace's batches
        spans = [s for s in collector.spans if in_trace(s)]
        [rebuild] = [s for s in spans if s["name"] == "cqrs.queries.v1.ReadModels/Rebuild"]
        assert hex_id(rebuild["parentSpanId"]) == parent_id and kind(rebuild) == "SERVER" and rebuild["service"] == "query-service"
        calls = [s for s in spans if s["name"] == "cqrs.commands.v1.EventStore/ReadAll" and kind(s) == "CLIENT"]
        assert calls and all(hex_id(c["parentSpanId"]) == hex_id(rebuild["spanId"]) for c in calls)
        served = [s for s in spans if s["name"] == "cqrs.commands.v1.EventStore/ReadAll" and kind(s) == "SERVER"]
        assert served and {hex_id(s["parentSpanId"]) for s in served} <= {hex_id(c["spanId"]) for c in calls}
        assert all(s["service"] == "command-service" for s in served)
        described = [s for s in spans if s["service"] == "broker"]
        assert described and all(s["name"] == "cqrs.broker.v1.Broker/DescribeTopic" and kind(s) == "SERVER" for s in described)
        assert {hex_id(s["parentSpanId"]) for s in described} <= {hex_id(c["spanId"]) for c in spans if kind(c) == "CLIENT"}
        print(collector.tree(trace_id))

        # Without traceparent a call starts a trace of its own.
        connection = queries.running.connect()
        assert connection.unary("cqrs.queries.v1.Accounts/GetAccount", {"accountId": "acct-trace"}).code == 0
        connection.close()
        [lookup] = collector.wait_for(lambda s: s["name"] == "cqrs.queries.v1.Accounts/GetAccount" and not s.get("parentSpanId"))
        assert hex_id(lookup["traceId"]) != trace_id and kind(lookup) == "SERVER"
    finally:
        for part in (queries, commands, broker):
            part.cleanup()


def test_one_deposit_from_the_cli_is_one_trace_through_the_store_the_relay_the_broker_and_the_read_models(
        start_server, protocols, collector):
    """The CLI's call, the command-service's handling, the relay's publish of the stored event,
    the broker's append and the query-service's apply: one trace, each span the child of the one
    before, the apply also linked to the publish (OpenTelemetry's messaging conventions)."""
    import subprocess
    from conftest import BIN_DIR
    tracing = ("--otlp-endpoint", collector.endpoint)
    broker = BrokerProcess(start_server, protocols, *tracing)
    commands = CommandService(start_server, protocols, broker, *tracing)
    queries = QueryService(start_server, protocols, broker, commands, *tracing)
    try:
        commands.account("OpenAccount", open_request("acct-cli-trace"))
        queries.wait_caught_up()
        done = subprocess.run([str(BIN_DIR / "cqrs"), "accounts", "deposit", "acct-cli-trace", "--amount-minor", "700", "--json",
                               "--commands", f"{commands.running.host}:{commands.running.port}", "--otlp-endpoint", collector.endpoint],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        position = int(json.loads(done.stdout)["position"])

        # The CLI sent its span before it exited: the root of the trace.
        [call] = collector.wait_for(lambda s: s["service"] == "cqrs" and s["name"].endswith("/DepositFunds"), timeout=5)
        assert kind(call) == "CLIENT" and not call.get("parentSpanId")
        trace_id = hex_id(call["traceId"])
        in_trace = lambda s: hex_id(s["traceId"]) == trace_id  # noqa: E731
        assert collector.wait_for(lambda s: in_trace(s) and s["service"] == "query-service"), "the apply joined the trace"
        time.sleep(0.5)  # the rest of the trace's batches
        spans = [s for s in collector.spans if in_trace(s)]
        by_id = {hex_id(s["spanId"]): s for s in spans}

        def parent(span: dict) -> dict:
            return by_id[hex_id(span["parentSpanId"])]

        [handled] = [s for s in spans if s["service"] == "command-service" and kind(s) == "SERVER"]
        assert handled["name"] == "cqrs.commands.v1.BankAccounts/DepositFunds" and parent(handled) is call
        # The stored event carried the command's context to the relay: the publish is its child.
        [publish] = [s for s in spans if kind(s) == "PRODUCER"]
        assert publish["service"] == "command-service" and publish["name"].startswith("publish ") and parent(publish) is handled
        topic = publish["name"].removeprefix("publish ")
        assert attributes(publish)["messaging.destination.name"] == topic
        assert attributes(publish)["messaging.system"] == "jframe", "the bus the relay published on"
        assert int(attributes(publish)["messaging.batch.message_count"]) == 1, "the deposit's event alone"
        [produce] = [s for s in spans if s["name"] == "cqrs.broker.v1.Broker/Produce" and kind(s) == "CLIENT"]
        assert parent(produce) is publish
        [appended] = [s for s in spans if s["name"] == "cqrs.broker.v1.Broker/Produce" and kind(s) == "SERVER"]
        assert appended["service"] == "broker" and parent(appended) is produce
        assert any(s["name"] == "append" and s["service"] == "broker" and parent(s) is appended for s in spans)
        # The record carried the publish's context to the read models: the apply is its child and links to it.
        [apply] = [s for s in spans if kind(s) == "CONSUMER"]
        assert apply["service"] == "query-service" and apply["name"] == f"apply {topic}" and parent(apply) is publish
        assert [(hex_id(link["traceId"]), hex_id(link["spanId"])) for link in apply.get("links", [])] == [(trace_id, hex_id(publish["spanId"]))]
        assert attributes(apply)["messaging.consumer.group.name"] == "query-service"
        assert attributes(apply)["messaging.system"] == "jframe"
        assert int(attributes(apply)["messaging.batch.message_count"]) == 1
        assert int(publish["startTimeUnixNano"]) >= int(handled["startTimeUnixNano"])
        assert int(apply["startTimeUnixNano"]) >= int(appended["startTimeUnixNano"])
        print(collector.tree(trace_id))  # what the README shows (pytest -s)

        # The deposit's record carries the publish's context as its traceparent header.
        partitions = broker.call("DescribeTopic", {"name": topic})["partitions"]
        stored = [r for p in partitions for r in broker.fetch_all(topic, p["partition"])]
        [record] = [r for r in stored if r.get("headers", {}).get("ce_position") == str(position)]
        assert record["headers"]["traceparent"] == f"00-{trace_id}-{hex_id(publish['spanId'])}-01"
    finally:
        for part in (queries, commands, broker):
            part.cleanup()


def test_on_a_kafka_bus_the_publish_context_crosses_kafka_to_the_apply(start_server, protocols, collector):
    """With the services on the broker's Kafka port (librdkafka, --bus kafka://…), the record's
    traceparent header travels through Kafka's record headers: the apply is still the publish's
    child and linked to it, and both spans name the bus as OpenTelemetry does (`kafka`)."""
    tracing = ("--otlp-endpoint", collector.endpoint)
    broker = BrokerProcess(start_server, protocols, "--kafka-listen", "127.0.0.1:0")
    commands = CommandService(start_server, protocols, broker, *tracing, bus="kafka")
    queries = QueryService(start_server, protocols, broker, commands, *tracing, bus="kafka")
    try:
        traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
        trace_id = traceparent.split("-")[1]
        connection = commands.running.connect()
        stream = connection.open_call("cqrs.commands.v1.BankAccounts/OpenAccount", metadata={"traceparent": traceparent})
        connection.send_message(stream, open_request("acct-kafka-trace"), end=True)
        assert connection.finish(stream, timeout=30).code == 0
        connection.close()
        in_trace = lambda s: hex_id(s["traceId"]) == trace_id  # noqa: E731
        [apply] = collector.wait_for(lambda s: in_trace(s) and kind(s) == "CONSUMER")
        [publish] = [s for s in collector.wait_for(lambda s: in_trace(s) and kind(s) == "PRODUCER")]
        assert hex_id(apply["parentSpanId"]) == hex_id(publish["spanId"]), "the context crossed Kafka's record headers"
        assert [hex_id(link["spanId"]) for link in apply.get("links", [])] == [hex_id(publish["spanId"])]
        assert attributes(publish)["messaging.system"] == "kafka" and attributes(apply)["messaging.system"] == "kafka"
    finally:
        for part in (queries, commands, broker):
            part.cleanup()


def test_a_bad_otlp_endpoint_is_refused_at_start():
    import subprocess
    from conftest import BIN_DIR
    done = subprocess.run([str(BIN_DIR / "rpc-testserver"), "--listen", "127.0.0.1:0", "--otlp-endpoint", "collector:4318"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "--otlp-endpoint must be an http:// or https:// URL" in done.stderr
    done = subprocess.run([str(BIN_DIR / "rpc-testserver"), "--listen", "127.0.0.1:0", "--otlp-endpoint", "http://127.0.0.1:9",
                           "--trace-sample-ratio", "2"], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "--trace-sample-ratio is 0 to 1" in done.stderr



def test_the_cli_checks_its_collector_url_and_does_not_wait_long_for_one_that_is_down():
    import subprocess
    from conftest import BIN_DIR
    deposit = [str(BIN_DIR / "cqrs"), "accounts", "deposit", "acct", "--amount-minor", "1", "--commands", "127.0.0.1:1"]
    done = subprocess.run([*deposit, "--otlp-endpoint", "collector:4318"], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "--otlp-endpoint must be an http:// or https:// URL" in done.stderr
    # Nothing listens on either port: the call fails UNAVAILABLE (14), and the span of it that
    # cannot be sent holds the exit for the flush's bound (2 s), not the exporter's retries.
    started = time.monotonic()
    done = subprocess.run([*deposit, "--otlp-endpoint", "http://127.0.0.1:9"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 14, done.stderr
    assert time.monotonic() - started < 8, "the exit waited for the exporter's retries"
