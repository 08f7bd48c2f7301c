"""The three services as real processes on ephemeral ports, as the contract tests drive them:
each on a data directory that outlives restarts, with unary calls checked against Protocols/,
plus the workloads and checks several test folders share."""
from __future__ import annotations

import collections
import random
import shutil
import signal
import tempfile
import threading
import time

import jframe

# The methods each package's tests called with a checked reply, for the "every method was
# called" test at the end of each service's file.
CALLED: dict[str, set[str]] = collections.defaultdict(set)


def checked_call(protocols, connection: jframe.Connection, package: str, service: str, method: str, request,
                 expect: str = "OK"):
    """Calls a unary method; checks the status code, validates the request (when it should
    succeed), the trailers and the reply against Protocols/. Returns the reply, or the trailers of
    a failed call."""
    info = next(m for s in protocols.packages[package]["services"] if s["name"] == service
                for m in s["methods"] if m["name"] == method)
    if expect == "OK":
        protocols.validate(f"{package}.{info['request']}", request)
    result = connection.unary(f"{package}.{service}/{method}", request)
    assert result.code == jframe.CODE[expect], (method, request, result.trailers)
    protocols.validate("jframe.rpc.v1.Trailers", result.trailers)
    if expect == "OK":
        assert len(result.messages) == 1
        protocols.validate(f"{package}.{info['response']}", result.messages[0])
        return result.messages[0]
    return result.trailers


def murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2, written from its Java source, independently of ours."""
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    for i in range(0, len(data) // 4 * 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = len(data) // 4 * 4
    rest = len(data) % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def kafka_partition(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class BrokerProcess:
    """A broker on a data directory that outlives restarts of the process."""

    PACKAGE = "cqrs.broker.v1"

    def __init__(self, start_server, protocols, *args: str):
        self.start_server, self.protocols, self.args = start_server, protocols, args
        self.data = tempfile.mkdtemp(prefix="broker-test-")
        self.start()

    def start(self):
        """Starts the broker; after the first start on the same address, so the services that
        use it reconnect as they would to a restarted broker (the Kafka port too, when on)."""
        address = ("--listen", f"127.0.0.1:{self.running.port}") if hasattr(self, "running") else ()
        if "--kafka-listen" in self.args and hasattr(self, "running"):
            args = list(self.args)
            args[args.index("--kafka-listen") + 1] = self.running.kafka
            address += tuple(args)
            self.running = self.start_server("--data-dir", self.data, *address, binary="broker")
        else:
            self.running = self.start_server("--data-dir", self.data, *self.args, *address, binary="broker")
        self.connection = self.running.connect()

    def kill(self):
        self.connection.close()
        self.running.process.send_signal(signal.SIGKILL)
        self.running.process.wait()

    def restart(self, hard: bool = False):
        if hard:
            self.kill()
        else:
            self.connection.close()
            assert self.running.terminate() == 0
        self.start()

    def call(self, method: str, request, expect: str = "OK", connection=None):
        """Calls a unary method; checks the code, and validates request and reply against Protocols/."""
        CALLED[self.PACKAGE].add(method)
        return checked_call(self.protocols, connection or self.connection, self.PACKAGE, "Broker", method, request, expect)

    def fetch_all(self, topic: str, partition: int, offset: int = 0) -> list[dict]:
        records = []
        while True:
            reply = self.call("Fetch", {"topic": topic, "partition": partition, "offset": str(offset), "maxRecords": 1000})
            records += reply["records"]
            if int(reply["nextOffset"]) >= int(reply["highWatermark"]):
                return records
            offset = int(reply["nextOffset"])

    def cleanup(self):
        shutil.rmtree(self.data, ignore_errors=True)


def bus_flags(broker: BrokerProcess, bus: str) -> tuple[str, ...]:
    """How a service reaches `broker`: over jframe (--broker), or as a Kafka cluster through the
    broker's Kafka port (--bus kafka://…, the broker started with --kafka-listen)."""
    if bus == "kafka":
        assert broker.running.kafka, "the broker needs --kafka-listen for a Kafka bus"
        return ("--bus", f"kafka://{broker.running.kafka}")
    return ("--broker", f"{broker.running.host}:{broker.running.port}")


class CommandService:
    """A command-service on a data directory that outlives restarts (a fresh one, or `data`
    prepared by the caller), publishing to `broker` over `bus` (jframe or kafka)."""

    PACKAGE = "cqrs.commands.v1"

    def __init__(self, start_server, protocols, broker: BrokerProcess, *args: str, bus: str = "jframe", data: str | None = None):
        self.start_server, self.protocols, self.broker, self.args, self.bus = start_server, protocols, broker, args, bus
        self.data = data or tempfile.mkdtemp(prefix="commands-test-")
        self.start()

    def start(self):
        self.running = self.start_server(
            "--data-dir", self.data, *bus_flags(self.broker, self.bus), *self.args, binary="command-service")
        self.connection = self.running.connect()

    def kill(self):
        self.connection.close()
        self.running.process.send_signal(signal.SIGKILL)
        self.running.process.wait()

    def call(self, service: str, method: str, request, expect: str = "OK", connection=None):
        """Calls a unary method; checks the code, and validates request and reply against Protocols/."""
        CALLED[self.PACKAGE].add(method)
        return checked_call(self.protocols, connection or self.connection, self.PACKAGE, service, method, request, expect)

    def account(self, method: str, request, expect: str = "OK"):
        return self.call("BankAccounts", method, request, expect)

    def wait_published(self, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            status = self.call("EventStore", "GetStatus", {})
            if status["publishedPosition"] == status["headPosition"] and status["brokerConnected"]:
                return status
            assert time.monotonic() < deadline, status
            time.sleep(0.05)

    def cleanup(self):
        shutil.rmtree(self.data, ignore_errors=True)


def eur(minor: int) -> dict:
    return {"amountMinor": str(minor), "currency": "EUR"}


def open_request(account: str, balance: int = 10000, **extra) -> dict:
    return {"accountId": account, "holder": "Ada Lovelace", "accountType": "CURRENT", "openingBalance": eur(balance), **extra}


class QueryService:
    """A query-service on a data directory that outlives restarts, consuming `broker` over `bus`."""

    PACKAGE = "cqrs.queries.v1"

    def __init__(self, start_server, protocols, broker: BrokerProcess, commands: CommandService, *args: str, bus: str = "jframe"):
        self.start_server, self.protocols, self.broker, self.commands, self.args, self.bus = start_server, protocols, broker, commands, args, bus
        self.data = tempfile.mkdtemp(prefix="queries-test-")
        self.start()

    def start(self):
        self.running = self.start_server(
            "--data-dir", self.data, *bus_flags(self.broker, self.bus),
            "--commands", f"{self.commands.running.host}:{self.commands.running.port}", *self.args, binary="query-service")
        self.connection = self.running.connect()

    @property
    def address(self) -> str:
        return f"{self.running.host}:{self.running.port}"

    def kill(self):
        self.connection.close()
        self.running.process.send_signal(signal.SIGKILL)
        self.running.process.wait()

    def call(self, service: str, method: str, request, expect: str = "OK"):
        CALLED[self.PACKAGE].add(method)
        return checked_call(self.protocols, self.connection, self.PACKAGE, service, method, request, expect)

    def stream(self, service: str, method: str, request, count: int | None = None, timeout: float = 60.0) -> list[dict]:
        """A server-streaming call's messages (validated); with count, cancels after that many."""
        CALLED[self.PACKAGE].add(method)
        info = next(m for s in self.protocols.packages[self.PACKAGE]["services"] if s["name"] == service
                    for m in s["methods"] if m["name"] == method)
        connection = self.running.connect()
        try:
            stream = connection.open_call(f"{self.PACKAGE}.{service}/{method}")
            connection.send_message(stream, request, end=True)
            result = connection.finish(stream, timeout=timeout, max_messages=count)
            if count is None:
                assert result.code == 0, result.trailers
            for message in result.messages:
                self.protocols.validate(f"{self.PACKAGE}.{info['response']}", message)
            return result.messages
        finally:
            connection.close()

    def wait_caught_up(self, timeout: float = 30.0) -> dict:
        """Waits until the read models applied everything the CommandService stored."""
        head = int(self.commands.wait_published(timeout)["headPosition"])
        deadline = time.monotonic() + timeout
        while True:
            status = self.call("ReadModels", "GetStatus", {})
            if int(status["appliedPosition"]) >= head:
                return status
            assert time.monotonic() < deadline, (head, status)
            time.sleep(0.05)

    def dump(self) -> dict:
        """The read models through the public API, canonical: every account with its history,
        every order, every customer with their orders."""
        accounts, token = [], None
        while True:
            page = self.call("Accounts", "ListAccounts", {"pageSize": 7, **({"pageToken": token} if token else {})})
            accounts += page["accounts"]
            token = page.get("nextPageToken")
            if not token:
                break
        histories = {a["accountId"]: self.call("Accounts", "GetAccountHistory", {"accountId": a["accountId"], "pageSize": 1000})["transactions"]
                     for a in accounts}
        orders = self.call("Orders", "ListOrders", {"pageSize": 1000})["orders"]
        customers = self.call("Customers", "ListCustomers", {"pageSize": 1000})["customers"]
        return {"accounts": accounts, "histories": histories, "orders": orders, "customers": customers}

    def cleanup(self):
        shutil.rmtree(self.data, ignore_errors=True)


def place(commands: CommandService, order: str, email: str, quantity: int = 1) -> dict:
    first, last = email.split("@")[0].split(".") if "." in email.split("@")[0] else (email.split("@")[0], "Doe")
    return commands.call("Orders", "PlaceOrder", {
        "orderId": order, "customer": {"email": email, "firstName": first.title(), "lastName": last.title()},
        "description": f"order {order}", "quantity": quantity})


class DepositWorkload:
    """One client per account depositing random amounts until stopped; `expected` sums every
    acknowledged deposit per account (a refused or unanswered one fails the test)."""

    def __init__(self, commands: CommandService, accounts: list[str], rng: random.Random):
        self.expected = {account: 0 for account in accounts}
        self.lock, self.stopping = threading.Lock(), threading.Event()
        for account in accounts:
            commands.account("OpenAccount", open_request(account, 0))
        self.threads = [threading.Thread(target=self.deposit, args=(commands, account, rng.randrange(1 << 30))) for account in accounts]
        for thread in self.threads:
            thread.start()

    def deposit(self, commands: CommandService, account: str, seed: int):
        rng = random.Random(seed)
        connection = commands.running.connect()
        try:
            while not self.stopping.is_set():
                amount = rng.randrange(1, 100)
                reply = connection.unary("cqrs.commands.v1.BankAccounts/DepositFunds", {"accountId": account, "amount": eur(amount)})
                assert reply.code == 0, reply.trailers
                with self.lock:
                    self.expected[account] += amount
        finally:
            connection.close()

    def stop(self) -> dict[str, int]:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)
        return self.expected


def assert_applied_once_and_equal_to_a_rebuild(stack, expected: dict[str, int], seed: int):
    """After a workload: balances are the acknowledged sums, histories have no gap or repeat,
    and the live read models equal a fresh rebuild from the event store."""
    stack.wait_caught_up(timeout=60)
    live = stack.dump()
    assert_counted_once(live, expected, seed)
    progress = stack.stream("ReadModels", "Rebuild", {})
    assert progress[-1]["done"] is True
    assert stack.dump() == live, f"the live read models equal a fresh rebuild (seed {seed})"


def assert_counted_once(live: dict, expected: dict[str, int], seed: int):
    """Balances in a dump are the acknowledged sums, and histories have no gap or repeat."""
    balances = {a["accountId"]: int(a["balance"]["amountMinor"]) for a in live["accounts"] if a["accountId"] in expected}
    assert balances == expected, f"every acknowledged deposit counted exactly once (seed {seed})"
    for account in expected:
        versions = [int(t["version"]) for t in live["histories"][account]]
        assert versions == list(range(1, len(versions) + 1)), f"no event applied twice or skipped (seed {seed})"
