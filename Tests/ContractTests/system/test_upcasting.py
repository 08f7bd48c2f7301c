"""Events that change shape: the services started on a store written before OrderPlaced's schema
version 2 (fixtures/orders-v1-store.sql: three OrderPlaced events with the customer nested, an
account and a deposit, nothing published) fold its aggregates, publish, project and rebuild with
every reader seeing version 2 (the customer flat), while the stored events stay as written."""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import tempfile

from conftest import BIN_DIR, ROOT
from processes import BrokerProcess, CommandService, QueryService, eur, place

FIXTURE = ROOT / "Tests" / "ContractTests" / "fixtures" / "orders-v1-store.sql"

ORDER_1_V2 = {"orderId": "order-1", "email": "Ada.Lovelace@example.com", "firstName": "Ada", "lastName": "Lovelace",
              "description": "punched cards", "quantity": 2}


def stored_rows(path: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT position, schema_version, data, checksum FROM events ORDER BY position").fetchall()


def test_a_store_of_version_1_events_is_folded_published_projected_and_rebuilt_as_version_2(start_server, protocols):
    data = tempfile.mkdtemp(prefix="commands-v1-")
    store = f"{data}/events.sqlite"
    with sqlite3.connect(store) as db:
        db.executescript(FIXTURE.read_text())
    before = stored_rows(store)
    assert [row[1] for row in before[:3]] == [1, 1, 1] and "customer" in json.loads(before[0][2])
    broker = BrokerProcess(start_server, protocols)
    commands = CommandService(start_server, protocols, broker, data=data)
    queries = QueryService(start_server, protocols, broker, commands)
    try:
        # Readers of the store get the current shape, labelled with its version.
        event = commands.call("EventStore", "ReadStream", {"streamId": "Order-order-1"})["events"][0]
        assert (event["schemaVersion"], event["data"]) == (2, ORDER_1_V2)
        everything = commands.call("EventStore", "ReadAll", {})["events"]
        assert [e["schemaVersion"] for e in everything] == [2, 2, 2, 1, 1]
        assert all("customer" not in e["data"] for e in everything if e["type"] == "OrderPlaced")

        # The aggregates fold from version 1 events: the order exists, the account's balance and
        # version carry on from them.
        commands.call("Orders", "PlaceOrder", {"orderId": "order-1", "customer": {"email": "x@example.com", "firstName": "X", "lastName": "Y"},
                                                "description": "again", "quantity": 1}, expect="ALREADY_EXISTS")
        withdrawn = commands.call("BankAccounts", "WithdrawFunds", {"accountId": "acct-1", "amount": eur(12_500)})
        assert withdrawn["version"] == "3"
        commands.call("BankAccounts", "WithdrawFunds", {"accountId": "acct-1", "amount": eur(1)}, expect="FAILED_PRECONDITION")
        place(commands, "order-4", "grace.hopper@example.com", quantity=5)

        # The relay publishes every event in the current shape, ce_schemaversion saying which.
        commands.wait_published()
        topic = broker.call("DescribeTopic", {"name": "OnNewOrder"})
        records = {r["key"]: r for p in topic["partitions"] for r in broker.fetch_all("OnNewOrder", p["partition"])}
        assert sorted(records) == ["order-1", "order-2", "order-3", "order-4"]
        assert records["order-1"]["value"] == ORDER_1_V2
        assert {r["headers"]["ce_schemaversion"] for r in records.values()} == {"2"}
        assert records["order-4"]["value"]["email"] == "grace.hopper@example.com"

        # The read models project them, and equal a rebuild from the history.
        queries.wait_caught_up()
        order = queries.call("Orders", "GetOrder", {"orderId": "order-1"})
        assert order["customer"] == {"email": "Ada.Lovelace@example.com", "firstName": "Ada", "lastName": "Lovelace"}
        ada = queries.call("Customers", "GetCustomer", {"email": "ada.lovelace@example.com"})
        assert ada["customer"]["orderCount"] == 2 and ada["customer"]["lastName"] == "King"
        assert queries.call("Accounts", "GetAccount", {"accountId": "acct-1"})["balance"] == eur(0)
        live = queries.dump()
        assert len(live["orders"]) == 4
        progress = queries.stream("ReadModels", "Rebuild", {})
        assert progress[-1]["done"] is True
        assert queries.dump() == live, "a rebuild from the history equals the live models"
        assert queries.call("ReadModels", "GetStatus", {})["parkedEvents"] == 0

        # The stored facts are untouched, and their checksums still hold.
        assert stored_rows(store)[:5] == before
        verified = subprocess.run([str(BIN_DIR / "cqrs"), "verify", "--commands", f"{commands.running.host}:{commands.running.port}", "--json"],
                                  capture_output=True, text=True, timeout=60)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        for part in (queries, commands, broker):
            part.cleanup()
        shutil.rmtree(data, ignore_errors=True)
