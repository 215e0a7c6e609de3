"""LycheeReranker.rerank: records, every input type, and bad input that loses nothing."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from lychee_rerank import Content, InputError, LycheeReranker, RerankResult, ScoringError
from lychee_rerank.inputs import ImageLimits

from .conftest import make_photo, png_bytes


def test_records_have_the_promised_fields(reranker, photos):
    results = reranker.rerank("a cat", ["a cat", photos[0]])
    assert all(isinstance(r, RerankResult) for r in results)
    fields = {f.name for f in dataclasses.fields(RerankResult)}
    assert {"index", "score", "rank", "document", "yes_logit", "no_logit", "tie", "error", "truncated"} <= fields
    assert [r.rank for r in results] == [1, 2]
    assert results[0].score >= results[1].score
    assert results[0].document in ("a cat", photos[0])  # the caller's own object comes back


def test_every_input_type_scores_like_the_pil_image(reranker, photos, image_files):
    path = image_files[0]
    from PIL import Image

    pil = Image.open(path).convert("RGB")
    data = path.read_bytes()
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    docs = [pil, path, data, uri, {"image": path}, Content(image=pil)]
    scores = [r.score for r in sorted(reranker.rerank("a cat", docs), key=lambda r: r.index)]
    assert max(scores) - min(scores) < 1e-6


def test_one_bad_document_among_good_ones_keeps_every_good_score(reranker, photos, tmp_path):
    good = ["a cat on a sill", photos[0], {"text": "red car", "image": photos[1]}, "coffee"]
    clean = {r.index: r.score for r in reranker.rerank("a cat", good, batch_size=3)}

    truncated_jpeg = png_bytes(make_photo(200, 200, 5), "JPEG")[:500]
    bomb = png_bytes(make_photo(200, 200, 6))
    bad = {
        1: b"not an image at all",  # corrupt
        3: truncated_jpeg,  # truncated
        5: 12345,  # unsupported type
        7: tmp_path / "missing.png",  # missing file
        8: "",  # empty document
    }
    mixed: list = []
    good_positions = {}
    g = iter(range(len(good)))
    for position in range(len(good) + len(bad)):
        if position in bad:
            mixed.append(bad[position])
        else:
            j = next(g)
            good_positions[position] = j
            mixed.append(good[j])
    mixed.append(bomb)  # over the pixel limit set below
    rr = LycheeReranker(reranker.backend, image_limits=ImageLimits(max_pixels=20_000))
    results = rr.rerank("a cat", mixed, batch_size=3)
    by_index = {r.index: r for r in results}
    assert sorted(by_index) == list(range(len(mixed)))
    for position, j in good_positions.items():
        assert by_index[position].error is None
        assert by_index[position].score == pytest.approx(clean[j], abs=1e-5)
    messages = {i: by_index[i].error for i in list(bad) + [len(mixed) - 1]}
    assert "not a supported image" in messages[1]
    assert "corrupt or truncated" in messages[3]
    assert "unsupported input type int" in messages[5]
    assert "image file not found" in messages[7]
    assert "document 8 is empty" in messages[8]
    assert "max_image_pixels" in messages[len(mixed) - 1]
    # failures sink to the bottom with score 0
    tail = results[-len(messages):]
    assert all(r.error and r.score == 0.0 for r in tail)


def test_empty_or_unusable_query_raises_a_clear_error(reranker):
    for bad in ("", "   ", {"text": ""}, {}):
        with pytest.raises(InputError, match="query is empty"):
            reranker.rerank(bad, ["doc"])
    with pytest.raises(InputError, match="not a supported image"):
        reranker.rerank(b"garbage", ["doc"])


def test_raise_on_error_raises_instead_of_reporting(reranker):
    with pytest.raises(InputError, match="not a supported image"):
        reranker.rerank("q", ["fine", b"bad"], raise_on_error=True)
    assert len(reranker.rerank("q", ["fine", b"bad"])) == 2


def test_raise_on_error_covers_scoring_failures(reranker, monkeypatch):
    def broken(batch, call):
        raise RuntimeError("boom")

    monkeypatch.setattr(reranker.backend, "_forward", broken)
    with pytest.raises(ScoringError, match="boom"):
        reranker.rerank("q", ["a"], raise_on_error=True)


def test_score_returns_one_float_and_equals_rerank(reranker, photos):
    s = reranker.score("a cat", photos[2])
    assert isinstance(s, float) and 0.0 <= s <= 1.0
    assert s == pytest.approx(reranker.rerank("a cat", [photos[2]])[0].score, abs=1e-7)
    with pytest.raises(InputError):
        reranker.score("a cat", b"bad")


def test_post_processing_options_reach_rerank(reranker):
    docs = [f"document {w}" for w in ("alpha", "beta", "gamma", "delta", "epsilon")]
    full = reranker.rerank("query", docs)
    top2 = reranker.rerank("query", docs, top_k=2)
    assert [r.index for r in top2] == [r.index for r in full[:2]]
    cut = full[2].score
    above = reranker.rerank("query", docs, score_threshold=cut)
    assert [r.index for r in above] == [r.index for r in full[:3]]
    ten = reranker.rerank("query", docs, scale=10)
    assert [round(r.score, 6) for r in ten] == [round(r.score * 10, 6) for r in full]
    norm = reranker.rerank("query", docs, normalize=True)
    assert norm[0].score == 1.0 and norm[-1].score == 0.0
    ties = reranker.rerank("query", docs, tie_epsilon=1.0)
    assert all(r.tie for r in ties)


def test_empty_document_list(reranker):
    assert reranker.rerank("q", []) == []


def test_rerank_many_gives_each_call_exactly_its_own_results(reranker, photos):
    calls = [
        {"query": "a cat", "documents": ["a black cat", photos[0], "coffee"]},
        {"query": "a cat", "documents": [photos[1], "dog"], "top_k": 1},  # same query: merged with the first
        {"query": photos[2], "documents": ["one", {"text": "two", "image": photos[3]}]},
        {"query": "", "documents": ["doc"]},  # a bad call fails alone
        {"query": "rockets", "documents": [b"garbage", "astronaut"], "scale": 10},
    ]
    before = reranker.backend.stats["coalesced_requests"]
    together = reranker.rerank_many(calls, batch_size=4)
    assert reranker.backend.stats["coalesced_requests"] > before
    assert isinstance(together[3], InputError)
    for call, got in zip(calls, together):
        if isinstance(got, Exception):
            continue
        kwargs = {k: v for k, v in call.items() if k not in ("query", "documents")}
        alone = reranker.rerank(call["query"], call["documents"], batch_size=4, **kwargs)
        assert [(r.index, r.error) for r in got] == [(r.index, r.error) for r in alone]
        tol = 1e-5 * call.get("scale", 1)  # the fidelity contract is 1e-5 on p(yes), before display scaling
        assert [r.score for r in got] == pytest.approx([r.score for r in alone], abs=tol)


def test_a_document_of_only_whitespace_or_zero_width_characters_is_empty(reranker):
    """The same rule as for the query: nothing visible, nothing to rank (it used to be scored)."""
    results = {r.index: r for r in reranker.rerank("a cat", ["a cat on a mat", " \u200b\n\t", "\ufeff\u200d"])}
    assert results[0].error is None
    for i in (1, 2):
        assert results[i].error and f"document {i} is empty" in results[i].error


# ----------------------------------------------------------------------------- construction (issue 21)


class _Captured(RuntimeError):
    """Raised by the stub factory with the config it was handed: nothing loads."""


@pytest.fixture()
def capture_create(monkeypatch):
    """``backends.create`` replaced: raises :class:`_Captured` with (config, options)."""
    from lychee_rerank import backends

    def create(config, *, notice=None, **options):
        raise _Captured(config, options)

    monkeypatch.setattr(backends, "create", create)


def _captured(call) -> tuple:
    with pytest.raises(_Captured) as caught:
        call()
    return caught.value.args


def test_from_pretrained_leaves_the_pixel_budget_to_the_family(capture_create):
    """No Qwen2.5-VL numbers written into the engine: ``None`` reaches the backend, which asks the family."""
    config, options = _captured(lambda: LycheeReranker.from_pretrained("some/model", family="qwen3_vl", max_doc_tokens=99))
    assert (config.backend, config.model, config.family) == ("lychee", "some/model", "qwen3_vl")
    assert (config.min_pixels, config.max_pixels, config.max_query_tokens) == (None, None, None)
    assert config.max_doc_tokens == 99 and options == {}


def test_keyword_arguments_are_routed_by_one_rule():
    """A RerankerConfig field configures (even one the constructor also takes: ``templates_file``),
    a constructor parameter goes to it, anything else is a backend option."""
    config, engine, options = LycheeReranker.route(
        {"device": "cpu", "family": "qwen3_vl", "templates_file": "t.json", "backend": "lite", "scale": 10.0,
         "tie_epsilon": 0.0, "image_limits": ImageLimits(1, 2), "cache_dir": "c", "ocr": False}
    )
    assert config == {"device": "cpu", "family": "qwen3_vl", "templates_file": "t.json", "backend": "lite"}
    assert engine == {"scale": 10.0, "tie_epsilon": 0.0, "image_limits": ImageLimits(1, 2)}
    assert options == {"cache_dir": "c", "ocr": False}


def test_from_config_applies_config_fields_given_by_name(capture_create):
    """They used to fall through to the backend's factory (a TypeError in the lite backend)."""
    from lychee_rerank.config import RerankerConfig

    config, options = _captured(
        lambda: LycheeReranker.from_config(RerankerConfig(backend="lite"), device="cpu", lite_cache_dir="/c", ocr=False)
    )
    assert (config.backend, config.device, config.lite_cache_dir) == ("lite", "cpu", "/c") and options == {"ocr": False}
