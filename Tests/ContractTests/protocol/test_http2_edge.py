"""The HTTP/2 edge (`--http2-listen`) with clients no one here wrote: grpcio for gRPC, httpx and
curl for Connect, and h2 for frames a well-behaved client would never send. The same handlers
answer as on the jframe port, so replies and status codes must match the core protocol's and
the cqrs CLI's."""
from __future__ import annotations

import base64
import os
import tempfile
import json
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import grpc
import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from conftest import BIN_DIR, RunningServer

ECHO = "jframe.testing.v1.Echo"
MESSAGE = {"id": "m-1", "account": "acct-1", "amount": 1250, "note": "hello"}


def encode(message) -> bytes:
    return json.dumps(message).encode()


def decode(data: bytes):
    return json.loads(data)


@pytest.fixture(scope="module")
def edge():
    running = RunningServer("rpc-testserver", "--http2-listen", "127.0.0.1:0", "--max-frame-bytes", "65536")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def channel(edge):
    with grpc.insecure_channel(edge.http2) as channel:
        yield channel


def unary(channel, method: str, request, **options):
    call = channel.unary_unary(f"/{method}", request_serializer=encode, response_deserializer=decode)
    return call(request, **options)


def stats(edge) -> dict:
    connection = edge.connect()
    try:
        return connection.unary(f"{ECHO}/Stats", {}).messages[0]
    finally:
        connection.close()


# MARK: gRPC (grpcio)


def test_grpc_unary_returns_the_same_reply_as_the_core_protocol(edge, channel):
    call = channel.unary_unary(f"/{ECHO}/Get", request_serializer=encode, response_deserializer=decode)
    reply, call = call.with_call(MESSAGE, metadata=[("x-request-id", "edge-1")])
    assert reply == MESSAGE
    assert call.code() == grpc.StatusCode.OK
    core = edge.connect()
    try:
        assert core.unary(f"{ECHO}/Get", MESSAGE).messages == [reply]
    finally:
        core.close()


def test_grpc_all_four_call_kinds(channel):
    expand = channel.unary_stream(f"/{ECHO}/Expand", request_serializer=encode, response_deserializer=decode)
    replies = list(expand({"message": MESSAGE, "count": 300}))
    assert [reply["amount"] for reply in replies] == list(range(300))  # past the edge's response credit of 16

    collect = channel.stream_unary(f"/{ECHO}/Collect", request_serializer=encode, response_deserializer=decode)
    result = collect(iter([{**MESSAGE, "amount": n} for n in range(200)]))  # past the core's request credit of 64
    assert result == {"count": 200, "totalAmount": str(sum(range(200)))}

    update = channel.stream_stream(f"/{ECHO}/Update", request_serializer=encode, response_deserializer=decode)
    notes = [reply["note"] for reply in update(iter([{**MESSAGE, "note": f"n{n}"} for n in range(50)]))]
    assert notes == [f"N{n}" for n in range(50)]


def test_grpc_status_codes_message_and_details(channel):
    with pytest.raises(grpc.RpcError) as failure:
        unary(channel, f"{ECHO}/Fail", {"code": 5, "message": "no such thing: é 100%"})
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    assert failure.value.details() == "no such thing: é 100%"  # percent-encoded on the wire, decoded by grpcio

    with pytest.raises(grpc.RpcError) as failure:
        unary(channel, f"{ECHO}/Fail", {"code": 3})
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    trailers = dict(failure.value.trailing_metadata())
    details = json.loads(trailers["jframe-status-details-bin"])  # grpcio base64-decodes -bin keys
    assert details[0]["type"] == "jframe.rpc.v1.FieldViolations"

    with pytest.raises(grpc.RpcError) as failure:  # a request the schema refuses: the same code as on the core port
        unary(channel, f"{ECHO}/Get", {"note": "no id"})
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "missing required field 'id'" in failure.value.details()

    with pytest.raises(grpc.RpcError) as failure:
        unary(channel, f"{ECHO}/NoSuchMethod", {})
    assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "unknown method" in failure.value.details()


def test_grpc_timeout_is_the_calls_deadline_on_the_server(edge, channel):
    before = stats(edge)["sleepsCancelled"]
    with pytest.raises(grpc.RpcError) as failure:
        unary(channel, f"{ECHO}/Sleep", {"milliseconds": 5000}, timeout=0.3)
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The handler was cancelled by the server's own deadline, not left running.
    deadline = time.time() + 5
    while stats(edge)["sleepsCancelled"] == before and time.time() < deadline:
        time.sleep(0.05)
    assert stats(edge)["sleepsCancelled"] == before + 1
    assert unary(channel, f"{ECHO}/Sleep", {"milliseconds": 10}, timeout=5) == {"sleptMs": 10}


def test_grpc_cancel_from_the_client_cancels_the_handler(edge, channel):
    before = stats(edge)["sleepsCancelled"]
    call = channel.unary_unary(f"/{ECHO}/Sleep", request_serializer=encode, response_deserializer=decode)
    future = call.future({"milliseconds": 10000})
    time.sleep(0.3)
    future.cancel()  # RST_STREAM(CANCEL)
    deadline = time.time() + 5
    while stats(edge)["sleepsCancelled"] == before and time.time() < deadline:
        time.sleep(0.05)
    assert stats(edge)["sleepsCancelled"] == before + 1


def test_grpc_message_over_the_limit_is_resource_exhausted_and_the_channel_goes_on(channel):
    with pytest.raises(grpc.RpcError) as failure:
        unary(channel, f"{ECHO}/Get", {**MESSAGE, "note": "x" * 70000})
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "exceeds the limit of 65536 bytes" in failure.value.details()
    assert unary(channel, f"{ECHO}/Get", MESSAGE) == MESSAGE


def test_grpc_compressed_messages_are_unimplemented(edge):
    with grpc.insecure_channel(edge.http2, compression=grpc.Compression.Gzip) as gzip_channel:
        with pytest.raises(grpc.RpcError) as failure:
            unary(gzip_channel, f"{ECHO}/Get", MESSAGE)
    assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "compressed" in failure.value.details()


def test_grpc_many_concurrent_calls_on_one_connection(channel):
    call = channel.unary_unary(f"/{ECHO}/Get", request_serializer=encode, response_deserializer=decode)
    futures = [call.future({**MESSAGE, "amount": n}) for n in range(300)]
    assert [future.result(timeout=30)["amount"] for future in futures] == list(range(300))


# MARK: Connect (httpx, curl)


@pytest.fixture(scope="module")
def connect(edge):
    with httpx.Client(http1=False, http2=True, base_url=f"http://{edge.http2}", timeout=10) as client:
        yield client


def test_connect_unary_reply_and_errors(connect):
    reply = connect.post(f"/{ECHO}/Get", json=MESSAGE, headers={"x-request-id": "edge-2"})
    assert reply.http_version == "HTTP/2"
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    assert reply.json() == MESSAGE

    for code, http_status, name in [(5, 404, "not_found"), (9, 400, "failed_precondition"), (10, 409, "aborted"),
                                    (8, 429, "resource_exhausted"), (1, 499, "canceled"), (14, 503, "unavailable"),
                                    (16, 401, "unauthenticated"), (13, 500, "internal")]:
        failure = connect.post(f"/{ECHO}/Fail", json={"code": code, "message": f"code {code}"})
        assert failure.status_code == http_status, name
        assert failure.json() == {"code": name, "message": f"code {code}"}

    invalid = connect.post(f"/{ECHO}/Fail", json={"code": 3})
    assert invalid.status_code == 400
    body = invalid.json()
    assert body["code"] == "invalid_argument"
    detail = body["details"][0]
    assert detail["type"] == "jframe.rpc.v1.FieldViolations"
    assert json.loads(base64.b64decode(detail["value"])) == detail["debug"]
    assert detail["debug"]["violations"][0]["field"] == "code"

    unknown = connect.post(f"/{ECHO}/Nope", json={})
    assert (unknown.status_code, unknown.json()["code"]) == (501, "unimplemented")


def test_connect_timeout_and_limits(connect):
    late = connect.post(f"/{ECHO}/Sleep", json={"milliseconds": 5000}, headers={"connect-timeout-ms": "200"})
    assert (late.status_code, late.json()["code"]) == (504, "deadline_exceeded")

    big = connect.post(f"/{ECHO}/Get", json={**MESSAGE, "note": "x" * 70000})
    assert (big.status_code, big.json()["code"]) == (429, "resource_exhausted")

    gzip = connect.post(f"/{ECHO}/Get", content=b"\x1f\x8b", headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert (gzip.status_code, gzip.json()["code"]) == (501, "unimplemented")

    wrong = connect.post(f"/{ECHO}/Get", content=b"<x/>", headers={"content-type": "text/xml"})
    assert wrong.status_code == 415
    assert "application/connect+json" in wrong.text

    get = connect.get(f"/{ECHO}/Get")
    assert get.status_code == 405


def test_connect_streaming_envelopes_and_end_of_stream(connect):
    def envelope(message, flags=0):
        data = encode(message)
        return struct.pack(">BI", flags, len(data)) + data

    def envelopes(data: bytes):
        out = []
        while data:
            flags, length = struct.unpack(">BI", data[:5])
            out.append((flags, json.loads(data[5:5 + length])))
            data = data[5 + length:]
        return out

    headers = {"content-type": "application/connect+json"}
    reply = connect.post(f"/{ECHO}/Expand", content=envelope({"message": MESSAGE, "count": 3}), headers=headers)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/connect+json"
    parts = envelopes(reply.content)
    assert [flags for flags, _ in parts] == [0, 0, 0, 2]
    assert [message["amount"] for _, message in parts[:3]] == [0, 1, 2]
    assert parts[3][1] == {}

    update = connect.post(f"/{ECHO}/Update", content=b"".join(envelope({**MESSAGE, "note": f"n{n}"}) for n in range(3)),
                          headers=headers)
    assert [m.get("note") for f, m in envelopes(update.content) if f == 0] == ["N0", "N1", "N2"]

    failure = connect.post(f"/{ECHO}/Expand", content=envelope({"message": MESSAGE, "count": -1}), headers=headers)
    assert failure.status_code == 200  # Connect streams carry errors in the end-of-stream message
    (flags, end), = envelopes(failure.content)
    assert flags == 2 and end["error"]["code"] == "invalid_argument"


def test_curl_calls_connect_unary(edge):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    result = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-H", "content-type: application/json", "-d", json.dumps(MESSAGE),
         "-w", "\n%{http_version} %{http_code}", f"http://{edge.http2}/{ECHO}/Get"],
        capture_output=True, text=True, timeout=30)
    body, _, status = result.stdout.rpartition("\n")
    assert status == "2 200", result.stderr
    assert json.loads(body) == MESSAGE


# MARK: Frames no good client sends (h2)


class RawH2:
    """An HTTP/2 client connection on a plain socket, driven by the h2 library."""

    def __init__(self, address: str):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, validate_outbound_headers=False,
                                                                          normalize_outbound_headers=False))
        self.conn.initiate_connection()
        self.flush()

    def flush(self):
        self.sock.sendall(self.conn.data_to_send())

    def events(self, until=lambda events: False, seconds: float = 5) -> list:
        seen = []
        deadline = time.time() + seconds
        while time.time() < deadline and not until(seen):
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                seen.append("EOF")
                break
            seen += self.conn.receive_data(data)
            self.flush()
        return seen

    def request(self, stream_id: int, path: str, body: bytes, extra=()):
        headers = [(":method", "POST"), (":scheme", "http"), (":authority", "edge"), (":path", path),
                   ("content-type", "application/grpc+json"), ("te", "trailers"), *extra]
        self.conn.send_headers(stream_id, headers)
        self.conn.send_data(stream_id, struct.pack(">BI", 0, len(body)) + body, end_stream=True)
        self.flush()

    def status(self, stream_id: int) -> str | None:
        """Waits for the stream to end; returns its grpc-status (from trailers or trailers-only)."""
        events = self.events(until=lambda seen: any(isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id
                                                    for e in seen if not isinstance(e, str)))
        for event in events:
            if isinstance(event, (h2.events.TrailersReceived, h2.events.ResponseReceived)) and event.stream_id == stream_id:
                fields = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v for k, v in event.headers}
                if "grpc-status" in fields:
                    return fields["grpc-status"]
        return None

    def close(self):
        self.sock.close()


def goaway_code(data: bytes) -> int | None:
    """The error code of the first GOAWAY frame in a server's byte stream, or None."""
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        if data[3] == 0x7:
            return int.from_bytes(data[13:17], "big")
        data = data[9 + length:]
    return None


def test_h2_settings_advertise_the_limits(edge):
    raw = RawH2(edge.http2)
    raw.events(until=lambda seen: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in seen))
    settings = raw.conn.remote_settings
    assert settings.max_concurrent_streams == 1024
    assert settings.max_header_list_size == 8192
    raw.close()


def test_h2_oversized_headers_get_resource_exhausted_and_the_connection_goes_on(edge):
    raw = RawH2(edge.http2)
    raw.request(1, f"/{ECHO}/Get", encode(MESSAGE), extra=[("x-big", "y" * 20000)])
    assert raw.status(1) == "8"
    raw.request(3, f"/{ECHO}/Get", encode(MESSAGE))
    assert raw.status(3) == "0"
    raw.close()


def test_h2_malformed_frames_close_only_that_connection(edge, channel):
    garbage = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                                    # not HTTP/2 at all
        h2.connection.H2Connection().data_to_send() + b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        + struct.pack(">I", 4)[1:] + b"\x04\x00\x00\x00\x00\x01" + b"\x00\x00\x00",  # SETTINGS on a stream
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
        + b"\x00\x00\x05\x00\x01\x00\x00\x00\x02hello",                          # DATA on an idle even stream
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff\xff\xff\x99\x00\x00\x00\x00\x00",  # frame far over max size
    ]
    host, port = edge.http2.rsplit(":", 1)
    for data in garbage:
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall(data)
        received, closed = b"", False
        try:
            while chunk := sock.recv(65536):
                received += chunk
            closed = True
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            pass
        sock.close()
        assert closed, data  # the server ended the connection instead of waiting on a broken peer
        if data.startswith(b"PRI"):
            assert goaway_code(received) is not None, received  # and said why first
    assert unary(channel, f"{ECHO}/Get", MESSAGE) == MESSAGE


def test_graceful_shutdown_sends_goaway_and_finishes_the_call_in_flight():
    running = RunningServer("rpc-testserver", "--http2-listen", "127.0.0.1:0")
    try:
        with grpc.insecure_channel(running.http2) as channel:
            call = channel.unary_unary(f"/{ECHO}/Sleep", request_serializer=encode, response_deserializer=decode)
            future = call.future({"milliseconds": 800})
            time.sleep(0.3)
            running.process.send_signal(signal.SIGTERM)
            assert future.result(timeout=10) == {"sleptMs": 800}
        assert running.process.wait(timeout=15) == 0
    finally:
        running.stop()


# MARK: The CommandService and QueryService over the edge, beside the cqrs CLI


class EdgeStack:
    """broker, command-service and query-service as processes, the services with the edge on."""

    def __init__(self, start_server, protocols):
        from processes import BrokerProcess
        self.broker = BrokerProcess(start_server, protocols)
        broker = f"{self.broker.running.host}:{self.broker.running.port}"
        self.dirs = [tempfile.mkdtemp(prefix="edge-commands-"), tempfile.mkdtemp(prefix="edge-queries-")]
        self.commands = start_server("--data-dir", self.dirs[0], "--broker", broker, "--http2-listen", "127.0.0.1:0",
                                     binary="command-service")
        self.queries = start_server("--data-dir", self.dirs[1], "--broker", broker, "--http2-listen", "127.0.0.1:0",
                                    "--commands", f"{self.commands.host}:{self.commands.port}", binary="query-service")
        self.env = {**os.environ, "NO_COLOR": "1", "CQRS_BROKER": broker,
                    "CQRS_COMMANDS": f"{self.commands.host}:{self.commands.port}",
                    "CQRS_QUERIES": f"{self.queries.host}:{self.queries.port}"}

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN_DIR / "cqrs"), *args], capture_output=True, text=True, timeout=30, env=self.env)

    def cleanup(self):
        self.broker.cleanup()
        for directory in self.dirs:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def services(start_server, protocols):
    stack = EdgeStack(start_server, protocols)
    yield stack
    stack.cleanup()


GRPC_CODE = {status.value[0]: status for status in grpc.StatusCode}


def grpc_code(channel, method: str, request) -> int:
    try:
        unary(channel, method, request, timeout=10)
        return 0
    except grpc.RpcError as error:
        return error.code().value[0]


def test_grpcio_and_connect_get_what_the_cli_gets(services):
    commands_rpc, queries_rpc = "cqrs.commands.v1.BankAccounts", "cqrs.queries.v1.Accounts"
    with grpc.insecure_channel(services.commands.http2) as commands, grpc.insecure_channel(services.queries.http2) as queries, \
            httpx.Client(http1=False, http2=True, timeout=10) as connect:
        def connect_call(server, method, request, headers=None):
            return connect.post(f"http://{server.http2}/{method}", json=request, headers=headers or {})

        # Commands: one account opened over gRPC, deposits over Connect and over the CLI.
        opened = unary(commands, f"{commands_rpc}/OpenAccount", {
            "accountId": "edge-1", "holder": "Ada Lovelace", "accountType": "CURRENT",
            "openingBalance": {"amountMinor": "10000", "currency": "EUR"}})
        assert opened["aggregateId"] == "edge-1" and opened["version"] == "1"
        deposited = connect_call(services.commands, f"{commands_rpc}/DepositFunds",
                                 {"accountId": "edge-1", "amount": {"amountMinor": "2500", "currency": "EUR"}})
        assert deposited.status_code == 200 and deposited.json()["version"] == "2"
        cli = services.cli("accounts", "deposit", "edge-1", "--amount-minor", "500", "--json")
        assert cli.returncode == 0, cli.stderr
        position = json.loads(cli.stdout)["position"]

        # Queries: the same account, read-your-writes, from all three.
        by_cli = json.loads(services.cli("accounts", "get", "edge-1", "--min-position", position, "--json").stdout)
        by_grpc = unary(queries, f"{queries_rpc}/GetAccount", {"accountId": "edge-1", "minPosition": position})
        by_connect = connect_call(services.queries, f"{queries_rpc}/GetAccount", {"accountId": "edge-1", "minPosition": position})
        assert by_cli == by_grpc == by_connect.json()
        assert by_grpc["balance"] == {"amountMinor": "13000", "currency": "EUR"} and by_grpc["version"] == "3"

        # Refusals: the same status code from gRPC, Connect (by name and HTTP status) and the CLI's exit code.
        cases = [
            (commands, services.commands, f"{commands_rpc}/WithdrawFunds",
             {"accountId": "edge-1", "amount": {"amountMinor": "999999", "currency": "EUR"}},
             ["accounts", "withdraw", "edge-1", "--amount-minor", "999999"], 9, 400),
            (commands, services.commands, f"{commands_rpc}/DepositFunds",
             {"accountId": "edge-1", "amount": {"amountMinor": "0", "currency": "EUR"}},
             ["accounts", "deposit", "edge-1", "--amount-minor", "0"], 3, 400),
            (commands, services.commands, f"{commands_rpc}/DepositFunds",
             {"accountId": "edge-1", "amount": {"amountMinor": "1", "currency": "EUR"}, "expectedVersion": "1"},
             ["accounts", "deposit", "edge-1", "--amount-minor", "1", "--expected-version", "1"], 10, 409),
            (queries, services.queries, f"{queries_rpc}/GetAccount", {"accountId": "nobody"},
             ["accounts", "get", "nobody"], 5, 404),
        ]
        for channel, server, method, request, cli_args, code, http_status in cases:
            assert grpc_code(channel, method, request) == code, method
            reply = connect_call(server, method, request)
            assert (reply.status_code, reply.json()["code"]) == (http_status, GRPC_CODE[code].name.lower()), method
            assert services.cli(*cli_args).returncode == code, cli_args

        # A query waiting for a position that never comes ends at the caller's deadline, on both protocols.
        with pytest.raises(grpc.RpcError) as late:
            unary(queries, f"{queries_rpc}/GetAccount", {"accountId": "edge-1", "minPosition": "999999"}, timeout=0.3)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        late_connect = connect_call(services.queries, f"{queries_rpc}/GetAccount",
                                    {"accountId": "edge-1", "minPosition": "999999"}, {"connect-timeout-ms": "300"})
        assert (late_connect.status_code, late_connect.json()["code"]) == (504, "deadline_exceeded")


def test_the_job_board_over_grpc_connect_and_the_cli(services):
    with grpc.insecure_channel(services.commands.http2) as commands, grpc.insecure_channel(services.queries.http2) as queries, \
            httpx.Client(http1=False, http2=True, timeout=10) as connect:
        created = unary(commands, "cqrs.commands.v1.Jobs/CreateJob", {"jobId": "edge-job", "title": "Engineer", "description": "Build."})
        assert created["version"] == "1"
        applied = connect.post(f"http://{services.commands.http2}/cqrs.commands.v1.Applications/CreateApplication", json={
            "applicationId": "edge-app", "jobId": "edge-job", "firstName": "Grace", "lastName": "Hopper", "email": "grace@example.com",
            "currentPosition": "Programmer"})
        assert applied.status_code == 200, applied.text
        cli = services.cli("jobs", "update", "edge-job", "--title", "Senior engineer", "--description", "Build more.", "--version", "1", "--json")
        assert cli.returncode == 0, cli.stderr
        position = json.loads(cli.stdout)["position"]
        request = {"applicationId": "edge-app", "minPosition": position}
        by_grpc = unary(queries, "cqrs.queries.v1.Applications/GetApplication", request)
        by_connect = connect.post(f"http://{services.queries.http2}/cqrs.queries.v1.Applications/GetApplication", json=request).json()
        by_cli = json.loads(services.cli("applications", "get", "edge-app", "--min-position", position, "--json").stdout)
        assert by_grpc == by_connect == by_cli and by_grpc["job"]["title"] == "Senior engineer"
        jobs = unary(queries, "cqrs.queries.v1.Jobs/ListJobs", {"status": "OPEN"})
        assert [j["jobId"] for j in jobs["jobs"]] == ["edge-job"]
        # A stale version: ABORTED on every protocol.
        stale = {"jobId": "edge-job", "version": "1"}
        assert grpc_code(commands, "cqrs.commands.v1.Jobs/ArchiveJob", stale) == 10
        reply = connect.post(f"http://{services.commands.http2}/cqrs.commands.v1.Jobs/ArchiveJob", json=stale)
        assert (reply.status_code, reply.json()["code"]) == (409, "aborted")
        assert services.cli("jobs", "archive", "edge-job", "--version", "1").returncode == 10


def test_server_streaming_over_grpc_and_connect(services):
    with grpc.insecure_channel(services.commands.http2) as commands, grpc.insecure_channel(services.queries.http2) as queries:
        opened = unary(commands, "cqrs.commands.v1.BankAccounts/OpenAccount", {
            "accountId": "edge-w", "holder": "Grace Hopper", "accountType": "SAVINGS",
            "openingBalance": {"amountMinor": "100", "currency": "EUR"}})
        watch = queries.unary_stream("/cqrs.queries.v1.Accounts/WatchAccount", request_serializer=encode,
                                     response_deserializer=decode)
        stream = watch({"accountId": "edge-w"}, timeout=20)
        seen = []

        def read():
            for account in stream:
                seen.append(account["version"])
                if len(seen) == 3:
                    break

        reader = threading.Thread(target=read)
        reader.start()
        deadline = time.time() + 10
        while not seen and time.time() < deadline:
            time.sleep(0.02)
        for amount in ("1", "2"):
            unary(commands, "cqrs.commands.v1.BankAccounts/DepositFunds",
                  {"accountId": "edge-w", "amount": {"amountMinor": amount, "currency": "EUR"}})
        reader.join(timeout=15)
        stream.cancel()
        assert seen == ["1", "2", "3"] and opened["version"] == "1"

    # Rebuild streams its progress; over Connect the body ends with the end-of-stream message.
    body = encode({"pageSize": 100})
    with httpx.Client(http1=False, http2=True, timeout=30) as connect:
        reply = connect.post(f"http://{services.queries.http2}/cqrs.queries.v1.ReadModels/Rebuild",
                             content=struct.pack(">BI", 0, len(body)) + body,
                             headers={"content-type": "application/connect+json"})
    data, messages = reply.content, []
    while data:
        flags, length = struct.unpack(">BI", data[:5])
        messages.append((flags, json.loads(data[5:5 + length])))
        data = data[5 + length:]
    assert messages[-1] == (2, {})
    final = messages[-2][1]
    assert final["done"] is True and final["eventsApplied"] == "3" and final["accounts"] == 1, messages


def test_limits_preface_timeout_connections_and_keepalive(start_server):
    running = start_server("--http2-listen", "127.0.0.1:0", "--frame-read-timeout-ms", "300", "--max-connections", "2",
                           "--keepalive-interval-ms", "200", "--keepalive-timeout-ms", "300")
    host, port = running.http2.rsplit(":", 1)

    # Half a preface, then silence: closed after the frame read timeout, not held.
    slow = socket.create_connection((host, int(port)), timeout=5)
    slow.sendall(b"PRI * HTTP/2.0\r\n")
    started = time.time()
    try:
        while slow.recv(65536):
            pass
    except ConnectionResetError:
        pass
    assert time.time() - started < 3
    slow.close()

    # A client that answers PINGs (h2 does) keeps its connection past several keepalive intervals ...
    alive = RawH2(running.http2)
    alive.events(seconds=1.2)
    alive.request(1, f"/{ECHO}/Get", encode(MESSAGE))
    assert alive.status(1) == "0"
    # ... and with it plus one more connection at the limit of 2, a third is refused with GOAWAY.
    second = RawH2(running.http2)
    # Admitted once its SETTINGS arrive (connections on different event loops are admitted in any order).
    second.events(until=lambda seen: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in seen))
    third = socket.create_connection((host, int(port)), timeout=5)
    third.sendall(h2.connection.H2Connection().data_to_send() or b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    received = b""
    try:
        while chunk := third.recv(65536):
            received += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    assert goaway_code(received) == 0xb, received  # ENHANCE_YOUR_CALM: RESOURCE_EXHAUSTED on the core port
    for connection in (alive, second):
        connection.close()
    third.close()

    # A peer that never answers PING is closed after interval + timeout.
    mute = socket.create_connection((host, int(port)), timeout=5)
    mute.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    started, data = time.time(), b""
    try:
        while chunk := mute.recv(65536):
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    assert time.time() - started < 4 and goaway_code(data) is not None
    mute.close()
