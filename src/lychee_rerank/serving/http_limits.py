"""Limits on the HTTP request head, enforced in uvicorn's protocol before any ASGI code runs.

uvicorn's default parser (httptools) keeps reading one header for as long as the client sends
it: a 20 MB ``Authorization`` header was read in full before the app could refuse it. The
protocol here counts the bytes of each request head (request line and headers) and answers
431 and closes the connection once they pass ``max_header_bytes``. With the pure-Python h11
parser, h11's own incomplete-event cap does the same job (it answers 400).
"""

from __future__ import annotations

from typing import Any

DEFAULT_MAX_HEADER_BYTES = 64 * 1024


def _too_large(limit: int) -> bytes:
    body = (
        b'{"error": {"type": "limit_exceeded", "limit": "max_header_bytes", "max": ' + str(limit).encode()
        + b', "message": "request line and headers are over the limit of ' + f"{limit:,}".encode()
        + b' bytes (max_header_bytes)"}}'
    )
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


def capped_httptools_protocol(max_header_bytes: int) -> type:
    """An httptools protocol class that refuses request heads over ``max_header_bytes`` with 431."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class CappedHttpToolsProtocol(HttpToolsProtocol):
        max_head = max_header_bytes

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = True
            self._head_bytes = 0

        def on_message_begin(self) -> None:
            self._in_head = True
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_bytes = 0
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            # Counted per chunk, checked after parsing it: a chunk holding a small head and a
            # large body is fine; a head still open past the cap is refused, at most one socket
            # read (256 KiB) past it.
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._in_head and self._head_bytes > self.max_head and not self.transport.is_closing():
                self.logger.warning("request head over %d bytes: 431", self.max_head)
                self.transport.write(_too_large(self.max_head))
                self.transport.close()

    return CappedHttpToolsProtocol


def uvicorn_http_options(max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config``: the head cap on either parser."""
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - uvicorn without its [standard] extras
        return {"http": "h11", "h11_max_incomplete_event_size": max_header_bytes}
    return {"http": capped_httptools_protocol(max_header_bytes), "h11_max_incomplete_event_size": max_header_bytes}
