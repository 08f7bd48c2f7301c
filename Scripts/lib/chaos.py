"""The crash harness behind Scripts/chaos: a workload of bank-account commands with idempotent
retries across the broker, the command-service and the query-service (real processes, real
ports), while a seeded killer SIGKILLs a random service at random moments and restarts it.
At the end it checks what the system promises and prints one JSON summary line:

- every acknowledged command's event is in the event store (`lost` counts those missing);
- every stored event reached the broker, once per event id (`unpublished`, `duplicated`);
- the query-service's committed offsets never went backwards (`offset_regressions`);
- every balance equals its acknowledged opening balance + deposits - withdrawals (`balance_mismatches`);
- the live read models equal a fresh rebuild from the event store (`rebuild_equal`);
- with `--store postgres`, every query-service replica answers with the same models
  (`query_replicas_equal`);
- the job board, whose client posts, updates and archives jobs and applies to them among the
  account commands: every job as its client left it (`job_mismatches`), every application's copy
  of its job equal to the job (`application_copy_mismatches`), and no application to an archived
  job accepted (`archived_job_applications_accepted`).

Clock skew is a fault too (JFRAME_CLOCK_SKEW_MS; CHAOS_SKEW=0 turns it off): the broker's clock runs 8
days ahead for the whole run, and about a third of the restarts of the command-service and the
query-service bring them back with their clocks 8 days behind or ahead (`skewed_restarts`). The
broker rolls 4 KiB segments and applies its 7-day retention every 200 ms, so a record that a
skewed clock made look old would be deleted before a lagging query-service read it. (A broker
whose own clock jumps forward mid-run deletes what it holds by retention, here as in Kafka: that
is not a fault this harness injects.)

Forged records are a fault too (CHAOS_FORGE=0 turns them off): a forger produces records into
`BankAccount` that claim the next event of a client's account (its stream version and the next
global position), some with a value no read model can apply, some with a well-formed deposit.
The read side must not lose the real event behind them: at the end every parked record is
skipped (`SkipParked`, which asks the event store first), after which the accounts that got
only malformed forgeries must already hold their acknowledged balances (`skip_mismatches`);
the ones a well-formed forgery reached are repaired by the rebuild, and then every check above
holds for all. (The broker's protected topics, which keep forgers out when tokens are on, are
tested in test_security.py; here the broker runs without tokens, where the read side's
conflict checks are what is left.)

Usage: chaos.py --profile short|long [--seed N] (Scripts/chaos builds the binaries first)."""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "ContractTests"))
import jframe  # noqa: E402  (the protocol client the contract tests use)

BIN = pathlib.Path(os.environ.get("JFRAME_BIN_DIR", ROOT / ".build" / "debug"))
# The skews a restart may bring, per service, in ms: 8 days past a 7-day retention either way.
# The broker keeps one skew for the whole run (BROKER_SKEW).
EIGHT_DAYS = 8 * 86_400_000
SKEWS = {"command-service": [-EIGHT_DAYS, EIGHT_DAYS], "query-service": [-EIGHT_DAYS, EIGHT_DAYS]}
BROKER_SKEW = EIGHT_DAYS
PROFILES = {
    # kills, clients, accounts per client, pause between kills (s), time a service stays down (s)
    "short": {"kills": 8, "clients": 4, "accounts": 2, "between": (0.3, 1.2), "down": (0.0, 0.4)},
    "long": {"kills": 60, "clients": 6, "accounts": 3, "between": (0.3, 1.5), "down": (0.0, 0.6)},
}
RETRYABLE = {jframe.CODE["UNAVAILABLE"], jframe.CODE["DEADLINE_EXCEEDED"], jframe.CODE["CANCELLED"],
             jframe.CODE["UNKNOWN"], jframe.CODE["ABORTED"], jframe.CODE["INTERNAL"]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """One of the three binaries on a fixed port and data directory, restartable."""

    def __init__(self, name: str, binary: str, work: pathlib.Path, data_variable: str, settings: dict[str, str]):
        self.name, self.binary, self.port = name, binary, free_port()
        self.data = work / name
        self.log = open(work / f"{name}.log", "ab")
        # Every setting through the environment, which each flag also reads.
        self.settings = {"JFRAME_LISTEN": self.address, data_variable: str(self.data), "JFRAME_LOG_LEVEL": os.environ.get("CHAOS_LOG_LEVEL", "warning"), **settings}
        self.process: subprocess.Popen | None = None
        self.fixed_skew: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, skew: int | None = None):
        """Starts the binary; with `skew` (ms), its wall clock is that far off (JFRAME_CLOCK_SKEW_MS:
        the times it stores; its timeouts and sleeps run true)."""
        skew = skew or self.fixed_skew
        env = {**os.environ, **self.settings}
        if skew:
            env["JFRAME_CLOCK_SKEW_MS"] = str(skew)
        self.process = subprocess.Popen([str(BIN / self.binary)], stdout=subprocess.PIPE, stderr=self.log, env=env)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} did not start; see {self.log.name}")
        threading.Thread(target=self.process.stdout.read, daemon=True).start()  # keep the pipe drained

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def call(address: str, method: str, request: dict, timeout_ms: int = 3000):
    """A unary call on a fresh connection; (code, message or trailers). Connection errors are UNAVAILABLE."""
    host, port = address.split(":")
    try:
        connection = jframe.Connection(host, int(port))
    except OSError:
        return jframe.CODE["UNAVAILABLE"], None
    try:
        # The client waits as long as the deadline it sends (its own default is 10 s).
        result = connection.unary(method, request, timeout_ms=timeout_ms, timeout=timeout_ms / 1000 + 5)
        return result.code, (result.messages[0] if result.code == 0 and result.messages else result.trailers)
    except (OSError, jframe.ConnectionClosed, TimeoutError):
        return jframe.CODE["UNAVAILABLE"], None
    finally:
        connection.close()


class Client(threading.Thread):
    """Sends commands to its own accounts; each is retried with the same command id until it is
    acknowledged or refused, so an acknowledgement is what the system promised to keep."""

    def __init__(self, harness: "Harness", index: int, seed: int):
        super().__init__(daemon=True)
        self.harness, self.rng = harness, random.Random(seed)
        self.accounts = [f"chaos-{index}-{n}" for n in range(harness.profile["accounts"])]
        self.acked: list[dict] = []  # {"commandId", "accountId", "delta"}
        self.refused = 0

    def command(self, method: str, request: dict, delta: int, account: str) -> bool:
        command_id = f"{account}-{len(self.acked)}-{self.rng.randrange(1 << 40):x}"
        request = {**request, "commandId": command_id}
        while True:
            code, reply = call(self.rng.choice(self.harness.command_replicas).address, f"cqrs.commands.v1.BankAccounts/{method}", request)
            if code == 0:
                self.acked.append({"commandId": command_id, "accountId": account, "delta": delta,
                                   "position": int(reply["position"])})
                return True
            if code not in RETRYABLE:
                self.refused += 1  # a business refusal (overdraft): nothing was promised
                return False
            if self.harness.stopping.is_set() and self.harness.deadline_passed():
                raise RuntimeError(f"{method} {command_id} never acknowledged")
            time.sleep(0.05)

    def run(self):
        for account in self.accounts:
            opening = self.rng.randrange(0, 10_000)
            self.command("OpenAccount", {"accountId": account, "holder": "Chaos Monkey", "accountType": "CURRENT",
                                         "openingBalance": {"amountMinor": str(opening), "currency": "EUR"}}, opening, account)
        while not self.harness.stopping.is_set():
            account = self.rng.choice(self.accounts)
            amount = self.rng.randrange(1, 500)
            if self.rng.random() < 0.7:
                self.command("DepositFunds", {"accountId": account, "amount": {"amountMinor": str(amount), "currency": "EUR"}},
                             amount, account)
            else:
                self.command("WithdrawFunds", {"accountId": account, "amount": {"amountMinor": str(amount), "currency": "EUR"}},
                             -amount, account)


class JobBoardClient(threading.Thread):
    """The job board among the commands: posts jobs, applies to them, updates them at the version
    it last saw and archives some, each command retried with the same command id like the
    accounts' (it is the only writer of its jobs, so the versions it holds are the jobs' own).
    Applying to an archived job must be refused; `expected` is every job as the client left it."""

    def __init__(self, harness: "Harness", seed: int):
        super().__init__(daemon=True)
        self.harness, self.rng = harness, random.Random(seed)
        self.acked: list[dict] = []  # {"commandId"}
        self.expected: dict[str, dict] = {}  # job id -> {"title", "description", "status", "version"}
        self.applications = 0
        self.wrongly_accepted = 0
        self.failure: str | None = None

    def command(self, service: str, method: str, request: dict) -> tuple[int, dict]:
        command_id = f"board-{len(self.acked)}-{self.rng.randrange(1 << 40):x}"
        request = {**request, "commandId": command_id}
        while True:
            code, reply = call(self.rng.choice(self.harness.command_replicas).address, f"cqrs.commands.v1.{service}/{method}", request)
            if code == 0:
                self.acked.append({"commandId": command_id})
                return code, reply
            if code not in RETRYABLE:
                return code, reply
            if self.harness.stopping.is_set() and self.harness.deadline_passed():
                raise RuntimeError(f"{method} {command_id} never acknowledged")
            time.sleep(0.05)

    def post(self):
        job_id = f"chaos-job-{len(self.expected)}"
        title, description = f"Job {len(self.expected)}", f"Posted by the chaos harness ({self.rng.randrange(1000)})"
        code, reply = self.command("Jobs", "CreateJob", {"jobId": job_id, "title": title, "description": description})
        assert code == 0, (code, reply)
        self.expected[job_id] = {"title": title, "description": description, "status": "OPEN", "version": reply["version"]}

    def run(self):
        try:
            self.work()
        except Exception as error:  # shown in the summary: a refusal the board did not expect
            self.failure = f"{type(error).__name__}: {error}"

    def work(self):
        for _ in range(2):
            self.post()
        while not self.harness.stopping.wait(self.rng.uniform(0.005, 0.03)):
            job_id = self.rng.choice(sorted(self.expected))
            job, roll = self.expected[job_id], self.rng.random()
            if roll < 0.45:
                code, reply = self.command("Applications", "CreateApplication", {
                    "applicationId": f"chaos-app-{self.applications}", "jobId": job_id, "firstName": "Chaos", "lastName": "Monkey",
                    "email": "monkey@example.com", "currentPosition": "Tester"})
                self.applications += 1
                if job["status"] == "ARCHIVED" and code == 0:
                    self.wrongly_accepted += 1
                elif job["status"] == "OPEN":
                    assert code == 0, (code, reply)
            elif roll < 0.8 and job["status"] == "OPEN":
                title = f"{job_id} rev {self.rng.randrange(1 << 20)}"
                code, reply = self.command("Jobs", "UpdateJob", {"jobId": job_id, "title": title, "description": job["description"],
                                                                 "version": job["version"]})
                assert code == 0, (code, reply)
                job.update(title=title, version=reply["version"])
            elif roll < 0.88 and job["status"] == "OPEN":
                code, reply = self.command("Jobs", "ArchiveJob", {"jobId": job_id, "version": job["version"]})
                assert code == 0, (code, reply)
                job.update(status="ARCHIVED", version=reply["version"])
            elif roll >= 0.95:
                self.post()


class Forger(threading.Thread):
    """Produces records claiming the next event of a client's account: the stream version after
    the store's last, and the position after the store's head."""

    def __init__(self, harness: "Harness", seed: int):
        super().__init__(daemon=True)
        self.harness, self.rng = harness, random.Random(seed)
        self.forged = 0
        self.well_formed: set[str] = set()  # accounts a well-formed forgery was sent for

    def forge(self, account: str, well_formed: bool) -> bool:
        commands = self.harness.commands.address
        code, stream = call(commands, "cqrs.commands.v1.EventStore/ReadStream", {"streamId": f"BankAccount-{account}", "fromVersion": "1", "maxCount": 1000})
        code2, status = call(commands, "cqrs.commands.v1.EventStore/GetStatus", {})
        if code != 0 or code2 != 0 or not stream["events"]:
            return False
        version = int(stream["events"][-1]["streamVersion"]) + 1
        value = ({"accountId": account, "amount": {"amountMinor": 1_000_000, "currency": "EUR"}} if well_formed
                 else {"amount": "not money"})
        headers = {"ce_id": f"forged-{self.forged}", "ce_type": "FundsDeposited", "ce_subject": f"BankAccount-{account}",
                   "ce_streamversion": str(version), "ce_position": str(int(status["headPosition"]) + 1), "ce_schemaversion": "1",
                   "ce_time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
        code, _ = call(self.harness.broker.address, "cqrs.broker.v1.Broker/Produce",
                       {"topic": "BankAccount", "records": [{"key": account, "value": value, "headers": headers}]})
        if code != 0:
            return False
        self.forged += 1
        if well_formed:
            self.well_formed.add(account)
        return True

    def run(self):
        accounts = [f"chaos-{c}-{n}" for c in range(self.harness.profile["clients"]) for n in range(self.harness.profile["accounts"])]
        while not self.harness.stopping.wait(self.rng.uniform(0.5, 1.5)):
            self.forge(self.rng.choice(accounts), well_formed=self.rng.random() < 0.3)


class Harness:
    def __init__(self, profile: str, seed: int, store: str = "sqlite", bus: str = "jframe"):
        self.profile_name, self.profile, self.seed, self.store, self.bus = profile, PROFILES[profile], seed, store, bus
        self.rng = random.Random(seed)
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="chaos-", dir=os.environ.get("CHAOS_DIR")))
        self.broker = Service("broker", "broker", self.work, "BROKER_DATA_DIR",
                              {"BROKER_SEGMENT_BYTES": "4096", "BROKER_MAINTENANCE_INTERVAL_MS": "200"})
        # On a Kafka bus the services reach the broker through its Kafka port (librdkafka), as
        # they would any Kafka cluster; the harness's own checks still read over jframe.
        reach = {"CQRS_BROKER": self.broker.address}
        if bus == "kafka":
            kafka = f"127.0.0.1:{free_port()}"
            self.broker.settings["BROKER_KAFKA_LISTEN"] = kafka
            reach["CQRS_BUS"] = f"kafka://{kafka}"
        self.commands = Service("command-service", "command-service", self.work, "COMMANDS_DATA_DIR", dict(reach))
        self.command_replicas = [self.commands]
        if store == "postgres":
            # Two replicas on one PostgreSQL store (a schema of this run's own), sharing the relay's
            # key; clients send each command to either, and either may be killed.
            url = f"{os.environ['CHAOS_POSTGRES_URL']}?schema=chaos_{seed}"
            shared = {**reach, "COMMANDS_STORE": url, "COMMANDS_RELAY_KEY_FILE": str(self.work / "relay.key")}
            self.commands.settings.update(shared)
            second = Service("command-service-2", "command-service", self.work, "COMMANDS_DATA_DIR", shared)
            self.command_replicas.append(second)
        self.queries = Service("query-service", "query-service", self.work, "QUERIES_DATA_DIR",
                               {**reach, "CQRS_COMMANDS": self.commands.address})
        self.query_replicas = [self.queries]
        if store == "postgres":
            # Two replicas on one PostgreSQL schema of read models, in one consumer group; either
            # may be killed, and at the end both must answer with the same models.
            read_store = f"{os.environ['CHAOS_POSTGRES_URL']}?schema=chaos_rm_{seed}"
            self.queries.settings["QUERIES_READ_STORE"] = read_store
            self.query_replicas.append(Service("query-service-2", "query-service", self.work, "QUERIES_DATA_DIR",
                                               {**self.queries.settings, "QUERIES_DATA_DIR": str(self.work / "query-service-2")}))
            self.query_replicas[1].settings["JFRAME_LISTEN"] = self.query_replicas[1].address
        self.services = [self.broker, *self.command_replicas, *self.query_replicas]
        self.stopping = threading.Event()
        self.final_deadline = None
        self.kills = {service.name: 0 for service in self.services}
        self.skew = os.environ.get("CHAOS_SKEW", "1") != "0"
        self.skewed_restarts = 0
        if self.skew:
            self.broker.fixed_skew = BROKER_SKEW
        self.forger = Forger(self, self.rng.randrange(1 << 30)) if os.environ.get("CHAOS_FORGE", "1") != "0" else None
        self.committed: dict[str, int] = {}
        self.offset_regressions = 0

    def deadline_passed(self) -> bool:
        return self.final_deadline is not None and time.monotonic() > self.final_deadline

    def watch_offsets(self):
        """Polls the query-service group's committed offsets; a committed offset must never go back."""
        while not self.stopping.is_set() or not self.deadline_passed():
            for topic in ("BankAccount",):
                code, reply = call(self.broker.address, "cqrs.broker.v1.Broker/FetchCommittedOffsets",
                                   {"group": "query-service", "topic": topic}, 1000)
                if code == 0:
                    for entry in reply.get("offsets", []):
                        key, offset = f"{topic}/{entry['partition']}", int(entry["offset"])
                        if offset < self.committed.get(key, -1):
                            self.offset_regressions += 1
                        self.committed[key] = max(offset, self.committed.get(key, -1))
            if self.stopping.is_set() and self.final_deadline is None:
                return
            time.sleep(0.1)

    def run(self) -> dict:
        started = time.monotonic()
        for service in self.services:
            service.start()
        clients = [Client(self, index, self.rng.randrange(1 << 30)) for index in range(self.profile["clients"])]
        self.board = JobBoardClient(self, self.rng.randrange(1 << 30))
        for client in clients:
            client.start()
        self.board.start()
        watcher = threading.Thread(target=self.watch_offsets, daemon=True)
        watcher.start()
        if self.forger:
            self.forger.start()
        try:
            for _ in range(self.profile["kills"]):
                time.sleep(self.rng.uniform(*self.profile["between"]))
                victim = self.rng.choice(self.services)
                victim.kill()
                self.kills[victim.name] += 1
                time.sleep(self.rng.uniform(*self.profile["down"]))
                skew = self.rng.choice(SKEWS[victim.binary]) if self.skew and victim.binary in SKEWS and self.rng.random() < 0.35 else None
                self.skewed_restarts += skew is not None
                victim.start(skew)
            time.sleep(0.5)
            self.stopping.set()
            self.final_deadline = time.monotonic() + 60
            for client in clients:
                client.join(90)
            self.board.join(90)
            if self.forger:
                self.forger.join(30)
            summary = self.check(clients)
        finally:
            self.final_deadline = 0
            for service in reversed(self.services):
                service.stop()
        summary["seconds"] = round(time.monotonic() - started, 1)
        return summary

    def check(self, clients: list[Client]) -> dict:
        acked = [ack for client in clients for ack in client.acked]
        # The event store: every acknowledged command's event, by causation id = command id.
        events, position = [], 1
        while True:
            code, page = call(self.commands.address, "cqrs.commands.v1.EventStore/ReadAll", {"fromPosition": str(position), "maxCount": 1000}, 10000)
            assert code == 0, page
            events += page["events"]
            position = int(page["nextPosition"])
            if position > int(page["headPosition"]):
                break
        by_command = {}
        for event in events:
            by_command.setdefault(event.get("causationId"), []).append(event)
        lost = sum(1 for ack in acked + self.board.acked if ack["commandId"] not in by_command)
        appended_twice = sum(1 for ack in acked if len(by_command.get(ack["commandId"], [])) > 1)

        # The broker: every stored event once per event id (after the relay has caught up).
        # With replicas, the one holding the relay's lease reports it.
        deadline = time.monotonic() + 60
        while True:
            statuses = [call(replica.address, "cqrs.commands.v1.EventStore/GetStatus", {}) for replica in self.command_replicas]
            caught_up = [status for code, status in statuses if code == 0 and status["publishedPosition"] == status["headPosition"]]
            if caught_up:
                status = caught_up[0]
                break
            assert time.monotonic() < deadline, f"the relay did not catch up: {statuses}"
            time.sleep(0.1)
        published: dict[str, int] = {}
        code, topic = call(self.broker.address, "cqrs.broker.v1.Broker/DescribeTopic", {"name": "BankAccount"})
        assert code == 0, topic
        for partition in topic["partitions"]:
            offset = int(partition["logStartOffset"])
            while offset < int(partition["highWatermark"]):
                code, fetched = call(self.broker.address, "cqrs.broker.v1.Broker/Fetch",
                                     {"topic": "BankAccount", "partition": partition["partition"], "offset": str(offset), "maxRecords": 1000})
                assert code == 0, fetched
                for record in fetched["records"]:
                    event_id = record.get("headers", {}).get("ce_id")
                    published[event_id] = published.get(event_id, 0) + 1
                    offset = int(record["offset"]) + 1
        stored_ids = [event["eventId"] for event in events if event["streamId"].startswith("BankAccount-")]
        unpublished = sum(1 for event_id in stored_ids if event_id not in published)
        duplicated = sum(count - 1 for count in published.values() if count > 1)

        # The read models: caught up, balances equal to the acknowledged sums, equal to a rebuild.
        head = int(status["headPosition"])
        deadline = time.monotonic() + 60
        while True:
            code, read_status = call(self.queries.address, "cqrs.queries.v1.ReadModels/GetStatus", {})
            if (code == 0 and int(read_status["appliedPosition"]) >= head
                    and all(p.get("lag", "0") == "0" for p in read_status["partitions"])):
                break
            assert time.monotonic() < deadline, f"the read models did not catch up: {read_status}"
            time.sleep(0.1)
        expected: dict[str, int] = {}
        for ack in acked:
            expected[ack["accountId"]] = expected.get(ack["accountId"], 0) + ack["delta"]
        forgery = self.repair_forgeries(expected)
        board = self.check_board()
        live = self.dump()
        live_board = self.board_dump()
        balances = {account["accountId"]: int(account["balance"]["amountMinor"]) for account in live}
        balance_mismatches = sum(1 for account, total in expected.items() if balances.get(account) != total)
        host, port = self.queries.address.split(":")
        connection = jframe.Connection(host, int(port))
        try:
            rebuild = connection.server_streaming("cqrs.queries.v1.ReadModels/Rebuild", {}, timeout_ms=120000, timeout=120)
        finally:
            connection.close()
        rebuild_equal = rebuild.code == 0 and self.dump() == live and self.board_dump() == live_board
        replicas_equal = all(self.dump(replica) == live and self.board_dump(replica) == live_board for replica in self.query_replicas[1:])
        return {
            "profile": self.profile_name, "store": self.store, "bus": self.bus, "seed": self.seed, "kills": sum(self.kills.values()), "kills_by_service": self.kills,
            "acked": len(acked), "refused": sum(client.refused for client in clients), "events": len(events),
            "lost": lost, "appended_twice": appended_twice, "unpublished": unpublished, "duplicated": duplicated,
            "offset_regressions": self.offset_regressions, "balance_mismatches": balance_mismatches,
            "rebuild_equal": rebuild_equal, "query_replicas_equal": replicas_equal, "skewed_restarts": self.skewed_restarts if self.skew else "off",
            **board, **forgery,
        }

    def repair_forgeries(self, expected: dict[str, int]) -> dict:
        """Skips every parked record (each checked against the event store by the service), checks
        the accounts no well-formed forgery reached, then rebuilds for the others."""
        if not self.forger:
            return {"forged": "off"}
        code, listed = call(self.queries.address, "cqrs.queries.v1.ReadModels/ListParked", {"pageSize": 1000}, 10000)
        assert code == 0, listed
        conflicts = sum(1 for event in listed.get("events", []) if event["state"] == "CONFLICT")  # in the first 1000
        code, before = call(self.queries.address, "cqrs.queries.v1.ReadModels/GetStatus", {})
        assert code == 0, before
        code, skipped = call(self.queries.address, "cqrs.queries.v1.ReadModels/SkipParked", {"all": True}, 120000)
        assert code == 0, skipped
        balances = {account["accountId"]: int(account["balance"]["amountMinor"]) for account in self.dump()}
        skip_mismatches = sum(1 for account, total in expected.items()
                              if account not in self.forger.well_formed and balances.get(account) != total)
        if skip_mismatches:  # what the skip left, to diagnose
            code, left = call(self.queries.address, "cqrs.queries.v1.ReadModels/ListParked", {"pageSize": 50}, 10000)
            print(json.dumps({"after_skip": [{k: e.get(k) for k in ("id", "state", "eventId", "streamId", "streamVersion", "position", "error")}
                                             for e in left.get("events", [])][:20],
                              "mismatched": {a: (balances.get(a), t) for a, t in expected.items()
                                             if a not in self.forger.well_formed and balances.get(a) != t}}, indent=0), file=sys.stderr)
        rebuilt = False
        if skipped["stillParked"] or self.forger.well_formed:
            host, port = self.queries.address.split(":")
            connection = jframe.Connection(host, int(port))
            try:
                rebuild = connection.server_streaming("cqrs.queries.v1.ReadModels/Rebuild", {}, timeout_ms=120000, timeout=120)
                assert rebuild.code == 0, rebuild.trailers
            finally:
                connection.close()
            rebuilt = True
        code, status = call(self.queries.address, "cqrs.queries.v1.ReadModels/GetStatus", {})
        assert code == 0, status
        if int(status["parkedEvents"]):  # what the repair left, to diagnose
            code, left = call(self.queries.address, "cqrs.queries.v1.ReadModels/ListParked", {"pageSize": 50}, 10000)
            print(json.dumps({"after_repair": [{k: e.get(k) for k in ("id", "state", "eventId", "streamId", "streamVersion", "position", "topic", "partition", "offset", "error")}
                                               for e in left.get("events", [])][:20]}, indent=0), file=sys.stderr)
        return {"forged": self.forger.forged, "forged_well_formed_accounts": len(self.forger.well_formed), "parked_seen": int(before["parkedEvents"]),
                "conflicts_seen": conflicts, "kept_by_skip": int(skipped["stillParked"]), "skip_mismatches": skip_mismatches,
                "rebuilt_for_forgeries": rebuilt, "parked_after_repair": int(status["parkedEvents"])}

    def check_board(self) -> dict:
        """The job board: every job as its client left it, and every application's copy of its job
        equal to the job (event-carried state caught up, whatever order the topics arrived in)."""
        jobs = {job["jobId"]: job for job in self.board_dump()[0]}
        job_mismatches = sum(1 for job_id, want in self.board.expected.items()
                             if {k: jobs.get(job_id, {}).get(k) for k in want} != want)
        copy_mismatches = 0
        applications = self.board_dump()[1]
        for application in applications:
            job = jobs.get(application["jobId"], {})
            if application["job"] != {k: job.get(k) for k in ("title", "description", "status", "version")}:
                copy_mismatches += 1
        return {"jobs": len(jobs), "applications": len(applications), "job_mismatches": job_mismatches,
                "application_copy_mismatches": copy_mismatches, "archived_job_applications_accepted": self.board.wrongly_accepted,
                "board_failure": self.board.failure}

    def board_dump(self, replica: Service | None = None) -> tuple[list[dict], list[dict]]:
        def pages(service: str, method: str, key: str) -> list[dict]:
            items, token = [], None
            while True:
                code, page = call((replica or self.queries).address, f"cqrs.queries.v1.{service}/{method}",
                                  {"pageSize": 500, **({"pageToken": token} if token else {})}, 10000)
                assert code == 0, page
                items += page[key]
                token = page.get("nextPageToken")
                if not token:
                    return items
        return pages("Jobs", "ListJobs", "jobs"), pages("Applications", "ListApplications", "applications")

    def dump(self, replica: Service | None = None) -> list[dict]:
        accounts, token = [], None
        while True:
            code, page = call((replica or self.queries).address, "cqrs.queries.v1.Accounts/ListAccounts",
                              {"pageSize": 500, **({"pageToken": token} if token else {})}, 10000)
            assert code == 0, page
            accounts += page["accounts"]
            token = page.get("nextPageToken")
            if not token:
                return accounts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="short")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (data and logs)")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite",
                        help="postgres: two command-service replicas on one PostgreSQL store and two query-service replicas on one PostgreSQL schema of read models (CHAOS_POSTGRES_URL; Scripts/chaos starts a cluster)")
    parser.add_argument("--bus", choices=["jframe", "kafka"], default="jframe",
                        help="kafka: the services publish and consume through the broker's Kafka port with librdkafka (--bus kafka://…)")
    options = parser.parse_args()
    seed = options.seed if options.seed is not None else random.randrange(1 << 30)
    print(f"chaos: profile {options.profile}, seed {seed} (replay with --seed {seed})", file=sys.stderr, flush=True)
    harness = Harness(options.profile, seed, options.store, options.bus)
    try:
        summary = harness.run()
    finally:
        if not options.keep:
            shutil.rmtree(harness.work, ignore_errors=True)
        else:
            print(f"chaos: data and logs kept in {harness.work}", file=sys.stderr)
    print(json.dumps(summary), flush=True)
    ok = (summary["lost"] == 0 and summary["appended_twice"] == 0 and summary["unpublished"] == 0 and summary["duplicated"] == 0
          and summary["offset_regressions"] == 0 and summary["balance_mismatches"] == 0 and summary["rebuild_equal"]
          and summary["query_replicas_equal"]
          and summary.get("skip_mismatches", 0) == 0 and summary.get("parked_after_repair", 0) == 0
          and summary["job_mismatches"] == 0 and summary["application_copy_mismatches"] == 0
          and summary["archived_job_applications_accepted"] == 0 and summary["board_failure"] is None)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
