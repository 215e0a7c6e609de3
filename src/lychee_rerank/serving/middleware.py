"""ASGI middleware of the HTTP service: metrics, a JSON 500, the API key, the body limits.

Plain ASGI rather than ``BaseHTTPMiddleware`` so that a refused request (401, 413) is answered
before its body is read, and nothing is buffered twice.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
import logging
import re
import time
import uuid
from typing import Any, Callable, Optional, Sequence

from .metrics import ServerMetrics

logger = logging.getLogger("lychee_rerank.serving.app")


def _raw_header(scope: dict, name: bytes) -> Optional[bytes]:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return None


def _header(scope: dict, name: bytes) -> Optional[str]:
    value = _raw_header(scope, name)
    return None if value is None else value.decode("latin-1")


async def _send_json(send: Callable, status: int, body: dict, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": payload})


class MetricsMiddleware:
    """Counts every response (401 and 413 from the middleware below included) and its latency."""

    def __init__(self, app: Any, metrics: ServerMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}
        started = time.perf_counter()

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(label, scope.get("method", ""), str(status["code"])).inc()
            self.metrics.latency.labels(label).observe(time.perf_counter() - started)


class InternalErrorMiddleware:
    """Any unexpected exception becomes a 500 JSON body with a reference, never a traceback.

    Handled here rather than by Starlette's outermost error middleware, which re-raises and
    makes uvicorn drop the keep-alive connection under the client's next request.
    """

    def __init__(self, app: Any, metrics: ServerMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # noqa: BLE001 - the point of this middleware
            self.metrics.errors.labels("internal").inc()
            ref = uuid.uuid4().hex[:12]
            logger.error("internal error %s on %s %s", ref, scope.get("method"), scope.get("path"), exc_info=exc)
            if started:  # too late for a clean answer: let the server close the connection
                raise
            await _send_json(send, 500, {"error": {
                "type": "internal_error", "message": f"internal server error (reference {ref}; see the server log)",
            }})


class AuthMiddleware:
    """``Authorization: Bearer KEY`` on every route but /health, compared in constant time.

    The header's bytes are compared with the key's UTF-8 bytes (what curl, httpx and browsers
    send for a key in any language), never through a text decoding of the header; a key with a
    Latin-1 form also matches that (what Python's http.client, under requests, sends for a str).
    """

    def __init__(self, app: Any, api_key: str, metrics: ServerMetrics, open_paths: Sequence[str] = ("/health",)):
        self.app = app
        self.keys = [api_key.encode("utf-8")]
        try:
            latin = api_key.encode("latin-1")
        except UnicodeEncodeError:
            latin = self.keys[0]
        if latin != self.keys[0]:
            self.keys.append(latin)
        self.metrics = metrics
        self.open_paths = set(open_paths)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("path") in self.open_paths:
            await self.app(scope, receive, send)
            return
        header = _raw_header(scope, b"authorization") or b""
        scheme, _, token = header.partition(b" ")
        token = token.strip(b" \t")
        matches = [hmac.compare_digest(token, key) for key in self.keys]  # every form compared: constant time
        if scheme.lower() == b"bearer" and any(matches):
            await self.app(scope, receive, send)
            return
        self.metrics.errors.labels("auth").inc()
        message = "missing API key: send 'Authorization: Bearer KEY'" if not header else "invalid API key"
        await _send_json(
            send, 401, {"error": {"type": "unauthorized", "message": message}},
            headers=[(b"www-authenticate", b'Bearer realm="lychee"')],
        )


#: The ASGI ``receive`` of the request being handled, once its body has been read: a route
#: awaits it to learn that the client went away (see :func:`client_gone`).
_RECEIVE: contextvars.ContextVar[Optional[Callable]] = contextvars.ContextVar("lychee_receive", default=None)


async def client_gone() -> bool:
    """Returns once the current request's client disconnects (True); never returns otherwise.

    The body has been read by then, so the next ASGI message can only be ``http.disconnect``
    (the server sends it when the connection drops, or once the response is complete).
    Without a known ``receive`` it waits forever, which is the safe answer.
    """
    receive = _RECEIVE.get()
    if receive is None:
        await asyncio.Event().wait()
    while True:
        message = await receive()  # type: ignore[misc]
        if message["type"] == "http.disconnect":
            return True


#: A byte that opens a string, an array or an object, or separates items (one byte class: a
#: search for it is linear).
_STRUCTURE = re.compile(rb'["\[{,]')
#: Bytes one structural search may scan: a 60 MB run of digits in one call held the GIL 0.5 s.
_WINDOW = 1 << 20


#: The rest of a string after its opening quote, escapes skipped, and its closing quote if the
#: window holds it (it always matches, so it never backtracks).
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*(")?', re.DOTALL)


def _string_end(body: bytes, pos: int) -> int:
    """Where the string whose content starts at ``pos`` ends (after its closing quote), or the
    end of the text; read a window at a time, so no one call holds the GIL for long (a 60 MB
    string in one match held it 0.5 s). A window that ends inside an escape stops before its
    backslash, and the next one starts there."""
    end = len(body)
    while pos < end:
        rest = _STRING_REST.match(body, pos, min(end, pos + _WINDOW))
        if rest.group(1) is not None:  # type: ignore[union-attr]  # always matches
            return rest.end()  # type: ignore[union-attr]
        if rest.end() == pos:  # type: ignore[union-attr]  # a lone backslash at the very end
            return end
        pos = rest.end()  # type: ignore[union-attr]
    return end


def count_json_values(body: bytes, limit: int) -> int:
    """The array elements and object members of a JSON text, counted without parsing it, and
    only up to ``limit + 1``: commas and opening brackets outside strings (one more than the
    items for each empty array or object).

    Every step is short (a search over at most :data:`_WINDOW` bytes, or one string found at
    memory speed), so a thread running this hands the interpreter back to the event loop
    between steps, where ``json.loads`` (and pydantic) hold it for the whole text. Strings count
    too, against a budget: valid JSON has at most two strings (a key and a value) per item, so a
    body of nothing but strings is refused as soon as it has more than that, not scanned for
    seconds. Any bytes are fine: whether they are JSON is the parser's question, asked once the
    answer is known to be cheap.
    """
    count = strings = pos = 0
    end, string_budget = len(body), 2 * limit + 2
    search = _STRUCTURE.search
    while count <= limit and pos < end:
        found = search(body, pos, min(end, pos + _WINDOW))
        if found is None:
            pos += _WINDOW
        elif body[found.start()] == 0x22:  # '"': skip the string
            strings += 1
            if strings > string_budget:
                return limit + 1
            pos = _string_end(body, found.end())
        else:
            count += 1
            pos = found.end()
    return count


class BodyLimitMiddleware:
    """Refuses bodies over ``max_request_bytes`` before they are parsed, declared or chunked;
    bodies that stop arriving (shorter than their ``Content-Length``) after ``read_timeout_s``;
    and bodies of more than ``max_json_values`` items, counted in a worker thread.

    JSON parsing and validation run on the event loop (FastAPI's, for routes whose pydantic
    models are the contract) and cost time per item: 1.9 M tiny content parts in 59 MB held
    /health for 8 s. Counting first bounds that cost, without holding the loop.
    """

    def __init__(
        self, app: Any, max_bytes: int, metrics: ServerMetrics, read_timeout_s: float = 10.0, *, max_json_values: int
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.read_timeout_s = read_timeout_s
        self.max_json_values = max_json_values

    async def _stalled(self, send: Callable, received: int, declared: Optional[str]) -> None:
        self.metrics.errors.labels("validation").inc()
        expected = f" of the {int(declared):,} declared" if declared is not None and declared.isdigit() else ""
        await _send_json(send, 400, {"error": {
            "type": "invalid_request",
            "message": f"request body incomplete: {received:,} bytes{expected} received, then nothing for "
                       f"{self.read_timeout_s:g} s",
        }}, headers=[(b"connection", b"close")])

    async def _refuse(self, send: Callable, size: int, at_least: bool) -> None:
        self.metrics.errors.labels("limit").inc()
        what = f"at least {size:,}" if at_least else f"{size:,}"
        await _send_json(send, 413, {"error": {
            "type": "limit_exceeded", "limit": "max_request_bytes", "value": size, "max": self.max_bytes,
            "message": f"request body is {what} bytes, over the limit of {self.max_bytes:,} (max_request_bytes)",
        }})

    async def _too_many_values(self, send: Callable, counted: int) -> None:
        self.metrics.errors.labels("limit").inc()
        await _send_json(send, 413, {"error": {
            "type": "limit_exceeded", "limit": "max_json_values", "max": self.max_json_values,
            "message": f"request body holds more than {self.max_json_values:,} JSON values (array elements and "
                       "object members), over the limit (max_json_values)",
        }})

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            _RECEIVE.set(receive)
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared), at_least=False)
            return
        # Read the body here (it is JSON: the route reads all of it anyway), counting as it comes.
        chunks: list[bytes] = []
        total = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout_s)
            except asyncio.TimeoutError:
                await self._stalled(send, total, declared)
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await self._refuse(send, total, at_least=True)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        # Each counted item is at least one byte: a body no longer than the limit needs no count.
        if len(body) > self.max_json_values:
            counted = await asyncio.to_thread(count_json_values, body, self.max_json_values)
            if counted > self.max_json_values:
                await self._too_many_values(send, counted)
                return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        _RECEIVE.set(replay)
        await self.app(scope, replay, send)
