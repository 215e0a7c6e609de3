"""``lychee batch``: offline reranking of many queries, locally or on a Ray cluster.

Input (JSONL or Parquet): one record per query ``{query_id, query, candidates: [...]}``, or
flat pairs ``{query_id, query, candidate}``; records sharing a ``query_id`` are merged in input
order, so a candidate's ``index`` is its position among that query's candidates. Image paths
inside ``{"text", "image"}`` mappings are resolved against the input file's folder.

Output (JSONL): one line per query, ``{query_id, results: [{index, score, rank, error?}]}``,
or ``{query_id, error}`` when the query itself is unusable. A record without a usable
``query_id`` (none, not JSON, NaN, bytes that are not UTF-8 inside it) is written as
``{query_id: null, where: "line 7", error}``: a generated name could equal a real user id.
Each line is written whole and flushed, so a rerun after a crash reads the output, drops a
truncated last line, skips the query_ids already there and appends the rest: nothing lost,
nothing duplicated. A ``.parquet`` OUTPUT is assembled from a ``.partial.jsonl`` sidecar (the
resumable part) at the end. An OUTPUT that is not a regular file (``/dev/stdout``, a pipe,
``/dev/null``) is a stream: written record by record, never read back, so never resumed.

The same :func:`score_payloads` runs in both modes: ``local=True`` calls it in this process;
otherwise Ray Data ``map_batches`` calls it in a pool of actors, one reranker per actor.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, TextIO

from ..config import RerankerConfig
from ..lines import check_readable_stream, decode, raw_lines, stream_kind

#: Seconds between progress lines on stderr.
PROGRESS_EVERY_S = 2.0


# --------------------------------------------------------------------------- configuration
# How each worker builds its reranker: the library's one RerankerConfig (backend, model, family,
# adapter, device, limits, lite cache), a picklable recipe, not a loaded model.


def load_reranker(spec: RerankerConfig) -> Any:
    """Load like every other interface does (``--backend auto|lychee|lite``)."""
    from ..engine import LycheeReranker

    return LycheeReranker.from_config(spec)


@dataclass(frozen=True)
class ScoreOptions:
    """Per-call options applied to every query of a job."""

    instruction: Optional[str] = None
    batch_size: int = 8
    """Pairs per forward pass (the engine also caps a pass by its token budget)."""


@dataclass
class BatchSummary:
    """What a run did; ``skipped`` counts queries found already done in OUTPUT."""

    queries: int = 0
    pairs: int = 0
    skipped: int = 0
    query_errors: int = 0
    pair_errors: int = 0
    seconds: float = 0.0
    output: str = ""
    mode: str = "local"

    @property
    def errors(self) -> int:
        return self.query_errors + self.pair_errors

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"lychee batch ({self.mode}): {self.queries} queries, {self.pairs} pairs in {self.seconds:.1f} s "
            f"({self.pairs_per_s:.1f} pairs/s), {self.errors} errors ({self.query_errors} queries, "
            f"{self.pair_errors} pairs), {self.skipped} queries already done -> {self.output}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "errors": self.errors, "pairs_per_s": self.pairs_per_s}


# --------------------------------------------------------------------------- reading
def _key(query_id: Any) -> str:
    """A query_id as a stable key: 1 and "1" stay distinct, as they are in the output."""
    return json.dumps(query_id, sort_keys=True, ensure_ascii=False)


def _record_key(record: Mapping[str, Any]) -> str:
    """The key of a payload or output record. Records without a usable id are keyed by ``where``
    (``line 7``), which is never the JSON text of any id: the two cannot collide."""
    if record.get("query_id") is None and record.get("where"):
        return str(record["where"])
    return _key(record.get("query_id"))


def _id_problem(query_id: Any) -> Optional[str]:
    """Why a query_id cannot be written back exactly as given (valid UTF-8 JSON), or ``None``."""
    try:
        json.dumps(query_id, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8, or a lone surrogate escape (a ValueError too)
        return "query_id is not valid UTF-8 text"
    except ValueError:  # NaN, Infinity (1e999): not JSON
        return f"query_id {query_id!r} is not valid JSON (use a string or a finite number)"
    return None


def _resolve(obj: Any, base_dir: Path) -> Any:
    """Make relative image paths in mappings relative to the input file, not the cwd."""
    if isinstance(obj, Mapping) and isinstance(obj.get("image"), str):
        image = obj["image"]
        if not image.startswith(("data:", "http://", "https://")) and not Path(image).is_absolute():
            return {**obj, "image": str(base_dir / image)}
    return obj


def _raw_records(path: Path) -> Iterator[tuple[str, Any, Optional[str]]]:
    """(where, record or ``None``, problem) for each input record: ``line N`` or ``row N``."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        row = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            for record in batch.to_pylist():
                row += 1
                yield f"row {row}", record, None
        return
    check_readable_stream(path, "INPUT")
    # Bytes, line by line, of bounded length: an endless line fails its own record, not the
    # machine. Decoded leniently: a record with bytes that are not UTF-8 keeps its readable
    # query_id and gets those bytes as its error.
    with path.open("rb") as fh:
        for line in raw_lines(fh):
            where = f"line {line.number}"
            if line.data is None:
                yield where, None, line.too_long()
                continue
            text, bad_bytes = decode(line.data)
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except (ValueError, RecursionError) as exc:  # RecursionError: [[[[...]]]] nested too deep
                reason = f"not JSON: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else "not JSON: nested too deep"
                yield where, None, "; ".join(filter(None, (bad_bytes, reason)))
                continue
            yield where, record, bad_bytes


def read_queries(path: str | Path) -> list[dict[str, Any]]:
    """Group the input into query payloads ``{query_id, query, candidates}`` or ``{query_id, error}``.

    A record that cannot be used gets a payload with ``error`` (written as such, never dropped).
    One without a usable ``query_id`` is ``{query_id: None, where: "line 7", error}``: keyed
    apart from every user id, so it can never take a user's query's place.
    """
    path = Path(path)
    base_dir = path.resolve().parent
    grouped: dict[str, dict[str, Any]] = {}
    for where, record, problem in _raw_records(path):
        query_id: Any = record.get("query_id") if isinstance(record, Mapping) else None
        id_problem = _id_problem(query_id) if query_id is not None else None
        if record is None:
            problem = problem or "expected an object, got null"
        elif not isinstance(record, Mapping):
            problem = f"expected an object, got {type(record).__name__}"
        elif query_id is None:
            problem = "; ".join(filter(None, (problem, "no query_id")))
        elif id_problem is not None:
            query_id, problem = None, "; ".join(filter(None, (problem, id_problem)))
        if query_id is None:
            grouped[where] = {"query_id": None, "where": where, "error": f"{where}: {problem}"}
            continue
        if problem is None:
            if "candidates" in record and record["candidates"] is not None:
                candidates = record["candidates"]
                if not isinstance(candidates, (list, tuple)):
                    problem = f"'candidates' must be a list, got {type(candidates).__name__}"
            elif "candidate" in record:
                candidates = [record["candidate"]]
            else:
                problem = "no 'candidates' (list) or 'candidate'"
            if problem is None and "query" not in record:
                problem = "no query"
        key = _key(query_id)
        entry = grouped.setdefault(key, {"query_id": query_id, "candidates": []})
        if "error" in entry:
            continue
        if problem is not None:
            grouped[key] = {"query_id": query_id, "error": f"{where}: {problem}"}
            continue
        query = _resolve(record["query"], base_dir)
        if "query" in entry and entry["query"] != query:
            grouped[key] = {"query_id": query_id, "error": f"{where}: query_id {query_id!r} appears with different queries"}
            continue
        entry["query"] = query
        entry["candidates"].extend(_resolve(c, base_dir) for c in candidates)
    return list(grouped.values())


def read_done(path: Path) -> set[str]:
    """Keys of the query_ids already in OUTPUT; a truncated last line (a crash) is cut off.

    Only a regular file is read: a stream (pipe, ``/dev/stdout``, a device) has nothing to resume
    and reading it would block or never end.
    """
    if stream_kind(path) is not None or not path.exists():
        return set()
    done: set[str] = set()
    good_end = 0
    with path.open("rb") as fh:
        offset = 0
        for line in raw_lines(fh):
            offset += line.size
            if not line.ended:
                break  # written partly when the process died: redo that query
            try:
                if line.data is not None:  # None: over the line limit, corrupt
                    done.add(_record_key(json.loads(line.data)))
            except (ValueError, TypeError, AttributeError, RecursionError):
                pass  # a corrupt complete line is left alone; its query is redone
            good_end = offset
    if good_end < path.stat().st_size:
        with path.open("r+b") as fh:
            fh.truncate(good_end)
    return done


# --------------------------------------------------------------------------- scoring
def score_payloads(reranker: Any, payloads: Sequence[Mapping[str, Any]], options: ScoreOptions) -> list[dict[str, Any]]:
    """Score query payloads into output records. The one scoring path of both modes.

    The queries share forward passes (``rerank_many``); each gets exactly its own results.
    """
    out: list[Optional[dict[str, Any]]] = [None] * len(payloads)
    calls: list[dict[str, Any]] = []
    slots: list[int] = []
    for i, p in enumerate(payloads):
        if "error" in p:
            out[i] = dict(p)  # {query_id, error} (+ where)
            continue
        calls.append({"query": p["query"], "documents": list(p["candidates"]), "instruction": options.instruction})
        slots.append(i)
    if calls:
        try:
            answers: list[Any] = reranker.rerank_many(calls, batch_size=options.batch_size)
        except Exception:  # noqa: BLE001 - a shared pass failed (e.g. out of memory): one query at a time
            answers = []
            for call in calls:
                try:
                    answers.append(reranker.rerank(**call, batch_size=options.batch_size))
                except Exception as one:  # noqa: BLE001 - written as that query's error
                    answers.append(one)
        for i, answer in zip(slots, answers):
            qid = payloads[i]["query_id"]
            if isinstance(answer, Exception):
                out[i] = {"query_id": qid, "error": f"{type(answer).__name__}: {answer}"}
                continue
            results = []
            for r in answer:
                score = float(r.score)
                item: dict[str, Any] = {"index": r.index, "score": score if math.isfinite(score) else None, "rank": r.rank}
                if r.error or not math.isfinite(score):
                    item["error"] = r.error or f"score is not a finite number ({score})"
                results.append(item)
            out[i] = {"query_id": qid, "results": results}
    return [o for o in out if o is not None]


class _RayScorer:
    """A Ray Data actor: loads one reranker, then scores batches of JSON payloads."""

    def __init__(self, spec: RerankerConfig, options: ScoreOptions) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.reranker = load_reranker(spec)
        self.options = options

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        payloads = [json.loads(p) for p in batch["payload"]]
        lines = [json.dumps(r) for r in score_payloads(self.reranker, payloads, self.options)]  # ASCII: any text crosses Arrow
        return {"line": np.asarray(lines, dtype=object)}


# --------------------------------------------------------------------------- writing
class _Writer:
    """Appends whole lines, flushed one by one, and keeps the counts and progress.

    ``durable``: fsync now and then (a regular file, to resume from); a stream is only flushed.
    """

    def __init__(self, fh: TextIO, summary: BatchSummary, total: int, progress: Optional[Callable[[str], None]],
                 durable: bool = True) -> None:
        self.fh = fh
        self.durable = durable
        self.summary = summary
        self.total = total
        self.progress = progress
        self.started = time.perf_counter()
        self.last_report = self.started

    def write(self, record: Mapping[str, Any]) -> None:
        try:
            line = json.dumps(record, ensure_ascii=False, allow_nan=False)
        except ValueError as exc:  # a guard: every line written is JSON, whatever got into a record
            kept = {k: record[k] for k in ("query_id", "where") if k in record}  # its key, for resume
            record = {**kept, "error": f"result not representable as JSON: {exc}"}
            line = json.dumps(record, ensure_ascii=False)
        with self._reporting_errors():
            self.fh.write(line + "\n")
            self.fh.flush()
        self.summary.queries += 1
        if "error" in record:
            self.summary.query_errors += 1
        else:
            self.summary.pairs += len(record["results"])
            self.summary.pair_errors += sum(1 for r in record["results"] if r.get("error"))
        now = time.perf_counter()
        if self.progress is not None and now - self.last_report >= PROGRESS_EVERY_S:
            self.last_report = now
            if self.durable:
                with self._reporting_errors():
                    os.fsync(self.fh.fileno())
            rate = self.summary.pairs / (now - self.started)
            self.progress(
                f"lychee batch: {self.summary.queries}/{self.total} queries, {self.summary.pairs} pairs, "
                f"{rate:.1f} pairs/s, {self.summary.errors} errors"
            )


    def finish(self) -> None:
        with self._reporting_errors():
            self.fh.flush()
            if self.durable:
                os.fsync(self.fh.fileno())

    @contextmanager
    def _reporting_errors(self) -> Iterator[None]:
        """/dev/full, a closed pipe, a full disk: one line naming OUTPUT, not a traceback."""
        try:
            yield
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write OUTPUT {self.summary.output}: {exc.strerror or exc}") from exc


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_batch(
    input_path: str | Path,
    output_path: str | Path,
    spec: RerankerConfig = RerankerConfig(),
    options: ScoreOptions = ScoreOptions(),
    *,
    local: bool = False,
    concurrency: int = 1,
    num_gpus_per_actor: float = 0.0,
    num_cpus_per_actor: float = 1.0,
    queries_per_batch: int = 16,
    ray_address: Optional[str] = None,
    progress: Optional[Callable[[str], None]] = None,
    reranker: Any = None,
) -> BatchSummary:
    """Score INPUT into OUTPUT, resuming where an earlier run stopped. Returns the summary.

    ``local=True`` scores in this process (``reranker`` may be handed in); otherwise Ray Data
    runs ``concurrency`` actors, each holding one reranker and ``num_gpus_per_actor`` GPUs.
    Ray is initialised when needed (``ray_address`` or ``$RAY_ADDRESS``, else a local instance).
    """
    input_path, output_path = Path(input_path), Path(output_path)
    to_parquet = output_path.suffix.lower() in (".parquet", ".pq")
    stream = stream_kind(output_path)
    if stream is not None and (to_parquet or stream == "directory"):
        raise ValueError(f"OUTPUT {output_path} is a {stream}: a {'Parquet ' if to_parquet else ''}OUTPUT must be a regular file")
    jsonl_path = output_path.with_name(output_path.name + ".partial.jsonl") if to_parquet else output_path
    started = time.perf_counter()
    summary = BatchSummary(output=str(output_path), mode="local" if local else f"ray x{concurrency}")

    done = read_done(jsonl_path)  # empty for a stream: nothing to resume
    if to_parquet and output_path.exists():
        done |= _parquet_done(output_path)
    payloads = read_queries(input_path)
    pending = [p for p in payloads if _record_key(p) not in done]
    summary.skipped = len(payloads) - len(pending)
    if progress is not None:
        pairs = sum(len(p.get("candidates", ())) for p in pending)
        progress(f"lychee batch: {len(pending)} queries ({pairs} pairs) to score, {summary.skipped} already done")

    if stream is None:
        jsonl_path.parent.mkdir(parents=True, exist_ok=True)
    # A stream is opened for writing ("a" would seek), a file for appending (resume).
    fh = jsonl_path.open("w" if stream else "a", encoding="utf-8", errors="backslashreplace")
    try:
        writer = _Writer(fh, summary, len(pending), progress, durable=stream is None)
        if pending:
            if local:
                rr = reranker if reranker is not None else load_reranker(spec)
                for chunk in _chunks(pending, queries_per_batch):
                    for record in score_payloads(rr, chunk, options):
                        writer.write(record)
            else:
                for line in _ray_lines(pending, spec, options, concurrency, num_gpus_per_actor, num_cpus_per_actor,
                                       queries_per_batch, ray_address):
                    writer.write(json.loads(line))
        writer.finish()
    finally:
        try:
            fh.close()
        except OSError:  # the write that failed already raised, naming OUTPUT
            pass
    if to_parquet:
        _write_parquet(jsonl_path, output_path)
    summary.seconds = time.perf_counter() - started
    if progress is not None:
        progress(summary.line())
    return summary


def _ray_lines(
    pending: Sequence[Mapping[str, Any]], spec: RerankerConfig, options: ScoreOptions, concurrency: int,
    num_gpus: float, num_cpus: float, queries_per_batch: int, ray_address: Optional[str],
) -> Iterator[str]:
    """Output lines as actors finish them (streaming: a crash keeps what was written)."""
    import ray

    ensure_ray(ray_address)
    items = [{"payload": json.dumps(p)} for p in pending]  # ASCII: a lone surrogate escape in a text crosses Arrow too
    # At least one block per actor, else the pool idles; at most one batch per block.
    blocks = max(1, min(len(items), max(concurrency, math.ceil(len(items) / queries_per_batch)), 4096))
    ds = ray.data.from_items(items, override_num_blocks=blocks)
    scored = ds.map_batches(
        _RayScorer,
        fn_constructor_kwargs={"spec": spec, "options": options},
        batch_size=queries_per_batch,
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_gpus=num_gpus or None,
        num_cpus=num_cpus,
        batch_format="numpy",
    )
    for row in scored.iter_rows():
        yield row["line"]


def ensure_ray(address: Optional[str] = None, num_cpus: Optional[int] = None) -> None:
    """Join the cluster at ``address`` (or ``$RAY_ADDRESS``), else start a quiet local instance."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False


# --------------------------------------------------------------------------- parquet
def _parquet_done(path: Path) -> set[str]:
    """The keys already in a Parquet OUTPUT, from its id columns alone (not every result row)."""
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    columns = [c for c in ("query_id", "query_id_json", "where") if c in names]
    keys = set()
    for row in pq.read_table(path, columns=columns).to_pylist():
        exact = row.pop("query_id_json", None)  # the id as given, where Parquet could not hold it
        if exact is not None:
            row["query_id"] = json.loads(exact)
        keys.add(_record_key(row))
    return keys


def _write_parquet(jsonl_path: Path, output_path: Path) -> None:
    """Fold the sidecar (and an earlier Parquet OUTPUT) into OUTPUT, atomically, then drop the sidecar."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    if output_path.exists():
        for row in pq.read_table(output_path).to_pylist():
            exact = row.pop("query_id_json", None)
            if exact is not None:
                row["query_id"] = json.loads(exact)
            rows.append(row)
    with jsonl_path.open("r", encoding="utf-8") as fh:
        rows.extend(json.loads(line) for line in fh if line.strip())
    result_type = pa.list_(pa.struct([("index", pa.int64()), ("score", pa.float64()), ("rank", pa.int64()), ("error", pa.string())]))
    ids = [r.get("query_id") for r in rows]
    columns: dict[str, Any] = {}
    try:
        columns["query_id"] = pa.array(ids)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types (1 and "a"): strings, plus the exact ids
        columns["query_id"] = pa.array([None if q is None else str(q) for q in ids])
    columns["results"] = pa.array([r.get("results") for r in rows], type=result_type)
    columns["error"] = pa.array([r.get("error") for r in rows], type=pa.string())
    if any(q is not None and not isinstance(q, str) for q in ids) and pa.types.is_string(columns["query_id"].type):
        columns["query_id_json"] = pa.array([None if q is None else _key(q) for q in ids], type=pa.string())
    if any(r.get("where") for r in rows):  # records without a usable query_id: where they were
        columns["where"] = pa.array([r.get("where") for r in rows], type=pa.string())
    table = pa.table(columns)
    tmp = output_path.with_name(output_path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, output_path)
    jsonl_path.unlink()


def read_output(path: str | Path) -> list[dict[str, Any]]:
    """The records of a finished OUTPUT (JSONL or Parquet), for tests and downstream code."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        for row in rows:
            exact = row.pop("query_id_json", None)
            if exact is not None:
                row["query_id"] = json.loads(exact)
            if row.get("where") is None:
                row.pop("where", None)
            if row.get("error") is None:
                row.pop("error", None)
                row["results"] = [{k: v for k, v in r.items() if not (k == "error" and v is None)} for r in row["results"]]
            else:
                row.pop("results", None)
        return rows
    with path.open("r", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
