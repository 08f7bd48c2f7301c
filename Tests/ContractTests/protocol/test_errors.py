"""Error paths and limits (WIRE.md sections 3, 7, 8, 9): each gets the right status code, and
a per-call error leaves the connection usable."""
from __future__ import annotations

import json
import os
import time

import pytest

import jframe

ECHO = {"id": "m1", "account": "acct-000042", "amount": 7, "note": "hello"}


def still_works(conn):
    assert conn.unary("jframe.testing.v1.Echo/Get", ECHO).messages == [ECHO]


def test_unknown_method_is_unimplemented(conn):
    result = conn.unary("jframe.testing.v1.Echo/Nope", ECHO)
    assert result.code == jframe.CODE["UNIMPLEMENTED"]
    assert "jframe.testing.v1.Echo/Nope" in result.trailers["message"]
    still_works(conn)


def test_message_that_is_not_json_is_invalid_argument(conn):
    result = conn.unary("jframe.testing.v1.Echo/Get", b"{not json")
    assert result.code == jframe.CODE["INVALID_ARGUMENT"]
    still_works(conn)


def test_message_of_the_wrong_shape_names_the_field(conn):
    result = conn.unary("jframe.testing.v1.Echo/Get", {"id": "m1", "account": "a", "amount": "seven", "note": ""})
    assert result.code == jframe.CODE["INVALID_ARGUMENT"]
    assert "amount" in result.trailers["message"]
    missing = conn.unary("jframe.testing.v1.Echo/Get", {"id": "m1"})
    assert missing.code == jframe.CODE["INVALID_ARGUMENT"]
    assert "account" in missing.trailers["message"] or "amount" in missing.trailers["message"]
    still_works(conn)


def test_malformed_headers_fail_only_that_call(conn):
    conn.send(jframe.HEADERS, 0, 1, b"[oops")
    conn.next_stream = 3
    result = conn.finish(1)
    assert result.code == jframe.CODE["INVALID_ARGUMENT"]
    still_works(conn)


def test_application_errors_carry_code_message_and_field_violations(conn):
    result = conn.unary("jframe.testing.v1.Echo/Fail", {"code": 3, "message": "bad amount"})
    assert result.trailers["code"] == 3
    assert result.trailers["message"] == "bad amount"
    assert result.trailers["details"] == [{"type": "jframe.rpc.v1.FieldViolations",
                                           "value": {"violations": [{"field": "code", "description": "asked to fail"}]}}]
    for code in range(1, 17):
        assert conn.unary("jframe.testing.v1.Echo/Fail", {"code": code}).code == code


def test_oversized_frame_is_resource_exhausted_and_the_connection_goes_on(conn):
    note = "x" * (5 * 1024 * 1024)
    result = conn.unary("jframe.testing.v1.Echo/Get", dict(ECHO, note=note))
    assert result.code == jframe.CODE["RESOURCE_EXHAUSTED"]
    assert "4194304" in result.trailers["message"]
    still_works(conn)


def test_oversized_headers_are_resource_exhausted(conn):
    stream = conn.open_call("jframe.testing.v1.Echo/Get", metadata={"x-big": "y" * 9000})
    conn.send_message(stream, ECHO, end=True)
    assert conn.finish(stream).code == jframe.CODE["RESOURCE_EXHAUSTED"]
    still_works(conn)


def test_wrong_number_of_requests_for_unary_is_unimplemented(conn):
    stream = conn.open_call("jframe.testing.v1.Echo/Get")
    conn.send_message(stream, ECHO)
    conn.send_message(stream, ECHO, end=True)
    assert conn.finish(stream).code == jframe.CODE["UNIMPLEMENTED"]
    stream = conn.open_call("jframe.testing.v1.Echo/Get", end=True)
    assert conn.finish(stream).code == jframe.CODE["UNIMPLEMENTED"]


def test_garbage_bytes_get_goaway_and_close(server):
    connection = server.connect(send_hello=False)
    connection.send_raw(os.urandom(64) + b"\xff\xff\xff\xff" * 8)
    goaway = connection.wait_goaway()
    assert goaway["code"] in (jframe.CODE["INVALID_ARGUMENT"], jframe.CODE["RESOURCE_EXHAUSTED"])
    connection.wait_closed()


def test_first_frame_must_be_hello(server):
    connection = server.connect(send_hello=False)
    connection.send(jframe.HEADERS, 0, 1, json.dumps({"method": "jframe.testing.v1.Echo/Get"}).encode())
    assert connection.wait_goaway()["code"] == jframe.CODE["INVALID_ARGUMENT"]
    connection.wait_closed()


def test_no_common_version_is_unimplemented(server):
    connection = server.connect(hello={"versions": [99], "maxFrameBytes": 4096, "initialCredit": 8})
    goaway = connection.wait_goaway()
    assert goaway["code"] == jframe.CODE["UNIMPLEMENTED"]
    assert "[1]" in goaway["message"]
    connection.wait_closed()


def test_a_clients_max_frame_bytes_is_honoured_and_checked(server):
    """A reply over the client's HELLO maxFrameBytes used to be sent anyway; now it is not sent
    and the call ends with RESOURCE_EXHAUSTED, on a unary and on a streaming call. A HELLO below
    the schema's minimum (1024) is refused with GOAWAY 3."""
    connection = server.connect(hello={"versions": [1], "maxFrameBytes": 1024, "initialCredit": 8})
    small = connection.unary("jframe.testing.v1.Echo/Get", {"id": "s", "account": "a", "amount": 1, "note": "x" * 100})
    assert small.code == 0
    big = connection.unary("jframe.testing.v1.Echo/Get", {"id": "b", "account": "a", "amount": 1, "note": "x" * 3000})
    assert big.code == jframe.CODE["RESOURCE_EXHAUSTED"], big.trailers
    assert "maxFrameBytes of 1024" in big.trailers["message"] and big.messages == []
    streamed = connection.server_streaming("jframe.testing.v1.Echo/Expand", {"message": {"id": "e", "account": "a", "amount": 1, "note": "y" * 3000}, "count": 3})
    assert streamed.code == jframe.CODE["RESOURCE_EXHAUSTED"] and streamed.messages == [], streamed.trailers
    assert connection.unary("jframe.health.v1.Health/Check", {}).code == 0, "the connection goes on"
    connection.close()
    refused = server.connect(hello={"versions": [1], "maxFrameBytes": 512, "initialCredit": 8})
    goaway = refused.wait_goaway()
    assert goaway["code"] == jframe.CODE["INVALID_ARGUMENT"] and "at least 1024" in goaway["message"]
    refused.wait_closed()


def test_headers_that_break_the_rules_are_refused_with_code_3(conn):
    """A negative timeoutMs, metadata keys outside [a-z0-9._-] (after lowercasing) or in the reserved jframe- space,
    and a -bin value that is not base64 used to be accepted; each is now INVALID_ARGUMENT."""
    echo = {"id": "h", "account": "a", "amount": 1, "note": "n"}

    def call(timeout_ms=None, metadata=None):
        stream = conn.open_call("jframe.testing.v1.Echo/Get", timeout_ms=timeout_ms, metadata=metadata)
        conn.send_message(stream, echo, end=True)
        return conn.finish(stream)

    for metadata in ({"jframe-mine": "1"}, {"bad key": "1"}, {"blob-bin": "not base64!"}, {"": "1"}):
        refused = call(metadata=metadata)
        assert refused.code == jframe.CODE["INVALID_ARGUMENT"], (metadata, refused.trailers)
    assert call(timeout_ms=-5).code == jframe.CODE["INVALID_ARGUMENT"]
    assert call(timeout_ms=0).code == jframe.CODE["DEADLINE_EXCEEDED"]
    assert call(metadata={"blob-bin": "aGVsbG8=", "x-request-id": "r1", "a.b_c-d": "v"}).code == 0
    assert call(metadata={"X-Upper": "1"}).code == 0, "keys are case-insensitive: lowercased on receipt, as in gRPC"


@pytest.mark.parametrize("stream,payload", [(0, b"x" * 65), (1, b"12345678")])
def test_a_ping_too_large_or_on_a_call_stream_is_a_protocol_error(server, stream, payload):
    connection = server.connect()
    assert connection.unary("jframe.health.v1.Health/Check", {}).code == 0
    connection.send(jframe.PING, 0, stream, payload)
    assert connection.wait_goaway()["code"] == jframe.CODE["INVALID_ARGUMENT"]
    connection.wait_closed()


def test_credit_below_one_and_stray_frames_are_ignored(conn):
    conn.send(jframe.CREDIT, 0, 1, json.dumps({"n": -5}).encode())     # a stream never opened, a negative n
    conn.send(jframe.CREDIT, 0, 99, json.dumps({"n": 0}).encode())
    conn.send(jframe.TRAILERS, 0, 7, json.dumps({"code": 0}).encode())  # TRAILERS are the server's
    conn.send(jframe.MESSAGE, 0, 9, b"{}")                               # a stream never opened
    conn.send(jframe.GOAWAY, 0, 0, json.dumps({"lastStreamId": 0, "code": 0}).encode())
    assert conn.unary("jframe.health.v1.Health/Check", {}).code == 0


def test_stream_ids_must_rise(conn):
    still_works(conn)  # used stream 1
    conn.send(jframe.HEADERS, 0, 1, json.dumps({"method": "jframe.testing.v1.Echo/Get"}).encode())
    assert conn.wait_goaway()["code"] == jframe.CODE["INVALID_ARGUMENT"]
    conn.wait_closed()


def test_frame_over_the_skippable_limit_closes_the_connection(conn):
    conn.send_raw(jframe.HEADER.pack(100 * 1024 * 1024, jframe.MESSAGE, 0, 1))
    goaway = conn.wait_goaway()
    assert goaway["code"] == jframe.CODE["RESOURCE_EXHAUSTED"]
    conn.wait_closed()


def test_concurrent_call_limit_refuses_the_next_call(start_server):
    server = start_server("--max-concurrent-calls", "2")
    conn = server.connect()
    sleeping = [conn.open_call("jframe.testing.v1.Echo/Sleep") for _ in range(2)]
    for stream in sleeping:
        conn.send_message(stream, {"milliseconds": 500}, end=True)
    refused = conn.unary("jframe.testing.v1.Echo/Get", ECHO)
    assert refused.code == jframe.CODE["RESOURCE_EXHAUSTED"]
    assert "2" in refused.trailers["message"]
    for stream in sleeping:
        assert conn.finish(stream).code == 0
    still_works(conn)


def test_connection_limit_refuses_the_next_connection_cleanly(start_server):
    server = start_server("--max-connections", "2")
    held = [server.connect() for _ in range(2)]
    for connection in held:
        still_works(connection)
    refused = server.connect()
    assert refused.wait_goaway()["code"] == jframe.CODE["RESOURCE_EXHAUSTED"]
    refused.wait_closed()
    still_works(held[0])


def test_idle_connection_is_closed_with_goaway(start_server):
    server = start_server("--idle-timeout-ms", "300")
    conn = server.connect()
    still_works(conn)
    started = time.monotonic()
    assert conn.wait_goaway(timeout=5)["code"] == 0
    conn.wait_closed()
    assert time.monotonic() - started >= 0.25


def test_idle_timeout_counts_from_the_end_of_the_last_call(start_server):
    """A call longer than the idle timeout, then calls closer together than it, keep the
    connection open; the GOAWAY comes a whole timeout after the last call ended."""
    server = start_server("--idle-timeout-ms", "400")
    conn = server.connect()
    slept = conn.unary("jframe.testing.v1.Echo/Sleep", {"milliseconds": 900})
    assert slept.code == 0, slept.trailers
    assert conn.goaway is None, "a connection with a call open is not idle"
    for _ in range(6):
        time.sleep(0.15)
        still_works(conn)
        assert conn.goaway is None, "calls 150 ms apart keep a 400 ms idle timeout from firing"
    last_call_ended = time.monotonic()
    assert conn.wait_goaway(timeout=5)["code"] == 0
    conn.wait_closed()
    assert time.monotonic() - last_call_ended >= 0.35


def test_slow_partial_frame_is_closed_after_the_timeout(start_server):
    server = start_server("--frame-read-timeout-ms", "300")
    conn = server.connect()
    still_works(conn)
    frame = jframe.encode_frame(jframe.HEADERS, 0, 3, json.dumps({"method": "jframe.testing.v1.Echo/Get"}).encode())
    conn.send_raw(frame[:7])
    started = time.monotonic()
    goaway = conn.wait_goaway(timeout=5)
    assert goaway["code"] == jframe.CODE["DEADLINE_EXCEEDED"]
    conn.wait_closed()
    assert time.monotonic() - started >= 0.25


def test_graceful_shutdown_finishes_calls_in_flight_and_refuses_new_ones(start_server):
    server = start_server("--shutdown-grace-ms", "5000")
    conn = server.connect()
    still_works(conn)
    stream = conn.open_call("jframe.testing.v1.Echo/Sleep")
    conn.send_message(stream, {"milliseconds": 700}, end=True)
    time.sleep(0.1)
    server.process.send_signal(__import__("signal").SIGTERM)
    goaway = conn.wait_goaway()
    assert goaway == {"lastStreamId": stream, "code": 0, "message": goaway["message"]}
    late = conn.unary("jframe.testing.v1.Echo/Get", ECHO)
    assert late.code == jframe.CODE["UNAVAILABLE"]
    assert conn.finish(stream).messages == [{"sleptMs": 700}]
    conn.wait_closed()
    assert server.process.wait(timeout=10) == 0


def test_grace_period_over_cancels_what_is_left(start_server):
    server = start_server("--shutdown-grace-ms", "200")
    conn = server.connect()
    stream = conn.open_call("jframe.testing.v1.Echo/Sleep")
    conn.send_message(stream, {"milliseconds": 10000}, end=True)
    time.sleep(0.1)
    started = time.monotonic()
    server.process.send_signal(__import__("signal").SIGTERM)
    assert conn.finish(stream).code == jframe.CODE["UNAVAILABLE"]
    assert server.process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5


def test_hello_timeout_closes_a_silent_connection(start_server):
    server = start_server("--hello-timeout-ms", "300")
    conn = server.connect(send_hello=False)
    assert conn.wait_goaway(timeout=5)["code"] == jframe.CODE["INVALID_ARGUMENT"]
    conn.wait_closed()


def test_keepalive_pings_a_silent_connection_and_keeps_it_while_answered(start_server):
    server = start_server("--keepalive-interval-ms", "200", "--keepalive-timeout-ms", "200")
    conn = server.connect()
    still_works(conn)
    pings = 0
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        try:
            frame = conn.pump(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        if frame.type == jframe.PING and not frame.flags & jframe.ACK:
            pings += 1
    assert pings >= 2
    assert conn.goaway is None
    still_works(conn)


def test_keepalive_closes_a_connection_that_does_not_answer(start_server):
    server = start_server("--keepalive-interval-ms", "200", "--keepalive-timeout-ms", "200")
    conn = server.connect()
    still_works(conn)
    conn.answer_pings = False
    assert conn.wait_goaway(timeout=5)["code"] == jframe.CODE["UNAVAILABLE"]
    conn.wait_closed()
