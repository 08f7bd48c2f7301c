"""The four call kinds, flow control, deadlines and cancellation, as WIRE.md sections 4-6 say."""
from __future__ import annotations

import time

import jframe

ECHO = {"id": "m1", "account": "acct-000042", "amount": 7, "note": "hello"}


def test_unary_echoes_and_sends_message_then_ok_trailers(conn):
    result = conn.unary("jframe.testing.v1.Echo/Get", ECHO)
    assert result.messages == [ECHO]
    assert result.trailers == {"code": 0}


def test_many_calls_interleave_on_one_connection(conn):
    streams = []
    for index in range(50):
        stream = conn.open_call("jframe.testing.v1.Echo/Get")
        streams.append((stream, dict(ECHO, amount=index)))
    for stream, message in streams:
        conn.send_message(stream, message, end=True)
    for stream, message in reversed(streams):
        assert conn.finish(stream).messages == [message]


def test_server_streaming_delivers_every_message_in_order_with_credit(conn):
    result = conn.unary("jframe.testing.v1.Echo/Expand", {"message": ECHO, "count": 500})
    assert result.code == 0
    assert [message["amount"] for message in result.messages] == list(range(500))


def test_server_stops_at_the_initial_credit_until_more_is_granted(conn):
    stream = conn.open_call("jframe.testing.v1.Echo/Expand")
    conn.send_message(stream, {"message": ECHO, "count": 100}, end=True)
    received = [conn.next_frame_for(stream) for _ in range(conn.initial_credit)]
    assert all(frame.type == jframe.MESSAGE for frame in received)
    # No credit granted: nothing more may arrive.
    try:
        extra = conn.next_frame_for(stream, timeout=0.3)
        raise AssertionError(f"server sent past its credit: {extra}")
    except TimeoutError:
        pass
    conn.grant(stream, 100)
    rest = conn.finish(stream, auto_credit=False)
    assert rest.code == 0
    assert len(rest.messages) == 100 - conn.initial_credit


def test_client_streaming_counts_and_sums(conn):
    messages = [dict(ECHO, amount=amount) for amount in (1, 2, 3, 2**40)]
    result = conn.client_streaming("jframe.testing.v1.Echo/Collect", messages)
    assert result.code == 0
    assert result.messages == [{"count": 4, "totalAmount": str(6 + 2**40)}]


def test_client_streaming_with_no_messages_half_closed_on_headers(conn):
    result = conn.client_streaming("jframe.testing.v1.Echo/Collect", [])
    assert result.messages == [{"count": 0, "totalAmount": "0"}]


def test_client_streaming_past_the_credit_needs_credit_from_the_server(conn):
    stream = conn.open_call("jframe.testing.v1.Echo/Collect")
    total = 300
    sent = 0
    credit = 64  # the server's initialCredit, from its HELLO (checked in test_methods)
    while sent < total:
        while sent < credit and sent < total:
            conn.send_message(stream, dict(ECHO, amount=1))
            sent += 1
        if sent < total:
            frame = conn.next_frame_for(stream)
            assert frame.type == jframe.CREDIT, frame
            credit += frame.json()["n"]
    conn.half_close(stream)
    result = conn.finish(stream)
    assert result.messages == [{"count": total, "totalAmount": str(total)}]


def test_the_server_widens_its_request_window_for_small_messages(conn):
    """WIRE.md section 6: the Swift library sizes a stream's window in bytes (1 MiB by default)
    once it has seen the messages, never below initialCredit; a peer may send all it was granted."""
    stream = conn.open_call("jframe.testing.v1.Echo/Collect")
    size = len(jframe.dumps(dict(ECHO, amount=1)))
    for _ in range(64):  # the server's initialCredit
        conn.send_message(stream, dict(ECHO, amount=1))
    frame = conn.next_frame_for(stream)
    assert frame.type == jframe.CREDIT, frame
    granted = frame.json()["n"]
    assert granted > 64, f"window not widened for {size}-byte messages: CREDIT {granted}"
    assert (granted + 64) * size <= 1024 * 1024, "window beyond its byte budget"
    for _ in range(granted):  # all at once, without waiting for more credit
        conn.send_message(stream, dict(ECHO, amount=1))
    conn.half_close(stream)
    result = conn.finish(stream)
    assert result.code == 0, result.trailers
    assert result.messages == [{"count": 64 + granted, "totalAmount": str(64 + granted)}]


def test_bidi_streaming_answers_each_message_as_it_arrives(conn):
    stream = conn.open_call("jframe.testing.v1.Echo/Update")
    for index in range(3):
        conn.send_message(stream, dict(ECHO, amount=index, note=f"n{index}"))
        frame = conn.next_frame_for(stream)
        assert frame.type == jframe.MESSAGE
        assert frame.json() == dict(ECHO, amount=index, note=f"N{index}")
    conn.half_close(stream)
    assert conn.finish(stream).trailers == {"code": 0}


def sleep_stats(conn):
    return conn.unary("jframe.testing.v1.Echo/Stats", {}).messages[0]


def test_expired_deadline_ends_the_call_and_cancels_the_handler(conn):
    before = sleep_stats(conn)
    started = time.monotonic()
    result = conn.unary("jframe.testing.v1.Echo/Sleep", {"milliseconds": 5000}, timeout_ms=100)
    elapsed = time.monotonic() - started
    assert result.code == jframe.CODE["DEADLINE_EXCEEDED"], result.trailers
    assert 0.08 < elapsed < 2.0
    time.sleep(0.1)
    assert sleep_stats(conn)["sleepsCancelled"] == before["sleepsCancelled"] + 1


def test_zero_timeout_fails_at_once(conn):
    assert conn.unary("jframe.testing.v1.Echo/Get", ECHO, timeout_ms=0).code == jframe.CODE["DEADLINE_EXCEEDED"]


def test_cancel_stops_the_handler_and_nothing_more_is_sent(conn):
    before = sleep_stats(conn)
    stream = conn.open_call("jframe.testing.v1.Echo/Sleep")
    conn.send_message(stream, {"milliseconds": 5000}, end=True)
    time.sleep(0.1)
    conn.cancel(stream)
    time.sleep(0.2)
    assert sleep_stats(conn)["sleepsCancelled"] == before["sleepsCancelled"] + 1
    assert not conn.pending[stream], "the server sent frames after CANCEL"


def test_ping_is_answered_with_ack_and_same_payload(conn):
    conn.send(jframe.PING, 0, 0, b"12345678")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        frame = conn.pump()
        if frame.type == jframe.PING and frame.flags & jframe.ACK:
            assert frame.payload == b"12345678"
            return
    raise AssertionError("no PING ACK")


def test_request_id_metadata_is_accepted(conn):
    stream = conn.open_call("jframe.testing.v1.Echo/Get", metadata={"x-request-id": "req-1", "x-other-bin": "AAE="})
    conn.send_message(stream, ECHO, end=True)
    assert conn.finish(stream).messages == [ECHO]
