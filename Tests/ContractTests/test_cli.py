"""The cqrs CLI against a real broker: human and --json output, stdin input, exit codes."""
from __future__ import annotations

import json
import subprocess


from conftest import BIN_DIR
from test_broker import broker  # noqa: F401 (the fixture, shared with the broker tests)


def cqrs(broker, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN_DIR / "cqrs"), *args, "--broker", f"{broker.running.host}:{broker.running.port}"],
                          input=stdin, capture_output=True, text=True, timeout=30)



def test_topics_produce_consume_and_groups_through_the_cli(broker):
    assert cqrs(broker, "topics", "create", "OnNewOrder", "--partitions", "2").returncode == 0
    produced = cqrs(broker, "produce", "OnNewOrder", "--key", "order-7", "--header", "type=OrderPlaced", '{"quantity":2}', "--json")
    assert produced.returncode == 0, produced.stderr
    position = json.loads(produced.stdout)["results"][0]
    assert cqrs(broker, "produce", "OnNewOrder", "--partition", "0", stdin='{"n":1}\n{"n":2}\n').returncode == 0
    human = cqrs(broker, "consume", "OnNewOrder", "--from-beginning")
    assert human.returncode == 0, human.stderr
    assert f"OnNewOrder/{position['partition']}@{position['offset']}" in human.stdout
    assert "key=order-7" in human.stdout and "type=OrderPlaced" in human.stdout and "hw=" in human.stdout
    records = [json.loads(line) for line in cqrs(broker, "consume", "OnNewOrder", "--from-beginning", "--json").stdout.splitlines()]
    assert sorted(json.dumps(r["value"]) for r in records) == ['{"n": 1}', '{"n": 2}', '{"quantity": 2}']
    assert len(cqrs(broker, "consume", "OnNewOrder", "--from-beginning", "--max", "1").stdout.splitlines()) == 1
    listed = cqrs(broker, "topics", "list")
    assert "OnNewOrder" in listed.stdout and "PARTITIONS" in listed.stdout
    assert "HIGH-WATERMARK" in cqrs(broker, "topics", "describe", "OnNewOrder").stdout
    broker.call("CommitOffsets", {"group": "g", "offsets": [{"topic": "OnNewOrder", "partition": 0, "offset": "1"}]})
    described = cqrs(broker, "groups", "describe", "g", "--json")
    assert json.loads(described.stdout)["partitions"][0]["lag"] == "1"
    assert "g" in cqrs(broker, "groups", "list").stdout


def test_errors_are_one_line_with_the_status_as_exit_code(broker):
    missing = cqrs(broker, "topics", "describe", "nope")
    assert missing.returncode == 5
    assert missing.stderr.strip() == "error: NOT_FOUND: topic nope does not exist"
    bad = cqrs(broker, "topics", "create", "bad/name")
    assert bad.returncode == 3 and "name:" in bad.stderr
    assert cqrs(broker, "produce", "t", "not json").returncode != 0
    assert "USAGE" in subprocess.run([str(BIN_DIR / "cqrs"), "--help"], capture_output=True, text=True).stdout


def test_account_and_order_commands_through_the_cli(start_server, protocols, broker):
    from test_commands import CommandService
    service = CommandService(start_server, protocols, broker)
    address = f"{service.running.host}:{service.running.port}"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN_DIR / "cqrs"), *args, "--commands", address], capture_output=True, text=True, timeout=30)

    opened = run("accounts", "open", "--id", "acct-1", "--holder", "Ada Lovelace", "--amount", "100.50", "--json")
    assert opened.returncode == 0, opened.stderr
    assert json.loads(opened.stdout)["version"] == "1"
    deposited = run("accounts", "deposit", "acct-1", "--amount-minor", "50")
    assert deposited.returncode == 0 and "BankAccount-acct-1 version 2" in deposited.stdout
    overdraft = run("accounts", "withdraw", "acct-1", "--amount", "200")
    assert overdraft.returncode == 9 and "insufficient funds: the balance is 10100" in overdraft.stderr
    invalid = run("accounts", "deposit", "acct-1", "--amount-minor=-1", "--currency", "eu")
    assert invalid.returncode == 3 and "amount.currency" in invalid.stderr
    assert run("accounts", "close", "acct-1").returncode == 0
    placed = run("orders", "place", "--id", "o1", "--email", "ada@example.com", "--first-name", "Ada", "--last-name", "L",
                 "--description", "cards", "--quantity", "2")
    assert placed.returncode == 0, placed.stderr
    history = run("events", "stream", "BankAccount-acct-1")
    assert [line.split()[3] for line in history.stdout.splitlines()] == ["AccountOpened", "FundsDeposited", "AccountClosed"]
    assert len(run("events", "all", "--json").stdout.splitlines()) == 4
    service.wait_published()
    assert "published 4" in run("events", "status").stdout
    service.cleanup()
