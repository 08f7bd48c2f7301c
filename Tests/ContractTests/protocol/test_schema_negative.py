"""The negative suite, generated from Protocols/: for every method of every server binary, each
constraint of its request schema broken once (minLength, maxLength, pattern, minimum, maximum,
minItems, maxItems), a member of the wrong JSON type, a required member left out and an unknown
enum value. Each must end with INVALID_ARGUMENT carrying a jframe.rpc.v1.FieldViolations detail
that names the member's path, before any handler runs; the server must still answer afterwards.

The cases come from the schemas alone, so a schema change changes the suite."""
from __future__ import annotations

import copy
import re
import tempfile

import pytest

import jframe
from conftest import Protocols, RunningServer

# Client- and bidi-streaming methods are all in jframe.testing.v1, whose requests carry no
# constraints; the suite covers unary and server-streaming methods.
KINDS = ("unary", "server_streaming")


def resolve(protocols: Protocols, package: str, schema: dict) -> tuple[str, dict]:
    """The (package, schema) a $ref names, or the schema itself."""
    ref = schema.get("$ref")
    if not ref:
        return package, schema
    file, _, pointer = ref.partition("#")
    owner = file.removesuffix(".json").removeprefix("./") if file else package
    return owner, protocols.packages[owner]["messages"][pointer.removeprefix("/messages/")]


def breaking_string(schema: dict) -> list[tuple[str, str]]:
    cases = []
    if schema.get("minLength", 0) > 0:
        cases.append(("minLength", ""))
    if "maxLength" in schema:
        cases.append(("maxLength", "a" * (schema["maxLength"] + 1)))
    if "pattern" in schema and schema.get("format") != "int64":
        pattern = re.compile(schema["pattern"])
        for candidate in ("", " ", "!", "a b", "-", "\u00e9t\u00e9", "A" * 300, "0" * 300):
            if not pattern.search(candidate):
                cases.append(("pattern", candidate))
                break
    return cases


def mutations(protocols: Protocols, package: str, message: str, example: dict, prefix: str = "", depth: int = 0):
    """(label, path, request) for each way to break `message` once, starting from `example`."""
    schema = protocols.packages[package]["messages"][message]
    if schema.get("type") != "object" or depth > 2:
        return
    required = set(schema.get("required", []))
    for name, member in schema.get("properties", {}).items():
        path = prefix + name
        owner, resolved = resolve(protocols, package, member)

        def with_value(value):
            changed = copy.deepcopy(example)
            changed[name] = value
            return changed

        if name in required and name in example:
            without = copy.deepcopy(example)
            del without[name]
            yield "missing", path, without
        kind = resolved.get("type")
        if "enum" in resolved:
            yield "enum", path, with_value("NOT_A_VALUE")
            continue
        if kind == "string":
            yield "type", path, with_value({"not": "a string"})
            if resolved.get("format") == "int64":
                if "minimum" in resolved:
                    yield "minimum", path, with_value(str(resolved["minimum"] - 1))
                if "maximum" in resolved:
                    yield "maximum", path, with_value(str(resolved["maximum"] + 1))
                yield "int64", path, with_value("12x")
            for label, value in breaking_string(resolved):
                yield label, path, with_value(value)
        elif kind == "integer":
            yield "type", path, with_value("seven")
            if "minimum" in resolved:
                yield "minimum", path, with_value(resolved["minimum"] - 1)
            if "maximum" in resolved:
                yield "maximum", path, with_value(resolved["maximum"] + 1)
        elif kind == "boolean":
            yield "type", path, with_value("yes")
        elif kind == "array":
            yield "type", path, with_value("not an array")
            if resolved.get("minItems", 0) > 0:
                yield "minItems", path, with_value([])
            if "maxItems" in resolved and isinstance(example.get(name), list) and example[name]:
                yield "maxItems", path, with_value(example[name][:1] * (resolved["maxItems"] + 1))
        elif kind == "object" and "properties" in resolved and isinstance(example.get(name), dict):
            message_name = member["$ref"].rpartition("/")[2]
            for label, inner, changed in mutations(protocols, owner, message_name, example[name], path + ".", depth + 1):
                yield label, inner, with_value(changed)


@pytest.fixture(scope="module")
def servers():
    """Every server binary, each hosting its packages (health and reflection on all)."""
    started = []

    def start(binary, *args):
        running = RunningServer(binary, *args)
        started.append(running)
        return running

    address = lambda server: f"{server.host}:{server.port}"
    broker = start("broker", "--data-dir", tempfile.mkdtemp(prefix="negative-broker-"))
    commands = start("command-service", "--data-dir", tempfile.mkdtemp(prefix="negative-commands-"), "--broker", address(broker))
    queries = start("query-service", "--data-dir", tempfile.mkdtemp(prefix="negative-queries-"), "--broker", address(broker),
                    "--commands", address(commands))
    testing = start("rpc-testserver")
    yield {"cqrs.broker.v1": broker, "cqrs.commands.v1": commands, "cqrs.queries.v1": queries, "jframe.testing.v1": testing,
           "jframe.health.v1": testing, "jframe.reflection.v1": testing}
    for running in started:
        running.stop()


def cases():
    protocols = Protocols()
    for package, service, method in protocols.methods():
        if method["kind"] not in KINDS:
            continue
        full = f"{package}.{service['name']}/{method['name']}"
        request = method["request"]
        example = protocols.packages[package]["messages"][request]["examples"][0]
        for label, path, changed in mutations(protocols, package, request, example):
            yield pytest.param(full, method["kind"], path, changed, id=f"{full}:{path}:{label}")


CASES = list(cases())


def test_the_suite_covers_every_constrained_method():
    methods = {case.values[0] for case in CASES}
    assert len(CASES) > 150, len(CASES)
    for needed in ("cqrs.broker.v1.Broker/Produce", "cqrs.broker.v1.Broker/CommitOffsets", "cqrs.commands.v1.BankAccounts/DepositFunds",
                   "cqrs.queries.v1.Accounts/WatchAccount", "cqrs.queries.v1.ReadModels/Rebuild",
                   "jframe.reflection.v1.Reflection/DescribeService"):
        assert needed in methods, needed


@pytest.mark.parametrize("full,kind,path,request_value", CASES)
def test_a_request_that_breaks_its_schema_is_invalid_argument_naming_the_member(servers, full, kind, path, request_value):
    server = servers[".".join(full.split("/")[0].split(".")[:3])]
    connection = server.connect()
    try:
        if kind == "unary":
            result = connection.unary(full, request_value, timeout_ms=5000)
        else:
            result = connection.server_streaming(full, request_value, timeout_ms=5000, timeout=10.0)
        assert result.code == jframe.CODE["INVALID_ARGUMENT"], (result.code, result.trailers)
        assert result.messages == []
        fields = {violation["field"] for detail in result.trailers.get("details", [])
                  if detail.get("type") == "jframe.rpc.v1.FieldViolations" for violation in detail["value"]["violations"]}
        assert path in fields or any(field.startswith(path + "[") or field.startswith(path + ".") for field in fields), \
            (path, fields, result.trailers)
        alive = connection.unary("jframe.health.v1.Health/Check", {}, timeout_ms=5000)
        assert alive.code == 0
    finally:
        connection.close()
