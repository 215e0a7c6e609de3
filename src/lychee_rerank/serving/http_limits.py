"""Limits on what a client sends outside a request body, enforced in uvicorn's protocol.

uvicorn's httptools parser keeps reading a header, a trailer or an unfinished head for as long
as the client sends it, and waits for a head forever: a 20 MB ``Authorization`` header was read
in full, 2 GB of chunked-body trailers were accepted (and appended to the request's headers),
and a thousand connections that never finished their head held every file descriptor. The
protocol here bounds both size and time of everything that is not body:

* size: every run of bytes between body bytes (the request head; a chunk-size line with its
  extensions; the trailer section) is capped at ``max_header_bytes``; past it: 431 and close.
* time: a head (from the connection's start, or from its first byte on a kept-alive one) and a
  trailer section must be complete within ``head_timeout_s``; past it: 408 and close (a
  connection that sent nothing is just closed).

Trailer fields are dropped: the application sees the head's headers only, as RFC 9110
(section 6.5) allows. Bodies are bounded by the application (``BodyLimitMiddleware``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Optional

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_HEAD_TIMEOUT_S = 10.0


def _response(status: bytes, error: dict[str, Any]) -> bytes:
    body = json.dumps({"error": error}).encode()
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


def _too_large(limit: int) -> bytes:
    return _response(b"431 Request Header Fields Too Large", {
        "type": "limit_exceeded", "limit": "max_header_bytes", "max": limit,
        "message": f"request line and headers (or a chunk line or the trailers) are over the limit of {limit:,} "
                   "bytes (max_header_bytes)",
    })


def _too_slow(timeout_s: float) -> bytes:
    return _response(b"408 Request Timeout", {
        "type": "timeout", "limit": "head_timeout_s", "max": timeout_s,
        "message": f"request head (or trailers) not complete after {timeout_s:g} s (head_timeout_s)",
    })


def capped_httptools_protocol(max_header_bytes: int, head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S) -> type:
    """An httptools protocol class bounding each request's non-body bytes in size and time.

    Long because the class is defined here, where uvicorn (the [server] extra) is imported
    lazily and the limits are bound; each of its methods is short."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class CappedHttpToolsProtocol(HttpToolsProtocol):
        max_head = max_header_bytes
        head_timeout = head_timeout_s

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = True  # the next bytes belong to a request head
            self._head_begun = False  # a byte of that head has been parsed (else the connection is idle)
            self._run = 0  # bytes received since the last body byte, head or message boundary
            self._deadline: Optional[asyncio.TimerHandle] = None

        # ----------------------------------------------------------- the deadline
        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(self.head_timeout, self._timed_out)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _may_answer(self) -> bool:
            """Whether a response written now answers the request being read, and only it."""
            cycle = self.cycle
            if cycle is None:
                return True
            if self._in_head:  # the previous request must be fully answered first
                return cycle.response_complete
            return not cycle.response_started

        def _give_up(self, response: Optional[bytes]) -> None:
            if self.transport.is_closing():
                return
            if response is not None and self._may_answer():
                self.transport.write(response)
            self.transport.close()

        def _timed_out(self) -> None:
            self._deadline = None
            idle = self._in_head and not self._head_begun
            if not idle:
                self.logger.warning("request head or trailers incomplete after %g s: 408", self.head_timeout)
            self._give_up(None if idle else _too_slow(self.head_timeout))

        # ----------------------------------------------------------- protocol events
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Optional[Exception]) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            # Counted per read, checked after parsing it: a read holding a small head and a
            # large body is fine (the body resets the count); a head, chunk line or trailer
            # section still open past the cap is refused, at most one read (256 KiB) past it.
            if self._in_head:
                self._arm()  # also for bytes no head callback sees (blank lines before a request)
            self._run += len(data)
            super().data_received(data)
            if self._run > self.max_head and not self.transport.is_closing():
                self.logger.warning("request head or trailers over %d bytes: 431", self.max_head)
                self._give_up(_too_large(self.max_head))

        # ----------------------------------------------------------- parser callbacks
        def on_message_begin(self) -> None:
            self._in_head = self._head_begun = True
            self._arm()
            super().on_message_begin()

        def on_header(self, name: bytes, value: bytes) -> None:
            if self._in_head:  # after the head: a trailer field, dropped
                super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = self._head_begun = False
            self._run = 0
            self._disarm()
            super().on_headers_complete()

        def on_chunk_header(self) -> None:
            # Its data follows at once; after the last (empty) chunk the trailers do, on a clock.
            self._arm()

        def on_body(self, body: bytes) -> None:
            self._run = 0
            self._disarm()
            super().on_body(body)

        def on_chunk_complete(self) -> None:
            self._disarm()

        def on_message_complete(self) -> None:
            self._in_head, self._run = True, 0
            self._disarm()
            super().on_message_complete()

    return CappedHttpToolsProtocol


def uvicorn_http_options(
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES, head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config``: the protocol bounding heads and
    trailers. Parameters are named as the :class:`ServerSettings` fields they come from;
    ``lychee serve`` and the tests' live servers both take their protocol from here."""
    return {"http": capped_httptools_protocol(max_header_bytes, head_timeout_s)}


def raise_open_file_limit() -> tuple[int, int]:
    """Raise this process's soft limit on open files to its hard limit; returns (before, after).

    Every connection is a file descriptor: at a soft limit of 1,024 a thousand slow clients
    leave none for the next accept, and /health fails with everything else.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not a POSIX system
        return -1, -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return soft, hard
        except (ValueError, OSError):  # pragma: no cover - a sandbox that forbids it
            pass
    return soft, soft
