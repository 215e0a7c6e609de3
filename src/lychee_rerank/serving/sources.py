"""Turn an image named in an HTTP request into bytes, and refuse what the operator did not allow.

A request can carry an image inline (base64 or a ``data:`` URI). A file path is read only when
the server was started with ``--allow-local-dir DIR`` and the path stays inside DIR after
resolving ``..`` and symlinks; a URL is fetched only with ``--allow-urls``, over http(s), after
resolving its host and checking that *every* address is public, and the connection is then
pinned to a checked address (no second DNS lookup that could be rebound to 127.0.0.1).

The engine itself treats a string under ``"image"`` as a path, so the server never hands it a
request string: it hands it the bytes produced here.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import re
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Optional
from urllib.parse import SplitResult, quote, urljoin, urlsplit, urlunsplit

import httpcore
from PIL import Image

from ..inputs import FileTooLarge, InputError, decode_data_uri, file_refusal, read_regular_file, sidecar_caption

Resolver = Callable[[str, int], list[str]]
#: A character that can be in no base64 string, whitespace aside. One character class, so a
#: search is linear: the old whole-string pattern allowed whitespace in two places and took
#: 56 s (holding the GIL) to refuse "A" + 100,000 spaces + "!".
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/=\s]")
_URL_SCHEMES = ("http", "https")
#: What stays as it is when a URL is made ASCII for the wire: the reserved characters, and "%" so
#: that escapes already there are not escaped twice (``quote`` keeps letters, digits and "-._~").
_URL_SAFE = "!#$%&'()*+,/:;=?@[]"


class SourceError(Exception):
    """This image cannot be used (refused or unreadable); it fails its document, not the request."""


class LimitExceeded(Exception):
    """A configured limit was passed. On the request (body, documents, text, the query's image) it
    refuses the whole request with ``status``; on a document's image it fails that document only."""

    def __init__(self, limit: str, value: int | float, maximum: int | float, message: str, status: int = 413) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.maximum = maximum
        self.status = status


@dataclass(frozen=True)
class SourcePolicy:
    """What a request may name, and how big an image may be."""

    max_image_bytes: int
    max_image_pixels: int
    allow_local_dir: Optional[Path] = None
    allow_urls: bool = False
    url_timeout_s: float = 10.0
    url_max_redirects: int = 3


def check_image_size(data: bytes, policy: SourcePolicy, name: str) -> None:
    """Refuse oversized images from their byte count and header, before anything is decoded.

    Data that PIL cannot identify passes: the engine then reports it as that document's error,
    with the same message the library gives.
    """
    if len(data) > policy.max_image_bytes:
        raise LimitExceeded(
            "max_image_bytes", len(data), policy.max_image_bytes,
            f"{name} is {len(data):,} bytes, over the limit of {policy.max_image_bytes:,} (max_image_bytes)",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        width, height = policy.max_image_pixels + 1, 1  # PIL refused it for us: far past any sane limit
    except Exception:  # noqa: BLE001 - not an image PIL knows: the engine says so per document
        return
    if width * height > policy.max_image_pixels:
        raise LimitExceeded(
            "max_image_pixels", width * height, policy.max_image_pixels,
            f"{name} is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{policy.max_image_pixels:,} (max_image_pixels)",
        )


def _split_url(url: str, name: str) -> SplitResult:
    """``urlsplit`` whose port has been read: a malformed URL (``http://[abc/``, ``http://h:abc/``,
    a port over 65535) is that input's error, not a ValueError deep in the request."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed or out-of-range port
    except ValueError as exc:
        raise SourceError(f"{name}: not a valid URL ({exc}): {url[:100]}") from None
    return parts


def _wire_url(parts: SplitResult, name: str) -> tuple[str, str]:
    """The URL as it is sent, and its host: the host IDNA-encoded, anything else outside
    printable ASCII percent-encoded (the HTTP client refuses non-ASCII URLs with a TypeError).

    A host IDNA cannot encode (an empty label as in ``a..b``, a label over 63 characters, one
    that maps to nothing such as a soft hyphen) is this input's error: the resolver used to
    raise UnicodeError for it, which failed the whole request.
    """
    host = parts.hostname or ""
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise SourceError(f"{name}: not a valid URL host {host[:100]!r} ({exc})") from None
    netloc = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    if parts.port is not None:
        netloc += f":{parts.port}"
    if parts.username is not None or parts.password is not None:
        userinfo = quote(parts.netloc.rpartition("@")[0], safe=_URL_SAFE)
        netloc = f"{userinfo}@{netloc}"
    wire = urlunsplit((parts.scheme, netloc, quote(parts.path, safe=_URL_SAFE), quote(parts.query, safe=_URL_SAFE), ""))
    return wire, ascii_host


class LoadedImage(NamedTuple):
    """An image's bytes and, for a local file, its sidecar caption (as the library reads a Path)."""

    data: bytes
    caption: Optional[str] = None


def load_image(spec: str, policy: SourcePolicy, fetcher: "UrlFetcher | None" = None, *, name: str = "image") -> LoadedImage:
    """The image that ``spec`` names: a data: URI, base64, an allowed URL or an allowed path."""
    spec = spec.strip()
    if not spec:
        raise SourceError(f"{name}: empty image string")
    scheme = _split_url(spec, name).scheme.lower() if "://" in spec[:16] else ""
    if spec.startswith("data:"):
        try:
            loaded = LoadedImage(decode_data_uri(spec))
        except InputError as exc:
            raise SourceError(f"{name}: {exc}") from exc
    elif scheme in _URL_SCHEMES:
        if not policy.allow_urls or fetcher is None:
            raise SourceError(f"{name}: refused: image URLs are disabled (start the server with --allow-urls)")
        loaded = LoadedImage(fetcher.fetch(spec, name=name))
    elif scheme and scheme != "file":
        raise SourceError(f"{name}: refused: unsupported URL scheme {scheme!r} (only http and https)")
    elif scheme == "file" or spec.startswith("file:"):
        loaded = read_local(spec.removeprefix("file://").removeprefix("file:"), policy, name=name)
    else:
        loaded = _path_or_base64(spec, policy, name)
    check_image_size(loaded.data, policy, name)
    return loaded


def _path_or_base64(spec: str, policy: SourcePolicy, name: str) -> LoadedImage:
    """A bare string: base64 of an image, else an existing file under the allowed directory, else an error.

    Base64 is tried first when it decodes to something with an image header: a raw JPEG's
    base64 starts with ``/9j/`` and would otherwise be read as an absolute path (and refused).
    A real path is never valid base64 of an image (a ``.`` is not in the alphabet).
    """
    try:
        decoded: Optional[bytes] = _decode_base64(spec)
        detail = ""
    except ValueError as exc:
        decoded, detail = None, f"not valid base64 ({exc})"
    if decoded is not None and _has_image_header(decoded):
        return LoadedImage(decoded)
    if policy.allow_local_dir is not None and len(spec) <= 4096:
        try:
            return read_local(spec, policy, name=name)
        except _NotFound:
            pass  # not a file there: perhaps base64
    if decoded is not None:
        return LoadedImage(decoded)  # not an image PIL knows: the engine says so for this document
    if policy.allow_local_dir is not None:
        raise SourceError(f"{name}: {detail}, and no such file under the allowed directory")
    raise SourceError(
        f"{name}: {detail}; expected base64 or a data: URI (file paths are refused unless the server is "
        "started with --allow-local-dir, URLs unless with --allow-urls)"
    )


class _NotFound(SourceError):
    pass


def _decode_base64(text: str) -> bytes:
    """Strict base64 of ``text``, whitespace ignored; a ValueError says what is wrong.

    Linear in the length: one scan for a character outside the alphabet (named, with its
    position), whitespace removed once, then the decoder checks the rest (padding, length).
    """
    bad = _NOT_BASE64.search(text)
    if bad is not None:
        raise ValueError(f"{bad.group()!r} at position {bad.start()} is not a base64 character")
    return base64.b64decode("".join(text.split()), validate=True)  # binascii.Error is a ValueError


def _has_image_header(data: bytes) -> bool:
    """Whether PIL recognises ``data`` as an image (its header only is read)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.open(io.BytesIO(data)).close()
    except Image.DecompressionBombError:
        return True  # an image all right: check_image_size refuses it with the limit named
    except Exception:  # noqa: BLE001 - not an image header: perhaps a path
        return False
    return True


def read_local(path_text: str, policy: SourcePolicy, *, name: str = "image") -> LoadedImage:
    """Read a file that resolves inside ``policy.allow_local_dir``; ``..`` and symlinks out are refused.

    Its same-name ``.txt`` sidecar, if any, is its caption, as when the library reads the path
    (so the lite backend scores the file the same over HTTP); a symlinked sidecar is not followed.
    """
    root = policy.allow_local_dir
    if root is None:
        raise SourceError(f"{name}: refused: file paths are disabled (start the server with --allow-local-dir DIR)")
    if "\x00" in path_text:
        raise SourceError(f"{name}: refused: the image path contains a NUL byte")
    relative = Path(path_text)
    if ".." in relative.parts:
        raise SourceError(f"{name}: refused: '..' is not allowed in image paths")
    candidate = relative if relative.is_absolute() else root / relative
    try:
        # Containment is decided on the fully resolved path (symlinks followed) whether or not
        # the file exists, so the answer says nothing about files outside the directory.
        resolved = candidate.resolve()
    except (RuntimeError, OSError):
        raise _NotFound(f"{name}: image file not found: {path_text}") from None
    if not resolved.is_relative_to(root):
        raise SourceError(f"{name}: refused: {path_text} resolves outside the allowed directory")
    try:
        # O_NOFOLLOW: a symlink swapped in after the containment check is not followed.
        data = read_regular_file(resolved, policy.max_image_bytes, follow_symlinks=False)
    except FileTooLarge as exc:
        raise LimitExceeded(
            "max_image_bytes", exc.size if exc.size is not None else policy.max_image_bytes + 1, policy.max_image_bytes,
            f"{name}: {file_refusal(exc, path_text, policy.max_image_bytes)}",
        ) from None
    except (OSError, ValueError) as exc:
        error = _NotFound if isinstance(exc, FileNotFoundError) else SourceError
        raise error(f"{name}: {file_refusal(exc, path_text, policy.max_image_bytes)}") from None
    return LoadedImage(data, sidecar_caption(resolved, follow_symlinks=False))


# --------------------------------------------------------------------------- URLs
def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:  # gaierror, a host IDNA refuses, an embedded NUL
        raise SourceError(f"cannot resolve host {host[:100]!r} ({exc})") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix: the last 32 bits are IPv4
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use prefix: operator-defined


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for (mapped, 6to4, Teredo, NAT64), if any.

    Such an address reaches what it embeds (``2002:7f00:1::`` is 6to4 for 127.0.0.1), so the
    policy judges the embedded address, not the IPv6 wrapper.
    """
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)  # (server, client): both must be public
    if ip in _NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


def address_refusal(address: str) -> Optional[str]:
    """Why ``address`` may not be fetched from, or None when it is a public unicast address."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return f"NAT64 local-use address {ip}"
        embedded = embedded_ipv4(ip)
        for inner in embedded:
            reason = address_refusal(str(inner))
            if reason is not None:
                return f"{reason} (embedded in {ip})"
        if embedded:
            return None
    for kind in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return f"{kind.replace('_', '-')} address {ip}"
    if not ip.is_global:
        return f"non-public address {ip}"
    return None


def checked_addresses(host: str, port: int, resolver: Resolver) -> list[str]:
    """Resolve ``host`` and return its addresses, refusing if ANY of them is not public.

    One bad address is enough: a name that resolves to both a public and a private address
    would otherwise be a way in.
    """
    addresses = resolver(host, port)
    if not addresses:
        raise SourceError(f"host {host!r} resolved to no address")
    for address in addresses:
        reason = address_refusal(address)
        if reason is not None:
            raise SourceError(f"refused: {host} resolves to a {reason}")
    return addresses


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write ends by one deadline.

    httpcore's timeouts apply per socket operation, so a server dripping one header byte a
    second would hold a fetch forever; here each operation gets only the time that is left.
    """

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self.stream = stream
        self.deadline = deadline

    def _left(self, timeout: Optional[float], error: type[Exception]) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise error("deadline passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        return self.stream.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        self.stream.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):  # type: ignore[no-untyped-def]
        stream = self.stream.start_tls(ssl_context, server_hostname, self._left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(stream, self.deadline)

    def get_extra_info(self, info: str):  # type: ignore[no-untyped-def]
        return self.stream.get_extra_info(info)


class _PinnedBackend(httpcore.SyncBackend):
    """Connects to the address that was checked, whatever name the URL carries.

    The URL keeps its host name, so the ``Host`` header, TLS SNI and certificate checks use it.
    Every socket operation ends by ``deadline`` (connect, headers and body share one budget).
    """

    def __init__(self, address: str, deadline: float = float("inf")) -> None:
        self.address = address
        self.deadline = deadline

    def _target(self, port: int) -> tuple[str, int]:
        return self.address, port

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[override]
        address, port = self._target(port)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("deadline passed")
        timeout = left if timeout is None else min(timeout, left)
        stream = super().connect_tcp(address, port, timeout=timeout, local_address=local_address, socket_options=socket_options)
        return _DeadlineStream(stream, self.deadline)


class UrlFetcher:
    """Fetch one image over http(s) with the address policy, a byte cap, a time cap and few redirects."""

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout_s: float = 10.0,
        max_redirects: int = 3,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self.resolver = resolver

    def fetch(self, url: str, *, name: str = "image") -> bytes:
        deadline = time.monotonic() + self.timeout_s
        for _ in range(self.max_redirects + 1):
            parts = _split_url(url, name)
            if parts.scheme.lower() not in _URL_SCHEMES or not parts.hostname:
                raise SourceError(f"{name}: refused: only http(s) URLs with a host are fetched ({url[:100]})")
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)  # checked by _split_url
            url, host = _wire_url(parts, name)
            try:
                address = checked_addresses(host, port, self.resolver)[0]
            except SourceError as exc:
                raise SourceError(f"{name}: {exc}") from None
            status, location, data = self._get(url, address, deadline, name)
            if status in (301, 302, 303, 307, 308) and location:
                url = urljoin(url, location)
                continue
            if status != 200:
                raise SourceError(f"{name}: fetching {host} answered HTTP {status}")
            return data
        raise SourceError(f"{name}: more than {self.max_redirects} redirects")

    def _get(self, url: str, address: str, deadline: float, name: str) -> tuple[int, Optional[str], bytes]:
        remaining = max(deadline - time.monotonic(), 0.001)
        timeouts = {"connect": remaining, "read": remaining, "write": remaining, "pool": remaining}
        try:
            with httpcore.ConnectionPool(network_backend=_PinnedBackend(address, deadline), max_connections=1) as pool:
                with pool.stream(
                    "GET", url, headers={"Accept": "image/*", "User-Agent": "lychee-rerank"},
                    extensions={"timeout": timeouts},
                ) as response:
                    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
                    if 300 <= response.status < 400:
                        return response.status, headers.get("location"), b""
                    declared = headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > self.max_bytes:
                        raise self._too_big(int(declared), name)
                    chunks, total = [], 0
                    for chunk in response.iter_stream():
                        total += len(chunk)
                        if total > self.max_bytes:
                            raise self._too_big(total, name)
                        if time.monotonic() > deadline:
                            raise SourceError(f"{name}: fetching the URL took longer than {self.timeout_s:g} s")
                        chunks.append(chunk)
                    return response.status, None, b"".join(chunks)
        except httpcore.TimeoutException:
            raise SourceError(f"{name}: fetching the URL took longer than {self.timeout_s:g} s") from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
            raise SourceError(f"{name}: could not fetch the URL ({type(exc).__name__}: {exc})") from None

    def _too_big(self, size: int, name: str) -> LimitExceeded:
        return LimitExceeded(
            "max_image_bytes", size, self.max_bytes,
            f"{name} at the URL is at least {size:,} bytes, over the limit of {self.max_bytes:,} (max_image_bytes)",
        )
