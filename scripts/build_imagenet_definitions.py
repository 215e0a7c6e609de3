#!/usr/bin/env python3
"""Build ``data/imagenet_definitions.json``: the WordNet 3.0 definition of each ImageNet class.

    python scripts/build_imagenet_definitions.py   # downloads two packages by name, then writes

Why: a class label alone is often ambiguous or unknown to a small text model ("ram, tup" reads as
computer memory; "porcupine" has no sheep or hedgehog in it). The lite backend matches a class
through its label and its label with the definition ("ram, tup: uncastrated adult male sheep"),
see ``lychee_rerank.backends.lite.concepts``.

How (run once, offline after the two downloads): the class -> WordNet synset list is the one timm
ships (``timm/data/_info/imagenet_synsets.txt`` in the ``timm`` wheel, ``pip download``); the
definitions are the first clause of each synset's gloss in WordNet 3.0's ``data.noun`` (Debian
``wordnet-base``, ``apt-get download``). Only the resulting JSON is committed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "lychee_rerank" / "data" / "imagenet_definitions.json"


def licence(data_noun: str) -> str:
    """WordNet's licence, which must travel with any copy: the numbered header of data.noun."""
    lines = []
    for line in data_noun.splitlines():
        if not line.startswith("  "):
            break
        lines.append(line.strip().split(" ", 1)[1].strip() if " " in line.strip() else "")
    return "\n".join(lines)


def definitions(data_noun: str, synsets: list[str]) -> list[str]:
    """First clause of each synset's gloss (before examples and "; " asides)."""
    gloss: dict[str, str] = {}
    for line in data_noun.splitlines():
        if line.startswith("  ") or " | " not in line:
            continue
        gloss[line[:8]] = line.split(" | ", 1)[1].split(";")[0].strip()
    return [gloss[f"{int(wnid[1:]):08d}"] for wnid in synsets]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        subprocess.run(["apt-get", "download", "wordnet-base"], cwd=scratch, check=True, stdout=subprocess.DEVNULL)
        deb = next(scratch.glob("wordnet-base_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(scratch / "wn")], check=True)
        data_noun = (scratch / "wn" / "usr/share/wordnet/data.noun").read_text(encoding="latin-1")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d",
             str(scratch), "timm==1.0.31"],
            check=True,
        )
        with zipfile.ZipFile(next(scratch.glob("timm-*.whl"))) as wheel:
            synsets = wheel.read("timm/data/_info/imagenet_synsets.txt").decode().split()
    if len(synsets) != 1000:
        raise RuntimeError(f"expected 1000 synsets, got {len(synsets)}")
    doc = {
        "description": "WordNet 3.0 definition (first clause of the gloss) of each ImageNet-1k class, by "
        "class index; built by scripts/build_imagenet_definitions.py.",
        "source": "WordNet 3.0 data.noun (Debian wordnet-base); class synsets from timm's imagenet_synsets.txt",
        "license": licence(data_noun),
        "definitions": definitions(data_noun, synsets),
    }
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
