"""A fault-injecting HTTP/1.1 proxy on loopback, for putting real clients under real faults.

It sits between a client (regctl, python-gitlab) and a real server (LocalRegistry, the GitLab
API emulator), forwards every request unchanged — any method, with its body — and, when a rule
says so, answers with an error instead, resets the connection, answers late, or runs a callback
(for example restarting the registry) first. It counts every request it receives by method, so
a test can assert that nothing was changed ("no PUT, POST, PATCH or DELETE").

It runs its own asyncio loop in a daemon thread, listens only on 127.0.0.1, and stops itself
after ``lifetime`` seconds, so a forgotten proxy cannot outlive a test run.

    with FaultProxy(registry.host) as proxy:
        proxy.add(Fault.respond(503, methods={"DELETE"}, times=3))
        run("regctl tag rm", proxy.host, ...)
        assert proxy.changes() == []
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from enum import StrEnum

from devkit.service import Service

CHANGING_METHODS = frozenset({"PUT", "POST", "PATCH", "DELETE"})
MALFORMED = "<malformed>"
_MAX_HEAD = 64 * 1024


class Action(StrEnum):
    respond = "respond"  # answer with a status of our choosing; upstream never sees it
    reset = "reset"  # read the request, then reset the connection; upstream never sees it
    reset_after = "reset-after"  # forward it (the change happens), then reset instead of answering
    delay = "delay"  # wait, then forward
    delay_after = "delay-after"  # forward it, then wait before answering
    call = "call"  # run a callback (in a worker thread), then forward


@dataclass
class Fault:
    """One rule. The first rule that matches a request and has uses left decides its fate."""

    action: Action
    methods: frozenset[str] | None = None  # None: every method
    path: re.Pattern[str] | None = None  # searched in the request target
    # searched in the request body: a GraphQL mutation is a POST like every other query
    body: re.Pattern[bytes] | None = None
    times: int | None = 1  # how many requests it applies to; None: every matching one
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    callback: Callable[[], None] | None = None
    # True: only requests that carry an Authorization header (see only_authorized).
    authorized: bool = False
    used: int = 0

    @staticmethod
    def _select(
        methods: Collection[str] | None, path: str | None, body: str | None = None
    ) -> dict[str, object]:
        return {
            "methods": frozenset(m.upper() for m in methods) if methods is not None else None,
            "path": re.compile(path) if path is not None else None,
            "body": re.compile(body.encode()) if body is not None else None,
        }

    @classmethod
    def respond(
        cls,
        status: int,
        *,
        methods: Collection[str] | None = None,
        path: str | None = None,
        body: str | None = None,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        after: float = 0.0,
    ) -> Fault:
        """Answer ``status`` (after ``after`` seconds); the request never reaches upstream."""
        return cls(
            Action.respond,
            status=status,
            times=times,
            seconds=after,
            headers=dict(headers or {}),
            **cls._select(methods, path, body),  # type: ignore[arg-type]
        )

    @classmethod
    def reset(
        cls,
        *,
        after_forwarding: bool = False,
        methods: Collection[str] | None = None,
        path: str | None = None,
        body: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        action = Action.reset_after if after_forwarding else Action.reset
        return cls(action, times=times, **cls._select(methods, path, body))  # type: ignore[arg-type]

    @classmethod
    def delay(
        cls,
        seconds: float,
        *,
        after_forwarding: bool = False,
        methods: Collection[str] | None = None,
        path: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        action = Action.delay_after if after_forwarding else Action.delay
        return cls(
            action,
            seconds=seconds,
            times=times,
            **cls._select(methods, path),  # type: ignore[arg-type]
        )

    @classmethod
    def call(
        cls,
        callback: Callable[[], None],
        *,
        methods: Collection[str] | None = None,
        path: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        return cls(
            Action.call,
            callback=callback,
            times=times,
            **cls._select(methods, path),  # type: ignore[arg-type]
        )

    def only_authorized(self) -> Fault:
        """This rule for requests with credentials only: a client's retry after the registry's
        401 challenge, the request that can change something, not the challenged first try."""
        return dataclasses.replace(self, authorized=True)

    def matches(
        self, method: str, target: str, *, authorized: bool = True, body: bytes = b""
    ) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        if self.body is not None and self.body.search(body) is None:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        if self.authorized and not authorized:
            return False
        return self.path is None or self.path.search(target) is not None


@dataclass(frozen=True)
class Seen:
    """One request as the proxy received it, and what the proxy did with it."""

    method: str
    target: str
    action: str  # "forwarded", an Action value, or "upstream-down"
    status: int | None  # the status the client was sent, if any


class _Request:
    def __init__(self, method: str, target: str, version: str, head: list[tuple[str, str]]):
        self.method = method
        self.target = target
        self.version = version
        self.head = head
        self.body = b""

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.head:
            if key.lower() == lowered:
                return value
        return None


class _Malformed(Exception):
    pass


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    first = await reader.read(1)
    if not first:
        return None
    if first == b"\x16":
        # A TLS handshake record on a plain-HTTP port: it never contains a blank line.
        raise _Malformed
    try:
        return first + await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as partial:
        if partial.partial:
            raise _Malformed from None
        return None
    except asyncio.LimitOverrunError:
        raise _Malformed from None


def _parse_headers(lines: list[str]) -> list[tuple[str, str]]:
    headers = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise _Malformed
        headers.append((name.strip(), value.strip()))
    return headers


async def _read_body(
    reader: asyncio.StreamReader, headers: list[tuple[str, str]], *, until_eof: bool
) -> tuple[bytes, bool]:
    """The raw body bytes (chunked framing kept) and whether the body ended the connection."""
    values = {k.lower(): v for k, v in headers}
    if "chunked" in values.get("transfer-encoding", "").lower():
        raw = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            raw += size_line
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers end with an empty line
                    trailer = await reader.readuntil(b"\r\n")
                    raw += trailer
                    if trailer == b"\r\n":
                        return bytes(raw), False
            raw += await reader.readexactly(size + 2)
    if "content-length" in values:
        return await reader.readexactly(int(values["content-length"])), False
    if until_eof:
        return await reader.read(), True
    return b"", False


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, as a crashing server or a dropped connection looks."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


_REASONS = {
    400: "Bad Request",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _response(status: int, headers: dict[str, str], body: bytes = b"") -> bytes:
    reason = _REASONS.get(status, "Fault")
    lines = [f"HTTP/1.1 {status} {reason}"]
    merged = {"Content-Type": "application/json", **headers, "Content-Length": str(len(body))}
    lines += [f"{k}: {v}" for k, v in merged.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class FaultProxy(Service):
    """A loopback proxy to ``upstream`` (``host:port``) that injects the faults it is given.

    ``latency`` delays every request (before forwarding), e.g. 0.025 to model a network hop;
    ``latency_after`` delays every forwarded answer too, so 0.025 and 0.025 model a link with
    25 ms each way (a 50 ms round trip per request).
    ``upstream_down`` is the status sent when the upstream cannot be reached (502, as a reverse
    proxy in front of a restarting registry answers), or None to reset the connection instead.
    ``server_tls``/``upstream_tls`` make either side speak TLS.
    """

    def __init__(
        self,
        upstream: str,
        *,
        latency: float = 0.0,
        latency_after: float = 0.0,
        lifetime: float = 600.0,
        upstream_down: int | None = 502,
        server_tls: ssl.SSLContext | None = None,
        upstream_tls: ssl.SSLContext | None = None,
    ) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host.strip("[]"), int(port))
        self.latency = latency
        self.latency_after = latency_after
        self._lifetime = lifetime
        self._upstream_down = upstream_down
        self._server_tls = server_tls
        self._upstream_tls = upstream_tls
        self._faults: list[Fault] = []
        self._seen: list[Seen] = []
        self._in_flight: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- rules and records (called from the test's thread) --------------------------------

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear(self) -> None:
        """Drop every rule: from now on the proxy forwards everything."""
        with self._lock:
            self._faults.clear()

    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def methods(self) -> Counter[str]:
        return Counter(s.method for s in self.seen())

    def changes(self) -> list[Seen]:
        """Requests that could have changed something upstream: PUT, POST, PATCH, DELETE."""
        return [s for s in self.seen() if s.method in CHANGING_METHODS]

    @property
    def in_flight(self) -> list[tuple[str, str]]:
        """(method, target) of requests received and not yet finished, such as delayed ones."""
        with self._lock:
            return list(self._in_flight)

    def reset_counts(self) -> None:
        with self._lock:
            self._seen.clear()

    def _take_fault(
        self, method: str, target: str, *, authorized: bool, body: bytes
    ) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, target, authorized=authorized, body=body):
                    fault.used += 1
                    return fault
        return None

    def _record(self, method: str, target: str, action: str, status: int | None) -> None:
        with self._lock:
            self._seen.append(Seen(method, target, action, status))

    # -- lifetime -------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"fault proxy did not start: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop may have ended by itself
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to start(); the thread must not die silently
            self._error = error
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self._server_tls, limit=_MAX_HEAD
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            # Bounded: the proxy ends by itself after its lifetime, whatever the test does.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._lifetime)
            server.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

    # -- one client connection ------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; False when the connection is done."""
        try:
            request = await self._read_request(reader)
        except _Malformed:
            # What Go's server says to a TLS client on a plain port: the client then reports
            # "server gave HTTP response to HTTPS client".
            self._record(MALFORMED, "", "rejected", 400)
            writer.write(b"HTTP/1.0 400 Bad Request\r\n\r\nnot an HTTP request\n")
            await writer.drain()
            return False
        if request is None:
            return False
        entry = (request.method, request.target)
        with self._lock:
            self._in_flight.append(entry)
        try:
            return await self._serve_request(request, writer)
        finally:
            with self._lock:
                self._in_flight.remove(entry)

    async def _serve_request(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self._take_fault(
            request.method,
            request.target,
            authorized=request.header("Authorization") is not None,
            body=request.body,
        )
        action = fault.action if fault is not None else None
        if fault is not None and action is Action.respond:
            await asyncio.sleep(fault.seconds)
            self._record(request.method, request.target, action.value, fault.status)
            writer.write(_response(fault.status, fault.headers, b'{"errors":[]}'))
            await writer.drain()
            return True
        if fault is not None and action is Action.reset:
            self._record(request.method, request.target, action.value, None)
            _abort(writer)
            return False
        if fault is not None and action is Action.delay:
            await asyncio.sleep(fault.seconds)
        if fault is not None and action is Action.call and fault.callback is not None:
            await asyncio.to_thread(fault.callback)
        try:
            response, status, closes = await self._forward(request)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            self._record(request.method, request.target, "upstream-down", self._upstream_down)
            if self._upstream_down is None:
                _abort(writer)
                return False
            writer.write(_response(self._upstream_down, {}, b""))
            await writer.drain()
            return True
        if fault is not None and action is Action.reset_after:
            self._record(request.method, request.target, action.value, None)
            _abort(writer)
            return False
        if fault is not None and action is Action.delay_after:
            await asyncio.sleep(fault.seconds)
        if self.latency_after:
            await asyncio.sleep(self.latency_after)
        done = action.value if action is not None else "forwarded"
        self._record(request.method, request.target, done, status)
        writer.write(response)
        await writer.drain()
        return not closes

    async def _read_request(self, reader: asyncio.StreamReader) -> _Request | None:
        head = await _read_head(reader)
        if head is None:
            return None
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
        except ValueError:
            raise _Malformed from None
        if not method.isalpha() or not version.startswith("HTTP/"):
            raise _Malformed
        request = _Request(method.upper(), target, version, _parse_headers(lines[1:-2]))
        try:
            request.body, _ = await _read_body(reader, request.head, until_eof=False)
        except (asyncio.IncompleteReadError, ValueError):
            raise _Malformed from None
        return request

    async def _forward(self, request: _Request) -> tuple[bytes, int, bool]:
        """Send the request upstream on a fresh connection; return the raw response."""
        host, port = self._upstream
        upstream_reader, upstream_writer = await asyncio.open_connection(
            host,
            port,
            ssl=self._upstream_tls,
            server_hostname=host if self._upstream_tls else None,
            limit=_MAX_HEAD,
        )
        try:
            # One request per upstream connection keeps framing simple and faults independent.
            head = [(k, v) for k, v in request.head if k.lower() != "connection"]
            head.append(("Connection", "close"))
            lines = [f"{request.method} {request.target} {request.version}"]
            lines += [f"{k}: {v}" for k, v in head]
            upstream_writer.write(
                ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body
            )
            await upstream_writer.drain()
            raw_head = await upstream_reader.readuntil(b"\r\n\r\n")
            text = raw_head.decode("latin-1").split("\r\n")
            status = int(text[0].split(" ")[1])
            headers = _parse_headers(text[1:-2])
            no_body = request.method == "HEAD" or status in (204, 304) or 100 <= status < 200
            body, until_eof = (
                (b"", False)
                if no_body
                else await _read_body(upstream_reader, headers, until_eof=True)
            )
        finally:
            upstream_writer.close()
        kept = [(k, v) for k, v in headers if k.lower() != "connection"]
        if until_eof:
            kept.append(("Connection", "close"))
        out = [text[0]] + [f"{k}: {v}" for k, v in kept]
        return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body, status, until_eof


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail loudly after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
