"""TLS and bearer tokens (WIRE.md §14) on the real services: broker, command-service and
query-service, each with TLS on both ports and tokens required, calling each other with tokens
of their own (the query-service with a read-only one: consuming is reading).

The table-driven test calls every method of every package the three serve without a token, with
a bad one, with a malformed header and with a read token where write is needed, and checks each
answer and that nothing stored changed."""
from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import tempfile
import time

import pytest

import jframe
from conftest import BIN_DIR, ROOT, RunningServer

WRITE = "write-token-0123456789abcdef"
READ = "read-token-0123456789abcdef"
PUBLISH = "publish-token-0123456789abcdef"
PROTECTED = "BankAccount,OnNewOrder,audit-*"
BAD = "xrite-token-0123456789abcdef"


class SecureStack:
    def __init__(self, protocols):
        self.protocols = protocols
        self.dir = tempfile.mkdtemp(prefix="security-test-")
        subprocess.run([str(ROOT / "Scripts" / "make-certs"), f"{self.dir}/pki"], check=True, capture_output=True)
        self.ca = f"{self.dir}/pki/ca.pem"
        with open(f"{self.dir}/tokens", "w") as tokens:
            tokens.write(f"# scope token name\nwrite {WRITE} operator\nread {READ} dashboard\npublish {PUBLISH} relay\n")
        common = ("--tls-cert", f"{self.dir}/pki/server.pem", "--tls-key", f"{self.dir}/pki/server.key",
                  "--auth-tokens-file", f"{self.dir}/tokens", "--http2-listen", "127.0.0.1:0")
        self.started = []
        self.broker = self.start("broker", "--data-dir", f"{self.dir}/broker", "--protected-topics", PROTECTED, *common)
        self.commands = self.start(
            "command-service", "--data-dir", f"{self.dir}/commands", "--broker", self.address(self.broker),
            "--upstream-token", PUBLISH, "--upstream-tls-ca", self.ca, *common)
        self.queries = self.start(
            "query-service", "--data-dir", f"{self.dir}/queries", "--broker", self.address(self.broker),
            "--commands", self.address(self.commands), "--upstream-token", READ, "--upstream-tls-ca", self.ca, *common)
        self.servers = {"cqrs.broker.v1": self.broker, "cqrs.commands.v1": self.commands, "cqrs.queries.v1": self.queries}

    def start(self, binary: str, *args: str) -> RunningServer:
        running = RunningServer(binary, *args)
        self.started.append(running)
        return running

    @staticmethod
    def address(server: RunningServer) -> str:
        return f"{server.host}:{server.port}"

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def connect(self, server: RunningServer) -> jframe.Connection:
        return server.connect(tls=self.tls())

    def call(self, server, method: str, request, token: str | None = WRITE, authorization: str | None = None,
             timeout_ms: int = 5000) -> jframe.CallResult:
        metadata = {"authorization": authorization or f"Bearer {token}"} if (token or authorization) else None
        connection = self.connect(server)
        try:
            return connection.unary(method, request, metadata=metadata, timeout_ms=timeout_ms)
        finally:
            connection.close()

    def ok(self, server, method: str, request, token: str = WRITE) -> dict:
        result = self.call(server, method, request, token)
        assert result.code == 0, (method, result.trailers)
        return result.messages[0]

    def stop(self):
        for running in self.started:
            running.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(protocols):
    running = SecureStack(protocols)
    yield running
    running.stop()


def open_and_deposit(stack: SecureStack, account: str) -> str:
    money = lambda minor: {"amountMinor": str(minor), "currency": "EUR"}
    stack.ok(stack.commands, "cqrs.commands.v1.BankAccounts/OpenAccount",
             {"accountId": account, "holder": "Ada Lovelace", "accountType": "SAVINGS", "openingBalance": money(1000)})
    return stack.ok(stack.commands, "cqrs.commands.v1.BankAccounts/DepositFunds",
                    {"accountId": account, "amount": money(250)})["position"]


def snapshot(stack: SecureStack) -> dict:
    """What the three services store, through their APIs with the write token."""
    events = stack.ok(stack.commands, "cqrs.commands.v1.EventStore/ReadAll", {"fromPosition": "1", "maxCount": 1000})
    topics = stack.ok(stack.broker, "cqrs.broker.v1.Broker/ListTopics", {})["topics"]
    partitions = {t["name"]: [(p["logStartOffset"], p["highWatermark"]) for p in
                              stack.ok(stack.broker, "cqrs.broker.v1.Broker/DescribeTopic", {"name": t["name"]})["partitions"]]
                  for t in topics}
    groups = stack.ok(stack.broker, "cqrs.broker.v1.Broker/ListGroups", {})
    committed = {g["group"]: stack.ok(stack.broker, "cqrs.broker.v1.Broker/DescribeGroup", {"group": g["group"]}).get("partitions")
                 for g in groups.get("groups", [])}
    accounts = stack.ok(stack.queries, "cqrs.queries.v1.Accounts/ListAccounts", {"pageSize": 1000})
    parked = stack.ok(stack.queries, "cqrs.queries.v1.ReadModels/ListParked", {})
    return {"events": events, "topics": topics, "partitions": partitions, "committed": committed,
            "accounts": accounts, "parked": parked}


def every_method(protocols):
    """(server package, full method, access, request example) for every method the stack serves:
    its three packages, and health and reflection on each."""
    for package, service, method in protocols.methods():
        hosts = [package] if package.startswith("cqrs.") else (
            ["cqrs.broker.v1", "cqrs.commands.v1", "cqrs.queries.v1"] if package in ("jframe.health.v1", "jframe.reflection.v1") else [])
        example = protocols.packages[package]["messages"][method["request"]]["examples"][0]
        for host in hosts:
            yield host, f"{package}.{service['name']}/{method['name']}", method["access"], example


def test_every_method_refuses_missing_bad_and_under_scoped_tokens_and_changes_nothing(stack, protocols):
    position = open_and_deposit(stack, "acct-sec-1")
    # The read side caught up through a read-only upstream token: consuming is reading.
    account = stack.ok(stack.queries, "cqrs.queries.v1.Accounts/GetAccount", {"accountId": "acct-sec-1", "minPosition": position}, READ)
    assert account["balance"]["amountMinor"] == "1250"
    # The query-service commits its offsets after applying, in the background: wait until it has
    # committed everything, so the snapshots below see only what the refused calls might change.
    # The group's partitions are assigned (owner) as its members settle: wait for two equal
    # snapshots in a row too, so a late assignment is not taken for a change a refused call made.
    deadline = time.monotonic() + 30
    previous = None
    while True:
        before = snapshot(stack)
        partitions = [p for group in before["committed"].values() for p in group or []]
        if (partitions and all(p.get("committedOffset", "0") == p["highWatermark"] and p.get("owner") for p in partitions)
                and before == previous):
            break
        assert time.monotonic() < deadline, before["committed"]
        previous = before
        time.sleep(0.3)

    table = list(every_method(protocols))
    assert len(table) >= 39 + 5 * 3, len(table)
    refused = {"UNAUTHENTICATED": 0, "PERMISSION_DENIED": 0}
    for host, method, access, request in table:
        server = stack.servers[host]
        cases = [("no token", None, None), ("bad token", BAD, None), ("not a bearer header", None, f"Basic {WRITE}"),
                 ("empty bearer", None, "Bearer "), ("read token", READ, None)]
        for case, token, authorization in cases:
            if case == "read token" and access != "write":
                continue  # a read method with a read token runs (and may change state: JoinGroup); after the snapshot below
            result = stack.call(server, method, request, token, authorization, timeout_ms=500)
            if access == "public":  # answered (a watch streams until its deadline)
                assert result.messages == [{"status": "SERVING"}], (method, case, result.trailers)
                continue
            if case == "read token":
                assert result.code == jframe.CODE["PERMISSION_DENIED"], (method, case, result.trailers)
                assert "write token" in result.trailers["message"] and "dashboard" in result.trailers["message"]
                assert READ not in result.trailers["message"]
                refused["PERMISSION_DENIED"] += 1
                continue
            assert result.code == jframe.CODE["UNAUTHENTICATED"], (method, case, result.trailers)
            assert not result.messages, (method, case)
            refused["UNAUTHENTICATED"] += 1
    assert refused["PERMISSION_DENIED"] >= 12 and refused["UNAUTHENTICATED"] >= 4 * 40, refused

    # Nothing stored changed: no event, record, offset, topic, group or read model.
    after = snapshot(stack)
    assert after == before, json.dumps({key: [before[key], after[key]] for key in before if before[key] != after[key]})

    # A read token runs every read method (whatever its own answer: NOT_FOUND for the examples'
    # ids, DEADLINE_EXCEEDED for streams that never end).
    for host, method, access, request in table:
        if access == "read":
            result = stack.call(stack.servers[host], method, request, READ, timeout_ms=500)
            assert result.code not in (jframe.CODE["UNAUTHENTICATED"], jframe.CODE["PERMISSION_DENIED"]), (method, result.trailers)


def test_the_cli_takes_token_and_tls_ca_and_exits_with_the_status(stack):
    def cqrs(*args: str, token: str | None = WRITE) -> subprocess.CompletedProcess:
        extra = ("--token", token) if token else ()
        return subprocess.run([str(BIN_DIR / "cqrs"), *args, "--tls-ca", stack.ca, *extra, "--json"],
                              capture_output=True, text=True, timeout=60,
                              env={"CQRS_COMMANDS": stack.address(stack.commands), "CQRS_QUERIES": stack.address(stack.queries),
                                   "CQRS_BROKER": stack.address(stack.broker), "PATH": "/usr/bin:/bin"})

    opened = cqrs("accounts", "open", "--id", "acct-cli-1", "--holder", "Grace Hopper", "--amount-minor", "500", "--currency", "EUR")
    assert opened.returncode == 0, opened.stderr
    position = json.loads(opened.stdout)["position"]
    got = cqrs("accounts", "get", "acct-cli-1", "--min-position", position, token=READ)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["holder"] == "Grace Hopper"

    denied = cqrs("accounts", "deposit", "acct-cli-1", "--amount-minor", "100", "--currency", "EUR", token=READ)
    assert denied.returncode == jframe.CODE["PERMISSION_DENIED"], denied.stderr
    assert "PERMISSION_DENIED" in denied.stderr
    missing = cqrs("topics", "list", token=None)
    assert missing.returncode == jframe.CODE["UNAUTHENTICATED"] and "bearer token" in missing.stderr, missing.stderr


def test_tls_refuses_cleartext_an_unknown_ca_and_a_wrong_name(stack):
    # A cleartext client gets no HELLO back: the server closes the connection.
    plain = stack.broker.connect()
    with pytest.raises((jframe.ConnectionClosed, TimeoutError)):
        plain.read_frame(timeout=5)
    plain.close()

    other = tempfile.mkdtemp(prefix="other-ca-")
    try:
        subprocess.run([str(ROOT / "Scripts" / "make-certs"), other], check=True, capture_output=True)
        with pytest.raises(ssl.SSLCertVerificationError):
            stack.broker.connect(tls=ssl.create_default_context(cafile=f"{other}/ca.pem"))
    finally:
        shutil.rmtree(other, ignore_errors=True)
    with pytest.raises(ssl.SSLCertVerificationError):
        stack.broker.connect(tls=stack.tls(), server_hostname="not-the-broker.example")

    # With the right CA and name the protocol runs as in cleartext.
    connection = stack.connect(stack.broker)
    assert connection.unary("jframe.health.v1.Health/Check", {}).messages == [{"status": "SERVING"}]
    connection.close()


def test_the_http2_edge_speaks_tls_with_alpn_h2_and_checks_tokens(stack):
    grpc = pytest.importorskip("grpc")
    httpx = pytest.importorskip("httpx")
    with open(stack.ca, "rb") as ca:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.read())
    channel = grpc.secure_channel(stack.queries.http2, credentials)
    call = channel.unary_unary("/cqrs.queries.v1.Accounts/ListAccounts",
                               request_serializer=lambda m: json.dumps(m).encode(), response_deserializer=json.loads)
    with pytest.raises(grpc.RpcError) as refused:
        call({}, timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "accounts" in call({}, timeout=10, metadata=[("authorization", f"Bearer {READ}")])
    rebuild = channel.unary_stream("/cqrs.queries.v1.ReadModels/Rebuild",
                                   request_serializer=lambda m: json.dumps(m).encode(), response_deserializer=json.loads)
    with pytest.raises(grpc.RpcError) as denied:
        list(rebuild({}, timeout=10, metadata=[("authorization", f"Bearer {READ}")]))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    channel.close()

    with httpx.Client(http2=True, verify=stack.tls()) as client:
        url = f"https://{stack.commands.http2}/cqrs.commands.v1.EventStore/GetStatus"
        reply = client.post(url, content=b"{}", headers={"content-type": "application/json"})
        assert (reply.status_code, reply.json()["code"]) == (401, "unauthenticated")
        assert reply.http_version == "HTTP/2"
        reply = client.post(url, content=b"{}", headers={"content-type": "application/json", "authorization": f"Bearer {READ}"})
        assert reply.status_code == 200, reply.text


def test_only_publish_tokens_write_protected_topics(stack):
    """A write token may not produce a record into an event topic (it could claim an event's
    identity), create or delete one; the relay's publish token may; other topics are open to
    write tokens as before."""
    position = open_and_deposit(stack, "acct-protected")
    stack.ok(stack.queries, "cqrs.queries.v1.Accounts/GetAccount", {"accountId": "acct-protected", "minPosition": position})
    forged = {"topic": "BankAccount", "records": [{"key": "acct-protected", "value": {"amount": "forged"},
                                                    "headers": {"ce_id": "forged", "ce_subject": "BankAccount-acct-protected"}}]}
    before = stack.ok(stack.broker, "cqrs.broker.v1.Broker/DescribeTopic", {"name": "BankAccount"})["partitions"]
    for method, request in [("Produce", forged), ("DeleteTopic", {"name": "BankAccount"}),
                            ("CreateTopic", {"name": "audit-1"}), ("Produce", {"topic": "audit-1", "records": [{"value": 1}]})]:
        refused = stack.call(stack.broker, f"cqrs.broker.v1.Broker/{method}", request, WRITE)
        assert refused.code == jframe.CODE["PERMISSION_DENIED"], (method, refused.trailers)
        assert "protected" in refused.trailers["message"] and "publish token" in refused.trailers["message"]
    assert stack.ok(stack.broker, "cqrs.broker.v1.Broker/DescribeTopic", {"name": "BankAccount"})["partitions"] == before
    # The publish token may; a topic no pattern names stays open to write tokens.
    stack.ok(stack.broker, "cqrs.broker.v1.Broker/CreateTopic", {"name": "audit-1"}, PUBLISH)
    assert stack.ok(stack.broker, "cqrs.broker.v1.Broker/Produce", {"topic": "audit-1", "records": [{"value": 1}]}, PUBLISH)["results"]
    stack.ok(stack.broker, "cqrs.broker.v1.Broker/CreateTopic", {"name": "scratch-1"}, WRITE)
    assert stack.ok(stack.broker, "cqrs.broker.v1.Broker/Produce", {"topic": "scratch-1", "records": [{"value": 1}]}, WRITE)["results"]
    # The relay (publish token) keeps publishing.
    later = stack.ok(stack.commands, "cqrs.commands.v1.BankAccounts/DepositFunds",
                     {"accountId": "acct-protected", "amount": {"amountMinor": "5", "currency": "EUR"}})["position"]
    stack.ok(stack.queries, "cqrs.queries.v1.Accounts/GetAccount", {"accountId": "acct-protected", "minPosition": later})
