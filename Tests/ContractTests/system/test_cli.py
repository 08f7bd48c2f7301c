"""The cqrs CLI against a real broker: human and --json output, stdin input, exit codes."""
from __future__ import annotations

import json
import subprocess


from conftest import BIN_DIR


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
    # Past the int64 range of minor units, or not a plain decimal: a usage error, never a crash.
    for amount in ("92233720368547758.08", "92233720368547758.1", "99999999999999999999", "+5", "1e3", "1.234", "٣"):
        refused = run("accounts", "deposit", "acct-1", "--amount", amount)
        assert refused.returncode == 64 and "is not a decimal with at most 2 decimals" in refused.stderr, (amount, refused)
    largest = run("accounts", "deposit", "acct-none", "--amount", "92233720368547758.07")
    assert largest.returncode == 5 and "acct-none" in largest.stderr, largest  # parsed, sent, not found
    holding = run("accounts", "close", "acct-1")
    assert holding.returncode == 9 and "the balance is 10100 EUR minor units" in holding.stderr, holding
    assert run("accounts", "withdraw", "acct-1", "--amount-minor", "10100").returncode == 0
    assert run("accounts", "close", "acct-1").returncode == 0
    placed = run("orders", "place", "--id", "o1", "--email", "ada@example.com", "--first-name", "Ada", "--last-name", "L",
                 "--description", "cards", "--quantity", "2")
    assert placed.returncode == 0, placed.stderr
    history = run("events", "stream", "BankAccount-acct-1")
    assert [line.split()[3] for line in history.stdout.splitlines()] == ["AccountOpened", "FundsDeposited", "FundsWithdrawn", "AccountClosed"]
    assert len(run("events", "all", "--json").stdout.splitlines()) == 5
    service.wait_published()
    assert "published 5" in run("events", "status").stdout
    service.cleanup()


def test_cqrs_dev_runs_the_three_services_until_interrupted(tmp_path):
    import signal
    dev = subprocess.Popen([str(BIN_DIR / "cqrs"), "dev", "--data-dir", str(tmp_path), "--broker-port", "0", "--broker-kafka-port", "0", "--commands-port", "0",
                            "--queries-port", "0", "--broker-metrics-port", "0", "--commands-metrics-port", "0",
                            "--queries-metrics-port", "0", "--json", "--log-level", "warning"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(dev.stdout.readline())
        assert ready["event"] == "ready", dev.stderr.read()
        for service in ("broker", "commands", "queries"):
            health = subprocess.run([str(BIN_DIR / "cqrs"), "health", "--server", ready[service]], capture_output=True, text=True, timeout=30)
            assert (health.returncode, health.stdout.strip()) == (0, "SERVING")
        env = {**__import__("os").environ, "CQRS_COMMANDS": ready["commands"], "CQRS_QUERIES": ready["queries"], "CQRS_BROKER": ready["broker"]}

        def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
            return subprocess.run([str(BIN_DIR / "cqrs"), *args], capture_output=True, text=True, timeout=30, env=env, input=stdin)

        listed = run("describe")
        assert "cqrs.commands.v1.BankAccounts" in listed.stdout and "OpenAccount  unary" in listed.stdout
        assert "GetAccount" in run("describe", "cqrs.queries.v1.Accounts").stdout
        assert '"minPosition"' in run("describe", "cqrs.queries.v1.Accounts/GetAccount").stdout
        opened = run("call", "cqrs.commands.v1.BankAccounts/OpenAccount",
                     '{"accountId":"a1","holder":"Ada","accountType":"SAVINGS","openingBalance":{"amountMinor":"250","currency":"EUR"}}')
        assert opened.returncode == 0, opened.stderr
        position = json.loads(opened.stdout)["position"]
        got = run("call", "cqrs.queries.v1.Accounts/GetAccount", stdin=json.dumps({"accountId": "a1", "minPosition": position}))
        assert json.loads(got.stdout)["balance"] == {"amountMinor": "250", "currency": "EUR"}
        import urllib.request
        for field in ("brokerMetrics", "commandsMetrics", "queriesMetrics"):
            page = urllib.request.urlopen(f"http://{ready[field]}/metrics", timeout=10).read().decode()
            assert "# TYPE rpc_server_connections gauge" in page, (field, page[:500])
        commands_page = urllib.request.urlopen(f"http://{ready['commandsMetrics']}/metrics", timeout=10).read().decode()
        assert 'commands_total{command="OpenAccount",outcome="ok"} 1' in commands_page
        topics = run("call", "cqrs.broker.v1.Broker/ListTopics", "{}")
        assert "BankAccount" in topics.stdout, "routed to the broker by its package"
        listing = subprocess.run(["kcat", "-b", ready["brokerKafka"], "-L", "-J"], capture_output=True, text=True, timeout=30)
        assert "BankAccount" in [t["topic"] for t in json.loads(listing.stdout)["topics"]], "the broker's Kafka port lists the same topics"
        missing = run("call", "cqrs.queries.v1.Accounts/GetAccount", '{"accountId":"nobody"}')
        assert missing.returncode == 5 and missing.stderr.strip() == "error: NOT_FOUND: no account nobody"
        unknown = run("call", "cqrs.queries.v1.Accounts/Nope", "{}")
        assert unknown.returncode == 5 and "no method cqrs.queries.v1.Accounts/Nope" in unknown.stderr, "reflection does not know it"
        assert run("call", "cqrs.queries.v1.Accounts/GetAccount", "not json").returncode != 0
    finally:
        dev.send_signal(signal.SIGINT)
        assert dev.wait(timeout=60) == 0
    stopped = dev.stderr.read()
    assert all(f"{name} stopped" in stopped for name in ("broker", "command-service", "query-service")), stopped
    assert (tmp_path / "logs" / "query-service.log").exists() and (tmp_path / "queries" / "readmodels.sqlite").exists()


def test_cqrs_dev_on_a_kafka_bus_reads_its_own_writes_through_the_kafka_port(tmp_path):
    """`cqrs dev --bus kafka`: the services reach the broker as a Kafka cluster (librdkafka on
    its Kafka port); a write is read back, and the group the projection joined is a Kafka group."""
    import signal
    dev = subprocess.Popen([str(BIN_DIR / "cqrs"), "dev", "--bus", "kafka", "--data-dir", str(tmp_path), "--broker-port", "0",
                            "--broker-kafka-port", "0", "--commands-port", "0", "--queries-port", "0", "--no-metrics", "--json",
                            "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(dev.stdout.readline())
        assert ready["event"] == "ready", dev.stderr.read()
        env = {**__import__("os").environ, "CQRS_COMMANDS": ready["commands"], "CQRS_QUERIES": ready["queries"], "CQRS_BROKER": ready["broker"]}

        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([str(BIN_DIR / "cqrs"), *args], capture_output=True, text=True, timeout=60, env=env)

        opened = run("accounts", "open", "--id", "k1", "--holder", "Ada", "--amount", "2.50", "--json")
        assert opened.returncode == 0, opened.stderr
        got = run("accounts", "get", "k1", "--min-position", json.loads(opened.stdout)["position"], "--json")
        assert got.returncode == 0 and json.loads(got.stdout)["balance"] == {"amountMinor": "250", "currency": "EUR"}, got
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": ready["brokerKafka"]})  # kept alive until the answer is in
        members = admin.describe_consumer_groups(["query-service"])["query-service"].result(timeout=10).members
        assert {m.client_id for m in members} == {"query-service"} and len(members) == 4, "one Kafka group member per event topic"
    finally:
        dev.send_signal(signal.SIGINT)
        assert dev.wait(timeout=60) == 0
    assert "COMMITFAIL" not in (tmp_path / "logs" / "query-service.log").read_text(), "a commit lost to a rebalance is not a warning"


def test_servers_and_clients_need_no_privileges():
    """Regression: TCP_NODELAY was once set at the SOL_SOCKET level, which is SO_DEBUG and needs
    CAP_NET_ADMIN: as any user but root (in a container, for one) every connection failed."""
    import os
    import pytest
    if os.geteuid() != 0:
        pytest.skip("runs as root and drops to nobody")
    import shutil
    import tempfile
    from pathlib import Path
    tmp_path = Path(tempfile.mkdtemp(prefix="unprivileged-"))
    tmp_path.chmod(0o777)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    server = subprocess.Popen([*nobody, str(BIN_DIR / "broker"), "--data-dir", str(tmp_path / "b"), "--listen", "127.0.0.1:0", "--log-level", "warning"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = json.loads(server.stdout.readline())["port"]
        health = subprocess.run([*nobody, str(BIN_DIR / "cqrs"), "health", "--server", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=30)
        assert (health.returncode, health.stdout.strip()) == (0, "SERVING"), health.stdout + health.stderr
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(tmp_path, ignore_errors=True)
