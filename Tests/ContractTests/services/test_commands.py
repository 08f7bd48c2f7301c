"""The command-service binary with a real broker, both as processes on ephemeral ports: every
cqrs.commands.v1 method with replies validated against Protocols/, the status codes of refused
commands, idempotency, the outbox relay to the broker, and kill -9 mid-workload."""
from __future__ import annotations

import os
import random
import subprocess
import tempfile
import threading
import time

import pytest

import jframe
from conftest import BIN_DIR
from processes import CALLED, BrokerProcess, CommandService, eur, open_request

PACKAGE = CommandService.PACKAGE
CODE = jframe.CODE


def test_the_bank_account_story_with_every_refusal(system):
    opened = system.account("OpenAccount", open_request("acct-1", 10000, commandId="open-1"))
    assert opened == {"aggregateId": "acct-1", "streamId": "BankAccount-acct-1", "version": "1", "position": "1", "duplicate": False}
    assert system.account("OpenAccount", open_request("acct-1", 10000, commandId="open-1"))["duplicate"] is True
    system.account("OpenAccount", open_request("acct-1"), expect="ALREADY_EXISTS")

    deposit = system.account("DepositFunds", {"accountId": "acct-1", "amount": eur(2500), "commandId": "dep-1"})
    assert (deposit["version"], deposit["duplicate"]) == ("2", False)
    again = system.account("DepositFunds", {"accountId": "acct-1", "amount": eur(2500), "commandId": "dep-1"})
    assert again == {**deposit, "duplicate": True}, "the same command id returns the first result"

    refused = system.account("WithdrawFunds", {"accountId": "acct-1", "amount": eur(12501)}, expect="FAILED_PRECONDITION")
    assert "insufficient funds" in refused["message"]
    system.account("WithdrawFunds", {"accountId": "acct-1", "amount": eur(12500), "expectedVersion": "2"})
    conflict = system.account("DepositFunds", {"accountId": "acct-1", "amount": eur(1), "expectedVersion": "2"}, expect="ABORTED")
    assert "version 3" in conflict["message"] and "expected 2" in conflict["message"]
    system.account("DepositFunds", {"accountId": "nobody", "amount": eur(1)}, expect="NOT_FOUND")
    system.account("DepositFunds", {"accountId": "acct-1", "amount": {"amountMinor": "1", "currency": "USD"}}, expect="FAILED_PRECONDITION")

    invalid = system.account("DepositFunds", {"accountId": "acct-1", "amount": {"amountMinor": "0", "currency": "eur"}},
                             expect="INVALID_ARGUMENT")
    fields = {v["field"] for d in invalid["details"] for v in d["value"]["violations"]}
    assert fields == {"amount.currency"}, "the schema's pattern is checked before any handler runs"
    invalid = system.account("DepositFunds", {"accountId": "acct-1", "amount": {"amountMinor": "0", "currency": "EUR"}},
                             expect="INVALID_ARGUMENT")
    fields = {v["field"] for d in invalid["details"] for v in d["value"]["violations"]}
    assert fields == {"amount.amountMinor"}, "then the rules no schema states: an amount above zero"
    system.account("OpenAccount", {"holder": "", "accountType": "SAVINGS", "openingBalance": eur(-1)}, expect="INVALID_ARGUMENT")
    malformed = system.connection.unary(f"{PACKAGE}.BankAccounts/DepositFunds", {"accountId": "acct-1", "amount": "ten"})
    assert malformed.code == CODE["INVALID_ARGUMENT"]

    closed = system.account("CloseAccount", {"accountId": "acct-1"})
    assert closed["version"] == "4", "the withdrawal of 12500 emptied it: an empty account closes"
    for method, request in [("DepositFunds", {"accountId": "acct-1", "amount": eur(1)}),
                            ("WithdrawFunds", {"accountId": "acct-1", "amount": eur(1)}),
                            ("CloseAccount", {"accountId": "acct-1"})]:
        assert system.account(method, request, expect="FAILED_PRECONDITION")["message"] == "the account is closed"

    stream = system.call("EventStore", "ReadStream", {"streamId": "BankAccount-acct-1"})
    assert [e["type"] for e in stream["events"]] == ["AccountOpened", "FundsDeposited", "FundsWithdrawn", "AccountClosed"]
    assert stream["endOfStream"] is True and stream["nextVersion"] == "5"
    assert stream["events"][0]["causationId"] == "open-1"
    assert stream["events"][1]["data"] == {"accountId": "acct-1", "amount": {"amountMinor": 2500, "currency": "EUR"}}


def test_orders_reach_the_OnNewOrder_topic_keyed_by_order_id(system):
    customer = {"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"}
    for index in range(3):
        placed = system.call("Orders", "PlaceOrder", {"orderId": f"order-{index}", "customer": customer,
                                                       "description": "punched cards", "quantity": index + 1})
        assert placed["streamId"] == f"Order-order-{index}"
    system.call("Orders", "PlaceOrder", {"orderId": "order-0", "customer": customer, "description": "d", "quantity": 1},
                expect="ALREADY_EXISTS")
    bad = system.call("Orders", "PlaceOrder", {"customer": {**customer, "email": "nope"}, "description": "d", "quantity": 0},
                      expect="INVALID_ARGUMENT")
    assert {v["field"] for v in bad["details"][0]["value"]["violations"]} == {"quantity"}, "the schema's minimum first"
    bad = system.call("Orders", "PlaceOrder", {"customer": {**customer, "email": "nope"}, "description": "d", "quantity": 1},
                      expect="INVALID_ARGUMENT")
    assert {v["field"] for v in bad["details"][0]["value"]["violations"]} == {"customer.email"}, "then the domain's rules"
    system.wait_published()
    topic = system.broker.call("DescribeTopic", {"name": "OnNewOrder"})
    records = [r for p in topic["partitions"] for r in system.broker.fetch_all("OnNewOrder", p["partition"])]
    assert sorted(r["key"] for r in records) == ["order-0", "order-1", "order-2"]
    first = next(r for r in records if r["key"] == "order-0")
    # The customer flat, as simplecqrs's OnNewOrder carries it (OrderPlaced schema version 2).
    assert first["value"] == {"orderId": "order-0", **customer, "description": "punched cards", "quantity": 1}
    assert first["headers"]["ce_type"] == "OrderPlaced" and first["headers"]["ce_subject"] == "Order-order-0"
    assert first["headers"]["ce_schemaversion"] == "2"


def test_read_all_pages_and_subscribe_all_catches_up_then_follows(system, protocols):
    for index in range(5):
        system.account("OpenAccount", open_request(f"a{index}"))
    page = system.call("EventStore", "ReadAll", {"fromPosition": "2", "maxCount": 3})
    assert [e["position"] for e in page["events"]] == ["2", "3", "4"]
    assert (page["nextPosition"], page["headPosition"]) == ("5", "5")
    system.call("EventStore", "ReadAll", {"fromPosition": "0"}, expect="INVALID_ARGUMENT")
    system.call("EventStore", "ReadAll", {"maxCount": 0}, expect="INVALID_ARGUMENT")

    CALLED[PACKAGE].add("SubscribeAll")
    connection = system.running.connect()
    stream = connection.open_call(f"{PACKAGE}.EventStore/SubscribeAll")
    connection.send_message(stream, {"fromPosition": "4"}, end=True)
    seen = []
    while len(seen) < 2:
        frame = connection.next_frame_for(stream)
        assert frame.type == jframe.MESSAGE
        protocols.validate(f"{PACKAGE}.ReadAllResponse", frame.json())
        seen += [int(e["position"]) for e in frame.json()["events"]]
    system.account("DepositFunds", {"accountId": "a0", "amount": eur(1)})
    while len(seen) < 3:
        seen += [int(e["position"]) for e in connection.next_frame_for(stream).json()["events"]]
    assert seen == [4, 5, 6]
    connection.cancel(stream)
    connection.close()


def test_a_command_id_names_one_command(system):
    """A command id reused for another command used to return the first command's result with
    duplicate: true, and the second command was dropped without an error; an empty id made every
    client that sent one share one idempotency key."""
    opened = system.account("OpenAccount", open_request("acct-a", 100, commandId="shared-id"))
    system.account("OpenAccount", open_request("acct-b", 100))
    # The same id on another method, target or payload: refused, never someone else's result.
    for method, request in [("DepositFunds", {"accountId": "acct-b", "amount": eur(5), "commandId": "shared-id"}),
                            ("OpenAccount", open_request("acct-c", 100, commandId="shared-id")),
                            ("OpenAccount", open_request("acct-a", 999, commandId="shared-id"))]:
        refused = system.account(method, request, expect="ALREADY_EXISTS")
        assert "command id shared-id was used before for a different command" in refused["message"], refused
    assert [e["type"] for e in system.call("EventStore", "ReadStream", {"streamId": "BankAccount-acct-b"})["events"]] == ["AccountOpened"]
    assert system.call("EventStore", "ReadStream", {"streamId": "BankAccount-acct-c"})["events"] == []
    # The same command again is still a retry.
    assert system.account("OpenAccount", open_request("acct-a", 100, commandId="shared-id")) == {**opened, "duplicate": True}
    # A deposit retried after a withdrawal emptied nothing still gets its first result; another
    # amount under its id does not.
    first = system.account("DepositFunds", {"accountId": "acct-a", "amount": eur(7), "commandId": "dep-a"})
    assert system.account("DepositFunds", {"accountId": "acct-a", "amount": eur(7), "commandId": "dep-a"}) == {**first, "duplicate": True}
    system.account("DepositFunds", {"accountId": "acct-a", "amount": eur(8), "commandId": "dep-a"}, expect="ALREADY_EXISTS")
    # An id is 1 to 128 characters.
    for bad in ("", "x" * 129):
        invalid = system.account("DepositFunds", {"accountId": "acct-a", "amount": eur(1), "commandId": bad}, expect="INVALID_ARGUMENT")
        assert {v["field"] for d in invalid["details"] for v in d["value"]["violations"]} == {"commandId"}
    system.account("DepositFunds", {"accountId": "acct-a", "amount": eur(1), "commandId": "y" * 128})


def test_verify_streams_progress_then_a_clean_result(system, protocols):
    for index in range(5):
        system.account("OpenAccount", open_request(f"v{index}"))
    CALLED[PACKAGE].add("Verify")
    result = system.running.connect().server_streaming(f"{PACKAGE}.EventStore/Verify", {"pageSize": 2}, timeout_ms=30000)
    assert result.code == 0, result.trailers
    for message in result.messages:
        protocols.validate(f"{PACKAGE}.VerifyProgress", message)
    assert [m["eventsChecked"] for m in result.messages] == ["2", "4", "5", "5"]
    assert [m["done"] for m in result.messages] == [False, False, False, True]
    assert result.messages[-1]["problems"] == [] and result.messages[-1]["streams"] == 5
    bad = system.running.connect().server_streaming(f"{PACKAGE}.EventStore/Verify", {"pageSize": 0}, timeout_ms=5000)
    assert bad.code == jframe.CODE["INVALID_ARGUMENT"], bad.trailers


@pytest.fixture(params=["event-loop", "background", "adaptive"])
def system_committing_on(request, start_server, protocols):
    """A system whose command-service runs its store's transactions where the parameter says."""
    broker = BrokerProcess(start_server, protocols)
    service = CommandService(start_server, protocols, broker, "--commit-on", request.param)
    yield service
    service.cleanup()
    broker.cleanup()


def test_kill_9_mid_workload_loses_no_committed_event_on_its_way_to_the_broker(system_committing_on):
    system = system_committing_on
    seed = int(__import__("os").environ.get("COMMANDS_KILL_SEED", random.randrange(1 << 30)))
    print(f"COMMANDS_KILL_SEED={seed}")
    rng = random.Random(seed)
    accounts = [f"k{index}" for index in range(8)]
    for account in accounts:
        system.account("OpenAccount", open_request(account, 0))
    acknowledged: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(account: str):
        connection = system.running.connect()
        try:
            while not stop.is_set():
                reply = connection.unary(f"{PACKAGE}.BankAccounts/DepositFunds", {"accountId": account, "amount": eur(1)})
                if reply.code != 0:
                    return
                with lock:
                    acknowledged.append(int(reply.messages[0]["position"]))
        except Exception:
            return  # the connection died with the process
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(account,)) for account in accounts]
    for thread in threads:
        thread.start()
    time.sleep(0.3 + rng.random() * 0.7)
    system.kill()
    stop.set()
    for thread in threads:
        thread.join(10)
    assert len(acknowledged) > 20, f"the workload barely ran (seed {seed})"

    system.start()
    head = int(system.wait_published()["headPosition"])
    assert max(acknowledged) <= head, "every acknowledged command's event is stored"
    topic = system.broker.call("DescribeTopic", {"name": "BankAccount"})
    records = [r for p in topic["partitions"] for r in system.broker.fetch_all("BankAccount", p["partition"])]
    published = {int(r["headers"]["ce_position"]) for r in records}
    assert set(range(1, head + 1)) <= published, f"missing {sorted(set(range(1, head + 1)) - published)[:10]} (seed {seed})"
    for account in accounts:
        versions = [int(r["headers"]["ce_streamversion"]) for r in records if r["key"] == account]
        first_seen = list(dict.fromkeys(versions))
        assert first_seen == sorted(first_seen), f"per-key order for {account} (seed {seed})"


def test_a_bad_commit_place_is_refused_with_the_choices():
    refused = subprocess.run([str(BIN_DIR / "command-service"), "--data-dir", tempfile.mkdtemp(), "--commit-on", "sideways"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "event-loop" in refused.stderr and "background" in refused.stderr
    env = {**os.environ, "COMMANDS_COMMIT_ON": "sideways"}
    refused = subprocess.run([str(BIN_DIR / "command-service"), "--data-dir", tempfile.mkdtemp(), "--no-relay"],
                             capture_output=True, text=True, timeout=30, env=env)
    assert refused.returncode != 0 and "COMMANDS_COMMIT_ON must be one of event-loop, background, adaptive" in refused.stderr


def test_the_job_board_commands_check_versions_archives_and_the_job_of_an_application(system):
    created = system.call("Jobs", "CreateJob", {"jobId": "job-1", "title": "Compiler engineer", "description": "Write the first compiler."})
    assert (created["streamId"], created["version"]) == ("Job-job-1", "1")
    system.call("Jobs", "CreateJob", {"jobId": "job-1", "title": "t", "description": "d"}, expect="ALREADY_EXISTS")
    bad = system.call("Jobs", "CreateJob", {"title": " ", "description": "d"}, expect="INVALID_ARGUMENT")
    assert {v["field"] for v in bad["details"][0]["value"]["violations"]} == {"title"}
    system.call("Jobs", "CreateJob", {"title": "t" * 201, "description": "d"}, expect="INVALID_ARGUMENT")
    # The version the client read is checked: a stale one is ABORTED, naming both.
    stale = system.call("Jobs", "UpdateJob", {"jobId": "job-1", "title": "Senior", "description": "d", "version": "7"}, expect="ABORTED")
    assert "7" in stale["message"] and "1" in stale["message"]
    updated = system.call("Jobs", "UpdateJob", {"jobId": "job-1", "title": "Senior compiler engineer",
                                                 "description": "Write the first compiler, and the second.", "version": "1"})
    assert updated["version"] == "2"
    system.call("Jobs", "UpdateJob", {"jobId": "nope", "title": "t", "description": "d", "version": "1"}, expect="NOT_FOUND")
    # Applications: refused for a job that does not exist; the job's copy rides in the event.
    missing = system.call("Applications", "CreateApplication", {"jobId": "job-9", "firstName": "Grace", "lastName": "Hopper",
                                                                 "email": "grace@example.com", "currentPosition": "Programmer"},
                          expect="FAILED_PRECONDITION")
    assert "job job-9 does not exist" in missing["message"]
    bad = system.call("Applications", "CreateApplication", {"jobId": "job-1", "firstName": "G", "lastName": "H", "email": "nope",
                                                             "currentPosition": "P"}, expect="INVALID_ARGUMENT")
    assert {v["field"] for v in bad["details"][0]["value"]["violations"]} == {"email"}
    applied = system.call("Applications", "CreateApplication", {"applicationId": "app-1", "jobId": "job-1", "firstName": "Grace",
                                                                 "lastName": "Hopper", "email": "grace@example.com",
                                                                 "currentPosition": "Programmer"})
    assert applied["streamId"] == "Application-app-1"
    archived = system.call("Jobs", "ArchiveJob", {"jobId": "job-1", "version": "2"})
    assert archived["version"] == "3"
    refused = system.call("Jobs", "ArchiveJob", {"jobId": "job-1", "version": "3"}, expect="FAILED_PRECONDITION")
    assert "already archived" in refused["message"]
    system.call("Jobs", "UpdateJob", {"jobId": "job-1", "title": "t", "description": "d", "version": "3"}, expect="FAILED_PRECONDITION")
    late = system.call("Applications", "CreateApplication", {"jobId": "job-1", "firstName": "Ada", "lastName": "Lovelace",
                                                              "email": "ada@example.com", "currentPosition": "Analyst"},
                       expect="FAILED_PRECONDITION")
    assert "job job-1 is archived" in late["message"]

    system.wait_published()
    jobs = [r for p in system.broker.call("DescribeTopic", {"name": "job"})["partitions"] for r in system.broker.fetch_all("job", p["partition"])]
    assert [r["headers"]["ce_type"] for r in jobs] == ["JobCreated", "JobUpdated", "JobArchived"] and {r["key"] for r in jobs} == {"job-1"}
    applications = [r for p in system.broker.call("DescribeTopic", {"name": "application"})["partitions"]
                    for r in system.broker.fetch_all("application", p["partition"])]
    assert [r["value"] for r in applications] == [{
        "applicationId": "app-1", "jobId": "job-1", "firstName": "Grace", "lastName": "Hopper", "email": "grace@example.com",
        "currentPosition": "Programmer",
        "job": {"title": "Senior compiler engineer", "description": "Write the first compiler, and the second.", "status": "OPEN", "version": 2}}]


def test_every_commands_method_was_called(protocols):
    defined = {m["name"] for s in protocols.packages[PACKAGE]["services"] for m in s["methods"]}
    assert defined - CALLED[PACKAGE] == set()
