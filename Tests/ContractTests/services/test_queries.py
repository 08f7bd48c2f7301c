"""The query-service binary with a real broker and command-service, all three as processes on
ephemeral ports: every cqrs.queries.v1 method validated against Protocols/, read-your-writes,
watch, status and lag, parked events, rebuild equal to the live models, kill -9 mid-workload,
and the cqrs CLI's query commands."""
from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time

import jframe
from conftest import BIN_DIR
from processes import CALLED, DepositWorkload, QueryService, assert_applied_once_and_equal_to_a_rebuild, eur, open_request, place

PACKAGE = QueryService.PACKAGE
CODE = jframe.CODE


def test_accounts_orders_and_customers_read_their_own_writes(stack):
    commands = stack.commands
    commands.account("OpenAccount", open_request("acct-1", 10000))
    commands.account("OpenAccount", {**open_request("acct-2", 50000), "holder": "Grace Hopper"})
    commands.account("OpenAccount", {**open_request("acct-3", 500), "holder": "ada lovelace"})
    commands.account("DepositFunds", {"accountId": "acct-1", "amount": eur(2500)})
    last = commands.account("WithdrawFunds", {"accountId": "acct-1", "amount": eur(500)})
    position = last["position"]

    # Read your writes: the query waits for the command's position instead of answering stale.
    account = stack.call("Accounts", "GetAccount", {"accountId": "acct-1", "minPosition": position})
    assert (account["balance"], account["version"], account["status"]) == (eur(12000), "3", "OPEN")
    assert account["position"] == position

    history = stack.call("Accounts", "GetAccountHistory", {"accountId": "acct-1"})["transactions"]
    assert [(t["kind"], t["amount"]["amountMinor"], t["balanceAfter"]["amountMinor"]) for t in history] == [
        ("OPENING_BALANCE", "10000", "10000"), ("DEPOSIT", "2500", "12500"), ("WITHDRAWAL", "500", "12000")]
    paged = stack.call("Accounts", "GetAccountHistory", {"accountId": "acct-1", "pageSize": 2})
    rest = stack.call("Accounts", "GetAccountHistory", {"accountId": "acct-1", "pageToken": paged["nextPageToken"]})
    assert paged["transactions"] + rest["transactions"] == history and "nextPageToken" not in rest

    first = stack.call("Accounts", "ListAccounts", {"pageSize": 2})
    second = stack.call("Accounts", "ListAccounts", {"pageSize": 2, "pageToken": first["nextPageToken"]})
    assert [a["accountId"] for a in first["accounts"] + second["accounts"]] == ["acct-1", "acct-2", "acct-3"]
    by_holder = stack.call("Accounts", "FindAccounts", {"holder": "ADA LOVELACE"})
    assert [a["accountId"] for a in by_holder["accounts"]] == ["acct-1", "acct-3"]
    rich = stack.call("Accounts", "FindAccounts", {"balanceGreaterThan": eur(10000)})
    assert [a["accountId"] for a in rich["accounts"]] == ["acct-1", "acct-2"]
    poor = stack.call("Accounts", "FindAccounts", {"balanceLessThan": eur(12000)})
    assert [a["accountId"] for a in poor["accounts"]] == ["acct-3"]
    assert stack.call("Accounts", "FindAccounts", {"balanceGreaterThan": {"amountMinor": "0", "currency": "USD"}})["accounts"] == []

    refused = commands.account("CloseAccount", {"accountId": "acct-3"}, expect="FAILED_PRECONDITION")
    assert "withdraw it before closing" in refused["message"]
    commands.account("WithdrawFunds", {"accountId": "acct-3", "amount": eur(500)})
    closed = commands.account("CloseAccount", {"accountId": "acct-3"})
    found = stack.call("Accounts", "FindAccounts", {"status": "CLOSED", "minPosition": closed["position"]})
    assert [a["accountId"] for a in found["accounts"]] == ["acct-3"], "closed accounts stay queryable"

    place(commands, "o-1", "ada.lovelace@example.com", 2)
    place(commands, "o-2", "grace.hopper@example.com")
    placed = place(commands, "o-3", "Ada.Lovelace@example.com", 3)
    order = stack.call("Orders", "GetOrder", {"orderId": "o-3", "minPosition": placed["position"]})
    assert order["customer"]["email"] == "Ada.Lovelace@example.com" and order["quantity"] == 3
    adas = stack.call("Orders", "ListOrders", {"customerEmail": "ada.lovelace@example.com"})["orders"]
    assert [o["orderId"] for o in adas] == ["o-1", "o-3"]
    assert [o["orderId"] for o in stack.call("Orders", "ListOrders", {})["orders"]] == ["o-1", "o-2", "o-3"]
    customers = stack.call("Customers", "ListCustomers", {})["customers"]
    assert [(c["email"].lower(), c["orderCount"]) for c in customers] == [("ada.lovelace@example.com", 2), ("grace.hopper@example.com", 1)]
    detail = stack.call("Customers", "GetCustomer", {"email": "ADA.LOVELACE@example.com"})
    assert [o["orderId"] for o in detail["orders"]] == ["o-1", "o-3"]

    for service, method, request in [("Accounts", "GetAccount", {"accountId": "nobody"}),
                                     ("Accounts", "GetAccountHistory", {"accountId": "nobody"}),
                                     ("Orders", "GetOrder", {"orderId": "nobody"}),
                                     ("Customers", "GetCustomer", {"email": "nobody@example.com"})]:
        stack.call(service, method, request, expect="NOT_FOUND")
    stack.call("Accounts", "ListAccounts", {"pageSize": 0}, expect="INVALID_ARGUMENT")
    stack.call("Accounts", "ListAccounts", {"pageToken": "%%%"}, expect="INVALID_ARGUMENT")
    stack.call("Orders", "ListOrders", {"pageToken": "bm90LWEtbnVtYmVy"}, expect="INVALID_ARGUMENT")
    mixed = stack.call("Accounts", "FindAccounts", {"balanceGreaterThan": eur(1), "balanceLessThan": {"amountMinor": "9", "currency": "USD"}},
                       expect="INVALID_ARGUMENT")
    assert "different currencies" in mixed["message"]


def test_a_query_waits_for_its_position_then_sees_the_write_or_gets_deadline_exceeded(stack):
    commands = stack.commands
    opened = commands.account("OpenAccount", open_request("acct-1", 100))
    next_position = int(opened["position"]) + 1

    def deposit_later():
        time.sleep(0.4)
        commands.call("BankAccounts", "DepositFunds", {"accountId": "acct-1", "amount": eur(5)}, connection=commands.running.connect())

    thread = threading.Thread(target=deposit_later)
    thread.start()
    started = time.monotonic()
    reply = stack.connection.unary(f"{PACKAGE}.Accounts/GetAccount", {"accountId": "acct-1", "minPosition": str(next_position)}, timeout_ms=10000)
    waited = time.monotonic() - started
    thread.join()
    assert reply.code == 0, reply.trailers
    assert reply.messages[0]["balance"] == eur(105), "the query saw the write it waited for"
    assert waited >= 0.3, "it waited for the write rather than answering stale"

    late = stack.connection.unary(f"{PACKAGE}.Accounts/GetAccount", {"accountId": "acct-1", "minPosition": "1000000"}, timeout_ms=300)
    assert late.code == CODE["DEADLINE_EXCEEDED"]
    # The service answers a little ahead of the deadline, naming how far the read models are; on
    # a machine too busy for that margin the transport's own DEADLINE_EXCEEDED may come first.
    assert "not yet 1000000" in late.trailers.get("message", "") or "deadline of 300 ms passed" in late.trailers.get("message", "")
    started = time.monotonic()
    late = stack.connection.unary(f"{PACKAGE}.Accounts/GetAccount", {"accountId": "acct-1", "minPosition": "1000000"}, timeout_ms=2000)
    assert late.code == CODE["DEADLINE_EXCEEDED"]
    assert "not yet 1000000" in late.trailers.get("message", ""), late.trailers
    assert 1.7 <= time.monotonic() - started < 2.5, "it waited for most of its deadline, no longer"


def test_watch_account_pushes_each_applied_change(stack):
    commands = stack.commands
    commands.account("OpenAccount", open_request("acct-1", 100))
    stack.wait_caught_up()
    seen: list[dict] = []

    def watch():
        seen.extend(stack.stream("Accounts", "WatchAccount", {"accountId": "acct-1"}, count=4, timeout=20))

    thread = threading.Thread(target=watch)
    thread.start()
    time.sleep(0.3)
    commands.account("DepositFunds", {"accountId": "acct-1", "amount": eur(5)})
    time.sleep(0.2)
    commands.account("WithdrawFunds", {"accountId": "acct-1", "amount": eur(105)})
    time.sleep(0.2)
    commands.account("CloseAccount", {"accountId": "acct-1"})
    thread.join(30)
    assert [(a["version"], a["balance"]["amountMinor"], a["status"]) for a in seen] == [
        ("1", "100", "OPEN"), ("2", "105", "OPEN"), ("3", "0", "OPEN"), ("4", "0", "CLOSED")]


def test_status_shows_applied_offsets_high_watermarks_and_lag(stack):
    for index in range(6):
        stack.commands.account("OpenAccount", open_request(f"acct-{index}"))
    place(stack.commands, "o-1", "ada@example.com")
    status = stack.wait_caught_up()
    assert status["appliedPosition"] == "7" and status["brokerConnected"] is True
    assert (status["accounts"], status["orders"], status["customers"], status["parkedEvents"]) == (6, 1, 1, 0)
    assert status["rows"] == {"accounts": 6, "account_transactions": 6, "orders": 1, "customers": 1, "jobs": 0, "applications": 0,
                              "job_copies": 0}, "every projection's tables, counted"
    topics = {p["topic"] for p in status["partitions"]}
    assert topics == {"BankAccount", "OnNewOrder", "job", "application"}
    assert sum(int(p["appliedOffset"]) for p in status["partitions"] if p["topic"] == "BankAccount") == 6
    assert all(p["lag"] == "0" and p["appliedOffset"] == p["highWatermark"] for p in status["partitions"])


def test_a_poison_event_is_parked_its_stream_waits_and_the_others_continue(stack):
    commands, broker = stack.commands, stack.broker
    commands.account("OpenAccount", open_request("acct-1", 100))
    stack.wait_caught_up()

    def headers(version: int, position: int) -> dict:
        return {"ce_id": f"ghost-{version}", "ce_type": "FundsDeposited", "ce_subject": "BankAccount-ghost",
                "ce_streamversion": str(version), "ce_position": str(position), "ce_schemaversion": "1"}
    broker.call("Produce", {"topic": "BankAccount", "records": [
        {"key": "ghost", "value": {"accountId": "ghost"}, "headers": headers(1, 900001)},   # no amount: cannot decode
        {"key": "ghost", "value": {"accountId": "ghost", "amount": {"amountMinor": 5, "currency": "EUR"}}, "headers": headers(2, 900002)},
        {"key": "ghost", "value": {"n": 1}, "headers": {"ce_type": "FundsDeposited"}},      # no stream, version or position
    ]})
    # Other events keep flowing.
    deposit = commands.account("DepositFunds", {"accountId": "acct-1", "amount": eur(5)})
    assert stack.call("Accounts", "GetAccount", {"accountId": "acct-1", "minPosition": deposit["position"]})["balance"] == eur(105)

    deadline = time.monotonic() + 10
    while len(parked := stack.call("ReadModels", "ListParked", {})["events"]) < 3:
        assert time.monotonic() < deadline, parked
        time.sleep(0.05)
    by_version = {(e["streamId"], e["streamVersion"]): e for e in parked}
    assert by_version[("BankAccount-ghost", "1")]["state"] == "FAILED"
    assert "cannot decode" in by_version[("BankAccount-ghost", "1")]["error"]
    assert by_version[("BankAccount-ghost", "2")]["state"] == "WAITING"
    unreadable = by_version[("", "0")]
    assert unreadable["state"] == "FAILED" and "ce_id" in unreadable["error"] and unreadable["value"] == {"n": 1}
    assert stack.call("ReadModels", "GetStatus", {})["parkedEvents"] == 3

    retried = stack.call("ReadModels", "RetryParked", {"all": True})
    assert (retried["applied"], retried["stillParked"]) == (0, 3), "a poison event fails again on retry"
    attempts = {e["streamId"]: e["attempts"] for e in stack.call("ReadModels", "ListParked", {})["events"] if e["state"] == "FAILED"}
    assert attempts == {"BankAccount-ghost": 2, "": 1}, "an unreadable record has nothing to retry"
    skipped = stack.call("ReadModels", "SkipParked", {"ids": [by_version[("BankAccount-ghost", "1")]["id"]]})
    assert skipped["skipped"] == 1 and skipped["stillParked"] == 2, "version 2 now fails on its own (no such account)"
    left = stack.call("ReadModels", "ListParked", {"pageSize": 1})
    assert left["events"][0]["state"] == "FAILED" and "nextPageToken" in left
    assert stack.call("ReadModels", "SkipParked", {"all": True})["stillParked"] == 0
    stack.call("ReadModels", "RetryParked", {}, expect="INVALID_ARGUMENT")
    stack.call("ReadModels", "SkipParked", {"ids": ["1"], "all": True}, expect="INVALID_ARGUMENT")


def test_rebuild_streams_progress_and_equals_the_live_models_twice(stack):
    commands = stack.commands
    for index in range(12):
        commands.account("OpenAccount", {**open_request(f"acct-{index:02}", 1000 * index), "holder": f"Holder {index % 3}"})
    for round_ in range(4):
        for index in range(12):
            method = "DepositFunds" if round_ % 2 == 0 else "WithdrawFunds"
            commands.account(method, {"accountId": f"acct-{index:02}", "amount": eur(100 + index)})
    for index in range(5):
        place(commands, f"o-{index}", f"c{index % 2}@example.com", index + 1)
    stack.wait_caught_up()
    live = stack.dump()
    for _ in range(2):
        progress = stack.stream("ReadModels", "Rebuild", {"pageSize": 10})
        final = progress[-1]
        assert final["done"] is True and all(not p["done"] for p in progress[:-1])
        # Each message before the last says what the rebuild is doing, in this order; the last
        # (done) has no phase.
        phases = [p.get("phase") for p in progress[:-1]]
        order = ["LOADING", "INDEXING", "SWAPPING"]
        assert "phase" not in final and phases and all(phase in order for phase in phases), phases
        assert phases == sorted(phases, key=order.index) and {"INDEXING", "SWAPPING"} <= set(phases), phases
        assert final["eventsApplied"] == final["headPosition"] == str(12 + 48 + 5)
        assert (final["accounts"], final["orders"], final["customers"], final["parkedEvents"]) == (12, 5, 2, 0)
        assert stack.dump() == live, "a rebuild onto the live models changes nothing and never double-counts"
    # The projection goes on after a rebuild.
    deposit = commands.account("DepositFunds", {"accountId": "acct-01", "amount": eur(1)})
    after = stack.call("Accounts", "GetAccount", {"accountId": "acct-01", "minPosition": deposit["position"]})
    assert after["balance"]["amountMinor"] == str(int(live["accounts"][1]["balance"]["amountMinor"]) + 1)


def test_kill_9_of_the_query_service_mid_workload_ends_equal_to_a_rebuild(stack):
    seed = int(os.environ.get("QUERIES_KILL_SEED", random.randrange(1 << 30)))
    print(f"QUERIES_KILL_SEED={seed}")
    rng = random.Random(seed)
    workload = DepositWorkload(stack.commands, [f"k{index}" for index in range(6)], rng)
    for _ in range(3):
        time.sleep(0.2 + rng.random() * 0.5)
        stack.kill()
        time.sleep(rng.random() * 0.3)
        stack.start()
    time.sleep(0.3)
    assert_applied_once_and_equal_to_a_rebuild(stack, workload.stop(), seed)


def test_query_commands_through_the_cli(stack):
    commands = stack.commands
    environment = {**os.environ, "CQRS_COMMANDS": f"{commands.running.host}:{commands.running.port}", "CQRS_QUERIES": stack.address}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN_DIR / "cqrs"), *args], capture_output=True, text=True, timeout=60, env=environment)

    opened = json.loads(run("accounts", "open", "--id", "acct-1", "--holder", "Ada Lovelace", "--amount", "100.00", "--json").stdout)
    deposit = json.loads(run("accounts", "deposit", "acct-1", "--amount", "25.50", "--json").stdout)
    got = run("accounts", "get", "acct-1", "--min-position", deposit["position"])
    assert got.returncode == 0, got.stderr
    assert "125.50 EUR" in got.stdout and "Ada Lovelace" in got.stdout
    assert json.loads(run("accounts", "find", "--holder", "ada lovelace", "--balance-above", "100", "--json").stdout)["accounts"][0]["accountId"] == "acct-1"
    assert "DEPOSIT" in run("accounts", "history", "acct-1").stdout
    placed = json.loads(run("orders", "place", "--email", "ada@example.com", "--first-name", "Ada", "--last-name", "Lovelace",
                            "--description", "cards", "--quantity", "2", "--json").stdout)
    assert "ada@example.com" in run("orders", "list", "--customer", "ada@example.com", "--min-position", placed["position"]).stdout
    assert "ada@example.com" in run("customers", "list").stdout
    status = run("status")
    assert status.returncode == 0 and "LAG" in status.stdout and "applied position" in status.stdout
    rebuilt = run("rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt 3 events" in rebuilt.stdout and "1 accounts" in rebuilt.stdout
    assert json.loads(run("parked", "list", "--json").stdout) == {"events": []}
    assert run("parked", "retry").returncode != 0, "ids or --all"
    late = run("accounts", "get", "acct-1", "--min-position", "999999", "--deadline", "300")
    assert late.returncode == CODE["DEADLINE_EXCEEDED"] and late.stderr.startswith("error: DEADLINE_EXCEEDED")
    missing = run("accounts", "get", "nobody")
    assert missing.returncode == 5 and missing.stderr.strip() == "error: NOT_FOUND: no account nobody"
    assert opened["version"] == "1"


def test_the_job_board_reads_its_writes_and_applications_carry_their_jobs_state(stack):
    commands = stack.commands
    commands.call("Jobs", "CreateJob", {"jobId": "job-1", "title": "Compiler engineer", "description": "Write the first compiler."})
    commands.call("Jobs", "CreateJob", {"jobId": "job-2", "title": "Analyst", "description": "Run the engine."})
    grace = commands.call("Applications", "CreateApplication", {"applicationId": "app-1", "jobId": "job-1", "firstName": "Grace",
                                                                 "lastName": "Hopper", "email": "grace@example.com", "currentPosition": "Programmer"})
    commands.call("Applications", "CreateApplication", {"applicationId": "app-2", "jobId": "job-1", "firstName": "Ada",
                                                         "lastName": "Lovelace", "email": "ada@example.com", "currentPosition": "Analyst"})
    commands.call("Applications", "CreateApplication", {"applicationId": "app-3", "jobId": "job-2", "firstName": "Alan",
                                                         "lastName": "Turing", "email": "alan@example.com", "currentPosition": "Mathematician"})
    job = stack.call("Jobs", "GetJob", {"jobId": "job-1", "minPosition": grace["position"]})
    assert (job["title"], job["status"], job["version"]) == ("Compiler engineer", "OPEN", "1")
    app = stack.call("Applications", "GetApplication", {"applicationId": "app-1", "minPosition": grace["position"]})
    assert app["job"] == {"title": "Compiler engineer", "description": "Write the first compiler.", "status": "OPEN", "version": "1"}

    # The job changes: every application's own copy follows (event-carried state).
    updated = commands.call("Jobs", "UpdateJob", {"jobId": "job-1", "title": "Senior compiler engineer", "description": "And the second.",
                                                   "version": job["version"]})
    of_job = stack.call("Applications", "ListApplications", {"jobId": "job-1", "minPosition": updated["position"]})["applications"]
    assert [a["applicationId"] for a in of_job] == ["app-1", "app-2"]
    assert {a["job"]["title"] for a in of_job} == {"Senior compiler engineer"} and {a["job"]["version"] for a in of_job} == {"2"}
    archived = commands.call("Jobs", "ArchiveJob", {"jobId": "job-1", "version": updated["version"]})
    app = stack.call("Applications", "GetApplication", {"applicationId": "app-2", "minPosition": archived["position"]})
    assert (app["job"]["status"], app["job"]["title"], app["job"]["version"]) == ("ARCHIVED", "Senior compiler engineer", "3")
    other = stack.call("Applications", "GetApplication", {"applicationId": "app-3"})
    assert other["job"]["title"] == "Analyst", "another job's applications keep their copy"

    assert [j["jobId"] for j in stack.call("Jobs", "ListJobs", {"status": "OPEN"})["jobs"]] == ["job-2"]
    assert [j["jobId"] for j in stack.call("Jobs", "ListJobs", {"status": "ARCHIVED"})["jobs"]] == ["job-1"]
    first = stack.call("Jobs", "ListJobs", {"pageSize": 1})
    rest = stack.call("Jobs", "ListJobs", {"pageToken": first["nextPageToken"]})
    assert [j["jobId"] for j in first["jobs"] + rest["jobs"]] == ["job-1", "job-2"]
    paged = stack.call("Applications", "ListApplications", {"pageSize": 2})
    assert len(paged["applications"]) == 2 and "nextPageToken" in paged
    stack.call("Jobs", "GetJob", {"jobId": "nope"}, expect="NOT_FOUND")
    stack.call("Applications", "GetApplication", {"applicationId": "nope"}, expect="NOT_FOUND")
    stack.call("Jobs", "ListJobs", {"status": "SIDEWAYS"}, expect="INVALID_ARGUMENT")

    # A rebuild from the history equals the live models, copies included.
    live = (stack.call("Jobs", "ListJobs", {}), stack.call("Applications", "ListApplications", {}))
    assert stack.stream("ReadModels", "Rebuild", {})[-1]["done"] is True
    assert (stack.call("Jobs", "ListJobs", {}), stack.call("Applications", "ListApplications", {})) == live


def test_every_queries_method_was_called(protocols):
    defined = {m["name"] for s in protocols.packages[PACKAGE]["services"] for m in s["methods"]}
    assert defined - CALLED[PACKAGE] == set()


def test_a_position_that_never_comes_ends_at_the_servers_cap(start_server, tmp_path):
    """Without a deadline (or with a long one), a read-your-writes wait used to last as long as
    the client kept the call open; the server caps it (--max-position-wait-ms)."""
    queries = start_server("--data-dir", str(tmp_path), "--no-projection", "--commands", "127.0.0.1:1",
                           "--max-position-wait-ms", "300", binary="query-service")
    connection = queries.connect()
    try:
        for deadline in (None, 60_000):
            started = time.monotonic()
            result = connection.unary("cqrs.queries.v1.Accounts/ListAccounts", {"minPosition": "999999"}, timeout_ms=deadline,
                                      timeout=20.0)
            elapsed = time.monotonic() - started
            assert result.code == jframe.CODE["DEADLINE_EXCEEDED"], result.trailers
            assert "the server waits at most 300 ms" in result.trailers["message"]
            assert 0.25 < elapsed < 5, elapsed
    finally:
        connection.close()
