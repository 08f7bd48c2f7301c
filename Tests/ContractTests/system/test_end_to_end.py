"""End to end: the broker, the command-service and the query-service as separate processes on
real sockets, on each bus (jframe, and the broker's Kafka port through librdkafka). The demo story asserted step by step; the QueryService stopped while commands go
on, then restarted and caught up; the broker restarted in the middle of a workload; and at the
end the read models equal a rebuild from the event store's history."""
from __future__ import annotations

import os
import random
import subprocess
import time

import pytest

from conftest import BIN_DIR, ROOT, make_stack
from processes import DepositWorkload, assert_applied_once_and_equal_to_a_rebuild, eur, open_request, place


@pytest.fixture(params=["jframe", "kafka"])
def stack(request, start_server, protocols):
    """Every test here twice: the services on our broker over jframe, and on its Kafka port as
    on any Kafka cluster (--bus kafka://…, librdkafka)."""
    queries, parts = make_stack(start_server, protocols, bus=request.param)
    yield queries
    for part in parts:
        part.cleanup()


def story(stack, **extra_env) -> subprocess.CompletedProcess:
    env = {**os.environ, "CQRS_BIN": str(BIN_DIR / "cqrs"), "NO_COLOR": "1",
           "CQRS_BROKER": f"{stack.broker.running.host}:{stack.broker.running.port}",
           "CQRS_COMMANDS": f"{stack.commands.running.host}:{stack.commands.running.port}",
           "CQRS_QUERIES": stack.address, **extra_env}
    return subprocess.run(["bash", str(ROOT / "Scripts/lib/demo-story.sh")], capture_output=True, text=True, timeout=300, env=env)


def sections(output: str) -> dict[str, str]:
    """The story's output by step title."""
    parts: dict[str, str] = {}
    title = ""
    for line in output.splitlines():
        if line.startswith("── "):
            title = line.strip("─ ").split(". ", 1)[1]
            parts[title] = ""
        elif title:
            parts[title] += line + "\n"
    return parts


def test_the_demo_story_step_by_step(stack):
    told = story(stack)
    assert told.returncode == 0, told.stdout + told.stderr
    steps = sections(told.stdout)
    opened = steps["Open three bank accounts (commands go to the CommandService)"]
    assert [line.split()[0] for line in opened.splitlines() if "version" in line] == [
        "BankAccount-acct-ada", "BankAccount-acct-grace", "BankAccount-acct-alan"]
    overdraft = steps["An overdraft is refused with a clear message"]
    assert "error: FAILED_PRECONDITION: insufficient funds" in overdraft and "exit status 9" in overdraft
    assert "the account is closed" in steps["Close an account (it stays queryable)"]
    topic = steps["The OnNewOrder topic on the broker: partition, offset and key of each record"]
    records = [line for line in topic.splitlines() if line.startswith("OnNewOrder/")]
    assert sorted(r.split(" key=")[1].split()[0] for r in records) == sorted(f"order-{i}" for i in range(1, 9))
    accounts = steps["Query accounts (the QueryService), reading our own writes"]
    assert "125.50 EUR" in accounts and "2200.00 EUR" in accounts and "CLOSED" in accounts
    assert "order-5" in steps["Query orders by customer, and customers"]
    posted = steps["The job board: post a job, and two candidates apply (each application carries a copy of the job)"]
    assert "app-grace" in posted and "app-alan" in posted
    updated = steps["Update the job at the version we read: the applications' copies follow; a stale version is refused"]
    assert "error: ABORTED" in updated and "exit status 10" in updated
    archived = steps["Archive the job: its applications say so, and a new application is refused"]
    assert "ARCHIVED" in archived and "job job-compiler is archived" in archived and "exit status 9" in archived
    status = steps["Read-model status: applied position and lag per partition"]
    assert "applied position 21" in status and "jobs 1" in status and "applications 2" in status
    assert "identical" in steps["Rebuild the read models from the event store's history"]
    assert "The story is told: 13 steps." in told.stdout

    # The same facts through the protocol, not the CLI's words.
    accounts = {a["accountId"]: a for a in stack.call("Accounts", "ListAccounts", {})["accounts"]}
    assert {k: (a["balance"]["amountMinor"], a["status"]) for k, a in accounts.items()} == {
        "acct-ada": ("12550", "OPEN"), "acct-grace": ("220000", "OPEN"), "acct-alan": ("0", "CLOSED")}
    assert len(stack.call("Orders", "ListOrders", {})["orders"]) == 8
    applications = stack.call("Applications", "ListApplications", {"jobId": "job-compiler"})["applications"]
    assert {(a["applicationId"], a["job"]["title"], a["job"]["status"]) for a in applications} == {
        ("app-grace", "Senior compiler engineer", "ARCHIVED"), ("app-alan", "Senior compiler engineer", "ARCHIVED")}


def test_the_query_service_stopped_while_commands_go_on_catches_up(stack):
    commands = stack.commands
    for account in ("a", "b"):
        commands.account("OpenAccount", open_request(account, 1000))
    stack.wait_caught_up()
    stack.connection.close()
    assert stack.running.terminate() == 0, "a graceful stop"
    expected = {"a": 1000, "b": 1000}
    for index in range(40):
        account = "ab"[index % 2]
        commands.account("DepositFunds", {"accountId": account, "amount": eur(index + 1)})
        expected[account] += index + 1
    last = place(commands, "o-while-down", "ada@example.com")
    stack.start()
    # Read your own write across the restart: the query waits for the catch-up.
    order = stack.call("Orders", "GetOrder", {"orderId": "o-while-down", "minPosition": last["position"]})
    assert order["customer"]["email"] == "ada@example.com"
    status = stack.wait_caught_up()
    assert all(p["lag"] == "0" for p in status["partitions"])
    balances = {a["accountId"]: int(a["balance"]["amountMinor"]) for a in stack.call("Accounts", "ListAccounts", {})["accounts"]}
    assert balances == expected


def test_the_broker_restarted_mid_workload_loses_and_duplicates_nothing(stack):
    seed = int(os.environ.get("E2E_SEED", random.randrange(1 << 30)))
    print(f"E2E_SEED={seed}")
    rng = random.Random(seed)
    workload = DepositWorkload(stack.commands, [f"w{index}" for index in range(4)], rng)  # commands never wait for the broker
    time.sleep(0.3 + rng.random() * 0.5)
    broker = stack.broker
    broker.connection.close()
    assert broker.running.terminate() == 0
    time.sleep(rng.random() * 0.5)
    broker.start()  # on the same address: the services reconnect
    time.sleep(0.3 + rng.random() * 0.5)
    assert_applied_once_and_equal_to_a_rebuild(stack, workload.stop(), seed)


def test_a_broker_that_lost_the_records_the_projection_needs_shows_in_status(stack):
    """A new, empty broker at the old address (its data lost): the QueryService's stored offsets
    are beyond what the broker has. It must say so in GetStatus, not only retry in its log."""
    import shutil
    import tempfile
    for index in range(3):
        stack.commands.account("OpenAccount", open_request(f"acct-{index}"))
    stack.wait_caught_up()
    broker = stack.broker
    broker.connection.close()
    assert broker.running.terminate() == 0
    shutil.rmtree(broker.data, ignore_errors=True)
    broker.data = tempfile.mkdtemp(prefix="broker-test-")
    broker.start()
    deadline = time.monotonic() + 30
    while "OUT_OF_RANGE" not in (status := stack.call("ReadModels", "GetStatus", {})).get("lastError", "") \
            and "no longer has the records" not in status.get("lastError", ""):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert "BankAccount/" in status["lastError"] and "no longer has the records" in status["lastError"], status
    # The read models already applied stay queryable.
    assert len(stack.call("Accounts", "ListAccounts", {})["accounts"]) == 3
