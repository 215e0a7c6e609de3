"""Training data: JSONL records → query groups, held-out split, and the order of each epoch.

The order of the data is a function of ``(seed, epoch)`` only, so a resumed run sees the batches
an uninterrupted run would have seen.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ..inputs import InputError, to_content
from ..lines import check_readable_stream, text_lines

logger = logging.getLogger("lychee_rerank")

MAX_LOGGED_BAD_RECORDS = 20


@dataclass
class BadRecord:
    file: str
    line: int
    reason: str


@dataclass
class Group:
    """All labelled documents of one query (pairs records with the same query are merged)."""

    query: Any
    base_dir: Path
    instruction: str | None
    positives: list[Any] = field(default_factory=list)
    negatives: list[Any] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    @property
    def n_pairs(self) -> int:
        return len(self.positives) + len(self.negatives)


@dataclass(frozen=True)
class Example:
    """One (query, document, label) the model sees; ``group`` indexes the dataset's groups."""

    group: int
    document: Any
    label: bool


@dataclass
class Dataset:
    groups: list[Group]
    bad_records: list[BadRecord]

    @property
    def n_pairs(self) -> int:
        return sum(g.n_pairs for g in self.groups)


class _BadRecord(ValueError):
    pass


def _check_content(obj: Any, base_dir: Path, what: str) -> None:
    """Decode once to prove the record usable (images are decoded again when batched)."""
    if obj is None:
        raise _BadRecord(f"{what} is missing")
    if not isinstance(obj, (str, Mapping)):
        raise _BadRecord(f"{what} must be a string or {{'text': ..., 'image': ...}}, got {type(obj).__name__}")
    try:
        content = to_content(obj, base_dir=base_dir)
    except InputError as exc:
        raise _BadRecord(f"{what}: {exc}") from exc
    if content.is_empty:
        raise _BadRecord(f"{what} is empty: give text, an image, or both")


def _label(value: Any) -> bool:
    """A pair's label: ``true``/``false`` or ``1``/``0``, nothing else.

    The loss trains the yes/no answer, so a label is binary. A graded (2, 5) or soft (0.3) label
    has no one right reading (is grade 1 of 0-3 relevant?), so it is refused with its line
    rather than silently trained as "yes": map grades to 1/0 first.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return value == 1
    hint = ""
    if isinstance(value, (int, float)) and math.isfinite(value) and 0 < value < 1:
        hint = " (soft labels are not supported: the loss trains a yes/no answer)"
    elif isinstance(value, (int, float)) and math.isfinite(value) and value > 1:
        hint = " (a graded label? map the grades you count as relevant to 1, the rest to 0)"
    raise _BadRecord(f"label must be true/false or 1/0, got {value!r}{hint}")


def _key(query: Any, instruction: str | None) -> str:
    return json.dumps([query, instruction], sort_keys=True, ensure_ascii=False)


def load_dataset(source: str | Path | Iterable[Mapping[str, Any]], *, base_dir: Path | None = None) -> Dataset:
    """Read pairs/groups JSONL (or records already in memory) into query groups.

    Every problem is a :class:`BadRecord` with its line number (1-based; the position for
    in-memory records), logged at WARNING and returned, never silently dropped.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        name, folder = str(path), base_dir or path.parent
        lines: Iterable[tuple[int, Any]] = _file_lines(path)
    else:
        name, folder = "<records>", base_dir or Path.cwd()
        lines = enumerate(source, start=1)

    groups: OrderedDict[str, Group] = OrderedDict()
    bad: list[BadRecord] = []

    def report(line: int, reason: str) -> None:
        bad.append(BadRecord(name, line, reason))
        if len(bad) <= MAX_LOGGED_BAD_RECORDS:
            logger.warning("%s:%d: skipped: %s", name, line, reason)

    for line, raw in lines:
        if isinstance(raw, _LineProblem):
            report(line, str(raw))
            continue
        if isinstance(raw, str):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                report(line, f"invalid JSON ({exc.msg} at column {exc.colno})")
                continue
        else:
            record = raw
        try:
            _add_record(record, line, folder, groups, lambda reason, line=line: report(line, reason))
        except _BadRecord as exc:
            report(line, str(exc))
    if len(bad) > MAX_LOGGED_BAD_RECORDS:
        logger.warning("%s: %d bad records in all (first %d logged)", name, len(bad), MAX_LOGGED_BAD_RECORDS)
    return Dataset(groups=[g for g in groups.values() if g.n_pairs], bad_records=bad)


class _LineProblem(str):
    """A line that could not be read as text (invalid UTF-8, over the length limit)."""


def _file_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of a JSONL file: ``\n``-separated only, so a U+2028 or U+0085
    inside a JSON string neither splits its record nor shifts the line numbers after it."""
    try:
        check_readable_stream(path, "training data")
        with path.open("rb") as fh:
            for number, text, problem in text_lines(fh):
                yield number, (_LineProblem(problem) if problem else text)
    except OSError as exc:
        raise ValueError(f"cannot read training data {path}: {exc}") from exc


def _add_record(record: Any, line: int, folder: Path, groups: OrderedDict[str, Group], report_doc: Any) -> None:
    if not isinstance(record, Mapping):
        raise _BadRecord(f"expected a JSON object, got {type(record).__name__}")
    if "query" not in record:
        raise _BadRecord("missing field 'query'")
    instruction = record.get("instruction")
    if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
        raise _BadRecord("'instruction' must be a non-empty string")
    is_pair = "document" in record or "label" in record
    is_group = "positives" in record or "negatives" in record
    if is_pair == is_group:
        raise _BadRecord(
            "expected either 'document' and 'label' (a pair) or 'positives'/'negatives' (a group)"
        )
    _check_content(record["query"], folder, "query")
    if is_pair:
        if "document" not in record:
            raise _BadRecord("missing field 'document'")
        if "label" not in record:
            raise _BadRecord("missing field 'label'")
        label = _label(record["label"])
        _check_content(record["document"], folder, "document")
        docs = {True: [record["document"]], False: []} if label else {True: [], False: [record["document"]]}
    else:
        docs = {True: [], False: []}
        for name, label in (("positives", True), ("negatives", False)):
            items = record.get(name, [])
            if not isinstance(items, list):
                raise _BadRecord(f"'{name}' must be a list")
            for i, doc in enumerate(items):
                try:
                    _check_content(doc, folder, f"{name}[{i}]")
                except _BadRecord as exc:
                    report_doc(str(exc))  # one bad document does not sink its group
                    continue
                docs[label].append(doc)
        if not docs[True] and not docs[False]:
            raise _BadRecord("group has no usable document")
    key = _key(record["query"], instruction)
    group = groups.get(key)
    if group is None:
        group = groups[key] = Group(query=record["query"], base_dir=folder, instruction=instruction)
    group.positives.extend(docs[True])
    group.negatives.extend(docs[False])
    group.lines.append(line)


def require_both_labels(groups: Sequence[Group], what: str = "the training data") -> None:
    """Refuse to train on one label only.

    With no positive (or no negative) pair the loss is minimised by answering "no" (or "yes") to
    everything: training "succeeds" and the adapter is useless, so this is an error, not a warning.
    """
    positives = sum(len(g.positives) for g in groups)
    negatives = sum(len(g.negatives) for g in groups)
    if positives and negatives:
        return
    missing, answer, have = ("positive", "no", negatives) if not positives else ("negative", "yes", positives)
    raise ValueError(
        f"{what} has no {missing} pair ({have} pair(s), all {'negative' if not positives else 'positive'}): "
        f"the adapter would learn to answer {answer!r} to everything; add {missing} examples"
    )


def split_groups(groups: list[Group], share: float, seed: int) -> tuple[list[Group], list[Group]]:
    """Hold out ``share`` of the queries (never a query's documents on both sides)."""
    if share <= 0:
        return groups, []
    if len(groups) < 2:
        logger.warning("only %d query in the training data: nothing held out for evaluation", len(groups))
        return groups, []
    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(groups) - 1, max(1, round(len(groups) * share)))
    held = set(order[:n_eval])
    return [g for i, g in enumerate(groups) if i not in held], [g for i, g in enumerate(groups) if i in held]


def pointwise_examples(groups: Sequence[Group]) -> list[Example]:
    return [
        Example(gi, doc, label)
        for gi, g in enumerate(groups)
        for label, docs in ((True, g.positives), (False, g.negatives))
        for doc in docs
    ]


def epoch_units(groups: Sequence[Group], epoch: int, seed: int, hard_negatives: int) -> list[list[Example]]:
    """The epoch's training units in order: a unit trains in one micro-batch.

    Without hard negatives a unit is one pair. With N hard negatives a unit is one positive
    followed by N negatives of the same query, taken in turn from the query's shuffled
    negatives (repeating when it has fewer); documents of queries with no positive (or no
    negative) train as single pairs. Depends only on ``(seed, epoch)``, so a resumed run
    sees what an uninterrupted one would.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    units: list[list[Example]] = []
    if hard_negatives == 0:
        units = [[ex] for ex in pointwise_examples(groups)]
    else:
        for gi, g in enumerate(groups):
            if not g.positives or not g.negatives:
                units.extend([Example(gi, d, bool(g.positives))] for d in (g.positives or g.negatives))
                continue
            negatives = list(g.negatives)
            rng.shuffle(negatives)
            cursor = 0
            for positive in g.positives:
                unit = [Example(gi, positive, True)]
                for _ in range(min(hard_negatives, len(negatives))):
                    unit.append(Example(gi, negatives[cursor % len(negatives)], False))
                    cursor += 1
                units.append(unit)
    rng.shuffle(units)
    return units


def pack(units: list[list[Example]], batch_size: int) -> list[list[list[Example]]]:
    """Micro-batches of whole units, at most ``batch_size`` pairs (a larger unit goes alone)."""
    batches: list[list[list[Example]]] = []
    current: list[list[Example]] = []
    size = 0
    for unit in units:
        if current and size + len(unit) > batch_size:
            batches.append(current)
            current, size = [], 0
        current.append(unit)
        size += len(unit)
    if current:
        batches.append(current)
    return batches
