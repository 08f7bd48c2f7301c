"""Every method that Protocols/ defines and the server hosts, called with its schema examples;
every reply and every control frame validated against its schema."""
from __future__ import annotations

import pytest

import jframe

# Methods whose purpose is to fail: the status each example must end with.
EXPECTED_FAILURE = {"jframe.testing.v1.Echo/Fail": lambda example: example["code"]}
# Server-streaming methods that never end by themselves: read this many messages, then cancel.
ENDLESS = {"jframe.health.v1.Health/Watch": 1}


def hosted_methods(server, protocols):
    connection = server.connect()
    try:
        reply = connection.unary("jframe.reflection.v1.Reflection/ListServices", {})
    finally:
        connection.close()
    assert reply.code == 0, reply.trailers
    return {f"{service['name']}/{method['name']}" for service in reply.messages[0]["services"]
            for method in service["methods"]}


def method_cases():
    import conftest
    protocols = conftest.Protocols()
    for package, service, method in protocols.methods():
        yield pytest.param(package, service["name"], method, id=f"{package}.{service['name']}/{method['name']}")


@pytest.mark.parametrize("package,service,method", list(method_cases()))
def test_every_method_answers_its_examples_with_valid_replies(server, protocols, package, service, method):
    full = f"{package}.{service}/{method['name']}"
    if full not in hosted_methods(server, protocols):
        pytest.skip(f"{full} is hosted by another binary")
    examples = protocols.packages[package]["messages"][method["request"]]["examples"]
    response_type = f"{package}.{method['response']}"
    connection = server.connect()
    try:
        if method["kind"] in ("unary", "server_streaming"):
            results = []
            for example in examples:
                protocols.validate(f"{package}.{method['request']}", example)
                stream = connection.open_call(full, timeout_ms=10_000)
                connection.send_message(stream, example, end=True)
                results.append((example, connection.finish(stream, max_messages=ENDLESS.get(full))))
        else:
            for example in examples:
                protocols.validate(f"{package}.{method['request']}", example)
            results = [(examples, getattr(connection, method["kind"])(full, examples))]
        for example, result in results:
            if full in EXPECTED_FAILURE:
                assert result.code == EXPECTED_FAILURE[full](example), result.trailers
                assert result.messages == []
            elif full in ENDLESS:
                assert len(result.messages) == ENDLESS[full]
            else:
                assert result.code == 0, result.trailers
            if result.trailers is not None:
                protocols.validate("jframe.rpc.v1.Trailers", result.trailers)
            if method["kind"] in ("unary", "client_streaming") and result.code == 0:
                assert len(result.messages) == 1
            for message in result.messages:
                protocols.validate(response_type, message)
        for frame in connection.control_frames:
            name = {jframe.HELLO: "Hello", jframe.GOAWAY: "GoAway"}.get(frame.type)
            if name:
                protocols.validate(f"jframe.rpc.v1.{name}", frame.json())
    finally:
        connection.close()


def test_server_hello_chooses_version_1_and_states_its_limits(conn, protocols):
    conn.unary("jframe.health.v1.Health/Check", {})
    hello = conn.server_hello
    protocols.validate("jframe.rpc.v1.Hello", hello)
    assert hello["version"] == 1
    assert hello["maxFrameBytes"] == 4 * 1024 * 1024
    assert hello["initialCredit"] >= 1


def test_reflection_lists_every_hosted_service(conn):
    reply = conn.unary("jframe.reflection.v1.Reflection/ListServices", {})
    names = [service["name"] for service in reply.messages[0]["services"]]
    assert names == sorted(names)
    assert {"jframe.testing.v1.Echo", "jframe.health.v1.Health", "jframe.reflection.v1.Reflection"} <= set(names)


def test_reflection_describes_a_method_with_the_schemas_of_protocols(conn, protocols):
    reply = conn.unary("jframe.reflection.v1.Reflection/DescribeMethod", {"method": "jframe.testing.v1.Echo/Expand"})
    assert reply.code == 0, reply.trailers
    described = reply.messages[0]
    package = protocols.packages["jframe.testing.v1"]
    assert described["info"]["kind"] == "server_streaming"
    assert described["requestSchema"] == package["messages"]["ExpandRequest"]
    assert described["responseSchema"] == package["messages"]["EchoMessage"]
    assert described["messages"] == package["messages"]


def test_reflection_of_an_unknown_method_is_not_found(conn):
    assert conn.unary("jframe.reflection.v1.Reflection/DescribeMethod",
                      {"method": "jframe.testing.v1.Echo/Nope"}).code == jframe.CODE["NOT_FOUND"]
    bad = conn.unary("jframe.reflection.v1.Reflection/DescribeMethod", {"method": "nonsense"})
    assert bad.code == jframe.CODE["INVALID_ARGUMENT"]
    assert bad.trailers["details"][0]["type"] == "jframe.rpc.v1.FieldViolations"


def test_health_reports_serving_and_not_found_for_unknown_services(conn):
    assert conn.unary("jframe.health.v1.Health/Check", {}).messages == [{"status": "SERVING"}]
    assert conn.unary("jframe.health.v1.Health/Check", {"service": "jframe.testing.v1.Echo"}).messages == [
        {"status": "SERVING"}]
    assert conn.unary("jframe.health.v1.Health/Check", {"service": "no.such.v1.Thing"}).code == jframe.CODE["NOT_FOUND"]
    # Every service ListServices lists has a health status, reflection and health included.
    listed = conn.unary("jframe.reflection.v1.Reflection/ListServices", {}).messages[0]["services"]
    for service in listed:
        answer = conn.unary("jframe.health.v1.Health/Check", {"service": service["name"]})
        assert answer.messages == [{"status": "SERVING"}], (service["name"], answer.trailers)
