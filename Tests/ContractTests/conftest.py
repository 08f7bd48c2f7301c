"""Fixtures: the real server binary on an ephemeral port, and the Protocols/ definitions."""
from __future__ import annotations

import codecs
import collections
import json
import os
import pathlib
import signal
import subprocess
import threading

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import jframe
from processes import BrokerProcess, CommandService, QueryService

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTOCOLS = ROOT / "Protocols"
BIN_DIR = pathlib.Path(os.environ.get("JFRAME_BIN_DIR", ROOT / ".build" / "debug"))


class Protocols:
    """Every package file, and validators for their messages (refs across files resolve)."""

    def __init__(self):
        self.packages = {}
        registry = Registry()
        for path in sorted(PROTOCOLS.glob("*.json")):
            if path.name == "package.schema.json":
                continue
            document = json.loads(path.read_text())
            self.packages[document["package"]] = document
            registry = registry.with_resource(f"https://jframe.invalid/protocols/{path.name}", Resource(document, DRAFT202012))
            # Relative refs like other.v1.json#/messages/X resolve against the file's own URI.
        self.registry = registry

    def validator(self, package: str, message: str) -> Draft202012Validator:
        uri = f"https://jframe.invalid/protocols/{package}.json#/messages/{message}"
        return Draft202012Validator({"$ref": uri}, registry=self.registry)

    def validate(self, qualified: str, value) -> None:
        package, _, message = qualified.rpartition(".")
        self.validator(package, message).validate(value)

    def methods(self):
        """(package, service, method) for every method of every package."""
        for package, document in sorted(self.packages.items()):
            for service in document["services"]:
                for method in service["methods"]:
                    yield package, service, method


@pytest.fixture(scope="session")
def protocols() -> Protocols:
    return Protocols()


class RunningServer:
    def __init__(self, binary: str, *args: str):
        self.process = subprocess.Popen(
            [str(BIN_DIR / binary), "--listen", "127.0.0.1:0", "--log-level", "warning", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # One line once listening; with --http2-listen another for the edge, in either order.
        wanted = {"listening"} | ({"listening-http2"} if "--http2-listen" in args else set())
        wanted |= {"listening-metrics"} if "--metrics-listen" in args else set()
        wanted |= {"listening-kafka"} if "--kafka-listen" in args else set()
        self.http2 = None
        self.metrics = None
        self.kafka = None
        # The server's log is drained as it comes (a full pipe would block the server's logging
        # thread, and with it an event loop); the last 64 KB are kept for failure messages.
        self.log_tail = collections.deque(maxlen=64 * 1024)
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        while wanted:
            line = self.process.stdout.readline()
            if not line:
                self.process.wait(timeout=10)
                raise RuntimeError(f"{binary} did not start: {self.log}")
            event = json.loads(line)
            wanted.discard(event["event"])
            if event["event"] == "listening":
                self.host, self.port = event["host"], event["port"]
            elif event["event"] == "listening-http2":
                self.http2 = f"{event['host']}:{event['port']}"
            elif event["event"] == "listening-metrics":
                self.metrics = f"{event['host']}:{event['port']}"
            elif event["event"] == "listening-kafka":
                self.kafka = f"{event['host']}:{event['port']}"

    def _drain_stderr(self) -> None:
        # os.read returns what is there (a text stream's read(n) would wait for n characters).
        descriptor = self.process.stderr.fileno()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for chunk in iter(lambda: os.read(descriptor, 65536), b""):
            self.log_tail.extend(decoder.decode(chunk))

    @property
    def log(self) -> str:
        """The end of the server's stderr so far."""
        return "".join(self.log_tail)

    def connect(self, **options) -> jframe.Connection:
        return jframe.Connection(self.host, self.port, **options)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def server():
    running = RunningServer("rpc-testserver")
    yield running
    running.stop()


@pytest.fixture
def start_server():
    """Starts servers with extra flags; all are stopped after the test."""
    started = []

    def start(*args: str, binary: str = "rpc-testserver") -> RunningServer:
        running = RunningServer(binary, *args)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def conn(server):
    connection = server.connect()
    yield connection
    connection.close()


# The services as processes (see processes.py): a broker; a command-service on a broker; all three.
@pytest.fixture
def broker(start_server, protocols):
    process = BrokerProcess(start_server, protocols)
    yield process
    process.cleanup()


@pytest.fixture
def system(start_server, protocols):
    broker = BrokerProcess(start_server, protocols)
    service = CommandService(start_server, protocols, broker)
    yield service
    service.cleanup()
    broker.cleanup()


def make_stack(start_server, protocols, bus: str = "jframe"):
    """The three services; on a Kafka bus the services use the broker's Kafka port."""
    broker = BrokerProcess(start_server, protocols, *(("--kafka-listen", "127.0.0.1:0") if bus == "kafka" else ()))
    commands = CommandService(start_server, protocols, broker, bus=bus)
    queries = QueryService(start_server, protocols, broker, commands, bus=bus)
    return queries, (queries, commands, broker)


@pytest.fixture
def stack(start_server, protocols):
    queries, parts = make_stack(start_server, protocols)
    yield queries
    for part in parts:
        part.cleanup()
