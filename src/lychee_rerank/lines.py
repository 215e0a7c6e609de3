"""Reading newline-separated input (JSONL, ``--docs-file``): the one line reader of the package.

Why not ``str.splitlines()`` or iterating a text file: ``splitlines`` also breaks at form feed,
U+0085, U+2028/U+2029 and other separators that are legal inside a JSON string or a document,
so line numbers shift and records split; text mode turns a lone ``\\r`` into a line end too.
Here a line ends at ``\\n`` only (one ``\\r`` before it is dropped, for CRLF files).

Lines are read with a bounded length, so one endless line (``/dev/zero``, a corrupt file) costs
at most ``max_bytes`` of memory and fails alone; and they are decoded one by one, so an invalid
UTF-8 byte is that line's problem, reported with the byte and its column.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Optional

#: Longest line kept (bytes, without its ``\\n``). A 50 MB document still fits; an endless one does not.
MAX_LINE_BYTES = 64 * 2**20
#: Bytes read at a time while skipping the rest of a line over the limit.
_SKIP_CHUNK = 2**20


@dataclass(frozen=True)
class RawLine:
    """One line as read: ``data`` without its line end, or ``None`` when it was over the limit."""

    number: int
    data: Optional[bytes]
    size: int
    """Bytes the line took in the file, line end included."""
    ended: bool
    """Whether it ended with ``\\n`` (the last line of a file, or one cut short by a crash, may not)."""

    def too_long(self, max_bytes: int = MAX_LINE_BYTES) -> str:
        return f"line is longer than {max_bytes:,} bytes ({self.size:,} read)"


def raw_lines(fh: BinaryIO, max_bytes: int = MAX_LINE_BYTES) -> Iterator[RawLine]:
    """The ``\\n``-separated lines of a binary file, numbered from 1, each at most ``max_bytes`` in memory."""
    number = 0
    while True:
        chunk = fh.readline(max_bytes + 2)  # the limit, a "\r" and the "\n"
        if not chunk:
            return
        number += 1
        ended = chunk.endswith(b"\n")
        body = _strip_end(chunk)
        if len(body) <= max_bytes:
            yield RawLine(number, body, len(chunk), ended)
            continue
        size = len(chunk)
        del chunk, body
        while not ended:  # skip the rest of the line in bounded pieces
            rest = fh.readline(_SKIP_CHUNK)
            if not rest:
                break
            size += len(rest)
            ended = rest.endswith(b"\n")
        yield RawLine(number, None, size, ended)


def _strip_end(chunk: bytes) -> bytes:
    if chunk.endswith(b"\n"):
        chunk = chunk[:-1]
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
    return chunk


def decode(data: bytes) -> tuple[str, Optional[str]]:
    """``(text, problem)``: the line as text and, if some bytes are not UTF-8, which.

    Lenient: the bad bytes become lone surrogates (``surrogateescape``), so the rest of the
    line stays readable (a batch record keeps its ``query_id``), and a string holding one of them
    cannot be encoded back to UTF-8 by mistake.
    """
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.end]
        shown = " ".join(f"0x{b:02x}" for b in bad[:4])
        problem = f"not valid UTF-8 (byte {shown} at column {exc.start + 1})"
        return data.decode("utf-8", errors="surrogateescape"), problem


def text_lines(fh: BinaryIO, max_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str, Optional[str]]]:
    """``(number, text, problem)`` per line: :func:`raw_lines` decoded by :func:`decode`."""
    for line in raw_lines(fh, max_bytes):
        if line.data is None:
            yield line.number, "", line.too_long(max_bytes)
        else:
            yield (line.number, *decode(line.data))


def split_lines(text: str) -> list[str]:
    """The lines of text already in memory (a text box), by the same rule: ``\\n`` only, one ``\\r`` dropped."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def stream_kind(path: str | Path) -> Optional[str]:
    """What ``path`` is when it is not a regular file (``"pipe"``, ``"character device"``, ...); ``None`` otherwise.

    A missing path is ``None`` too (it will be created as a file). Follows links: ``/dev/stdout``
    is whatever the process's stdout is.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "pipe"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISDIR(mode):
        return "directory"
    return "special file"


def check_readable_stream(path: str | Path, what: str) -> None:
    """Refuse inputs that never end: a device that is not a terminal (``/dev/zero``, ``/dev/urandom``, a disk).

    Regular files, pipes (``/dev/stdin``, ``<(...)``) and terminals are read as usual.
    """
    kind = stream_kind(path)
    if kind in ("character device", "block device"):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                if os.isatty(fd):
                    return
            finally:
                os.close(fd)
        except OSError:
            pass
        raise ValueError(f"{what} {path} is a {kind}, not a file or a pipe: it would be read without end")
