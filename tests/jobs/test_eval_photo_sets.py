"""The evaluation photo sets: manifests, query files and the fetch script's Qt resource reader."""

from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from fetch_eval_photos import _rcc_resource  # noqa: E402


def _bundle(files: dict[str, tuple[bytes, bool]]) -> bytes:
    """A version-2 .rcc holding ``dir/name`` files (data, compressed?) under one directory."""
    names = b""
    offsets: dict[str, int] = {}
    for name in ["dir", *(n.split("/")[1] for n in files)]:
        offsets[name] = len(names)
        text = name.encode("utf-16-be")
        names += struct.pack(">HI", len(name), 0) + text
    blobs = b""
    data_offsets = []
    for data, compressed in files.values():
        payload = struct.pack(">I", len(data)) + zlib.compress(data) if compressed else data
        data_offsets.append(len(blobs))
        blobs += struct.pack(">I", len(payload)) + payload
    node = 22
    tree = struct.pack(">IHII", 0, 2, 1, 1) + bytes(8)  # root: one child, node 1
    tree += struct.pack(">IHII", offsets["dir"], 2, len(files), 2) + bytes(8)
    for (path, (_, compressed)), at in zip(files.items(), data_offsets):
        tree += struct.pack(">IHHHI", offsets[path.split("/")[1]], 1 if compressed else 0, 0, 0, at) + bytes(8)
    assert len(tree) == node * (2 + len(files))
    header = 24
    return b"qres" + struct.pack(">IIIII", 2, header, header + len(tree), header + len(tree) + len(blobs), 0) + tree + blobs + names


def test_rcc_reader_returns_plain_and_compressed_files():
    bundle = _bundle({"dir/a.txt": (b"plain bytes", False), "dir/b.webp": (b"squeezed " * 20, True)})
    assert _rcc_resource(bundle, "dir/a.txt") == b"plain bytes"
    assert _rcc_resource(bundle, "/dir/b.webp") == b"squeezed " * 20
    with pytest.raises(KeyError):
        _rcc_resource(bundle, "dir/missing.png")
    with pytest.raises(KeyError):
        _rcc_resource(bundle, "dir")  # a directory is not a file
    with pytest.raises(ValueError):
        _rcc_resource(b"PK\x03\x04" + bundle[4:], "dir/a.txt")


@pytest.mark.parametrize(
    ("manifest", "queries"),
    [("photos_manifest.json", "photos_eval.jsonl"), ("photos2_manifest.json", "photos2_eval.jsonl")],
)
def test_query_sets_only_name_photos_of_their_manifest(manifest, queries):
    """Every labelled photo exists in its set; every query has all three languages' siblings."""
    eval_dir = ROOT / "examples" / "eval"
    files = {p["file"] for p in json.loads((eval_dir / manifest).read_text(encoding="utf-8"))["photos"]}
    rows = [json.loads(line) for line in (eval_dir / queries).read_text(encoding="utf-8").splitlines() if line]
    assert len(files) >= 40 and len(rows) >= 100
    by_concept: dict[str, set[str]] = {}
    for row in rows:
        assert set(row["relevant"]) <= files, row["id"]
        assert any(grade == 2 for grade in row["relevant"].values()), row["id"]
        by_concept.setdefault(row["concept"], set()).add(row["lang"])
    assert all(langs == {"en", "zh", "mixed"} for langs in by_concept.values())


def test_the_second_set_shares_no_photo_source_with_the_first():
    eval_dir = ROOT / "examples" / "eval"
    first = json.loads((eval_dir / "photos_manifest.json").read_text(encoding="utf-8"))["photos"]
    second = json.loads((eval_dir / "photos2_manifest.json").read_text(encoding="utf-8"))["photos"]
    assert {p["package"] for p in first}.isdisjoint({p["package"] for p in second})
    assert all(p["licence"] for p in second)
