"""A small, independent client of the jframe v1 wire protocol, written from Protocols/WIRE.md.

It exists to check the Swift server against the specification, so it shares no code with it:
frames are packed with `struct`, payloads with the `json` module.
"""
from __future__ import annotations

import collections
import json
import socket
import struct
import time
from dataclasses import dataclass, field

HEADER = struct.Struct(">IBBI")  # length, type, flags, stream id: 10 bytes, big-endian

HELLO, HEADERS, MESSAGE, TRAILERS, CANCEL, CREDIT, PING, GOAWAY = range(8)
END_STREAM, ACK, COMPRESSED = 0x01, 0x02, 0x04

STATUS_NAMES = [
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
]
CODE = {name: number for number, name in enumerate(STATUS_NAMES)}


@dataclass
class Frame:
    type: int
    flags: int
    stream: int
    payload: bytes

    def json(self):
        return json.loads(self.payload.decode("utf-8"))


def encode_frame(frame_type: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(len(payload), frame_type, flags, stream) + payload


def dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class ConnectionClosed(Exception):
    pass


@dataclass
class CallResult:
    messages: list = field(default_factory=list)
    trailers: dict | None = None

    @property
    def code(self) -> int:
        return self.trailers["code"] if self.trailers is not None else -1


class Connection:
    """One TCP connection. Frames of other streams read while waiting are kept for later."""

    def __init__(self, host: str, port: int, *, hello: dict | None = None, send_hello: bool = True,
                 timeout: float = 10.0, tls=None, server_hostname: str | None = None):
        """`tls`: an ssl.SSLContext to speak TLS with (WIRE.md §14)."""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=server_hostname or host)
        self.buffer = b""
        self.pending: dict[int, collections.deque] = collections.defaultdict(collections.deque)
        self.next_stream = 1
        self.server_hello: dict | None = None
        self.goaway: dict | None = None
        self.control_frames: list[Frame] = []  # every frame on stream 0, for schema checks
        self.closed = False
        self.answer_pings = True
        self.initial_credit = 64
        if send_hello:
            payload = hello if hello is not None else {
                "versions": [1], "maxFrameBytes": 4 * 1024 * 1024, "initialCredit": self.initial_credit,
                "agent": "jframe-python/1"}
            self.send(HELLO, 0, 0, dumps(payload))

    # -- raw frames ---------------------------------------------------------------------------

    def send(self, frame_type: int, flags: int, stream: int, payload: bytes = b"") -> None:
        self.sock.sendall(encode_frame(frame_type, flags, stream, payload))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self, timeout: float | None = 10.0) -> Frame:
        """The next frame from the socket; raises ConnectionClosed at EOF, TimeoutError on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if len(self.buffer) >= HEADER.size:
                length, frame_type, flags, stream = HEADER.unpack_from(self.buffer)
                if len(self.buffer) >= HEADER.size + length:
                    payload = self.buffer[HEADER.size:HEADER.size + length]
                    self.buffer = self.buffer[HEADER.size + length:]
                    return Frame(frame_type, flags, stream, payload)
            if self.closed:
                raise ConnectionClosed()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("no frame in time")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout as error:
                raise TimeoutError("no frame in time") from error
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                continue
            self.buffer += chunk

    def pump(self, timeout: float | None = 10.0) -> Frame:
        """Reads one frame and files it: connection frames are handled, call frames queued."""
        frame = self.read_frame(timeout)
        if frame.stream == 0:
            self.control_frames.append(frame)
            if frame.type == HELLO and frame.flags & ACK:
                self.server_hello = frame.json()
            elif frame.type == PING and not frame.flags & ACK and self.answer_pings:
                self.send(PING, ACK, 0, frame.payload)
            elif frame.type == GOAWAY:
                self.goaway = frame.json()
        else:
            self.pending[frame.stream].append(frame)
        return frame

    def next_frame_for(self, stream: int, timeout: float = 10.0) -> Frame:
        deadline = time.monotonic() + timeout
        while not self.pending[stream]:
            self.pump(max(0.0, deadline - time.monotonic()))
        return self.pending[stream].popleft()

    def wait_goaway(self, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while self.goaway is None:
            self.pump(max(0.0, deadline - time.monotonic()))
        return self.goaway

    def wait_closed(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.pump(max(0.0, deadline - time.monotonic()))
        except ConnectionClosed:
            return

    def close(self) -> None:
        self.sock.close()

    # -- calls -------------------------------------------------------------------------------

    def open_call(self, method: str, *, timeout_ms: int | None = None, metadata: dict | None = None,
                  end: bool = False) -> int:
        stream = self.next_stream
        self.next_stream += 2
        headers = {"method": method}
        if timeout_ms is not None:
            headers["timeoutMs"] = timeout_ms
        if metadata:
            headers["metadata"] = metadata
        self.send(HEADERS, END_STREAM if end else 0, stream, dumps(headers))
        return stream

    def send_message(self, stream: int, message, *, end: bool = False) -> None:
        payload = message if isinstance(message, bytes) else dumps(message)
        self.send(MESSAGE, END_STREAM if end else 0, stream, payload)

    def half_close(self, stream: int) -> None:
        self.send(MESSAGE, END_STREAM, stream)

    def cancel(self, stream: int, code: int = CODE["CANCELLED"]) -> None:
        self.send(CANCEL, 0, stream, dumps({"code": code}))

    def grant(self, stream: int, n: int) -> None:
        self.send(CREDIT, 0, stream, dumps({"n": n}))

    def finish(self, stream: int, *, auto_credit: bool = True, timeout: float = 10.0,
               max_messages: int | None = None) -> CallResult:
        """Reads a call's frames until TRAILERS, granting credit as messages are consumed.
        With max_messages, cancels the call once that many arrived (for endless streams)."""
        result = CallResult()
        consumed = 0
        while True:
            frame = self.next_frame_for(stream, timeout)
            if frame.type == MESSAGE and frame.payload:
                result.messages.append(frame.json())
                consumed += 1
                if max_messages is not None and len(result.messages) >= max_messages:
                    self.cancel(stream)
                    return result
                if auto_credit and consumed >= self.initial_credit // 2:
                    self.grant(stream, consumed)
                    consumed = 0
            elif frame.type == TRAILERS:
                result.trailers = frame.json()
                return result

    def unary(self, method: str, request, **options) -> CallResult:
        stream = self.open_call(method, timeout_ms=options.get("timeout_ms"), metadata=options.get("metadata"))
        self.send_message(stream, request, end=True)
        return self.finish(stream, timeout=options.get("timeout", 10.0))

    def server_streaming(self, method: str, request, **options) -> CallResult:
        return self.unary(method, request, **options)

    def client_streaming(self, method: str, requests: list, **options) -> CallResult:
        stream = self.open_call(method, timeout_ms=options.get("timeout_ms"), end=not requests)
        for index, request in enumerate(requests):
            self.send_message(stream, request, end=index == len(requests) - 1)
        return self.finish(stream)

    bidi_streaming = client_streaming
