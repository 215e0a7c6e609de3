"""Gallery logic: upload decoding, winner emphasis, the result card."""

from __future__ import annotations

from lychee_rerank.results import RerankResult
from lychee_rerank.ui.i18n import STRINGS, default_language, t
from lychee_rerank.ui.logic import card_html, decode_upload, evidence_of, winner_emphasis

from ..conftest import make_photo, png_bytes


def _r(index, score, rank, **kw):
    return RerankResult(index=index, score=score, rank=rank, document=None, raw_score=score, **kw)


def test_decode_upload_good_and_corrupt():
    good = decode_upload("cat.png", png_bytes(make_photo(50, 40, 1)))
    assert good.error is None and good.content.source == "cat.png" and good.thumbnail_uri.startswith("data:image/jpeg")
    bad = decode_upload("broken.png", b"not an image")
    assert bad.content is None and "not a supported image" in bad.error and "<bytes>" not in bad.error
    assert decode_upload("cat.png", png_bytes(make_photo(50, 40, 1))).digest == good.digest


def test_winner_emphasis_reflects_the_margin():
    assert winner_emphasis([_r(0, 0.9, 1), _r(1, 0.2, 2)]) == 1.0
    assert winner_emphasis([_r(0, 0.50, 1), _r(1, 0.49, 2)]) < 0.1
    mid = winner_emphasis([_r(0, 0.6, 1), _r(1, 0.5, 2)])
    assert 0.4 < mid < 0.6
    assert winner_emphasis([_r(0, 0.3, 1)]) == 1.0
    assert winner_emphasis([_r(0, 0.0, 1, error="bad")]) == 0.0


def test_card_marks_winner_with_gold_border_scaled_by_emphasis():
    labels = {"rank": "Rank", "score": "Score", "near_tie": "≈ near tie"}
    strong = card_html(_r(0, 0.9, 1, source="a<b>.png"), "data:x", "data:y", winner=True, emphasis=1.0, labels=labels)
    faint = card_html(_r(0, 0.9, 1, tie=True), "data:x", "data:y", winner=True, emphasis=0.0, labels=labels)
    plain = card_html(_r(1, 0.2, 2), "data:x", "data:y", winner=False, emphasis=1.0, labels=labels)
    assert "lychee-winner" in strong and "6px solid rgba(212,175,55,1.00)" in strong
    assert "2px solid rgba(212,175,55,0.35)" in faint and "near tie" in faint
    assert "lychee-winner" not in plain and "212,175,55" not in plain
    assert "a&lt;b&gt;.png" in strong  # file names are escaped
    assert "<details>" in strong  # click to see the full-size image


def test_evidence_for_model_and_lite_results():
    assert evidence_of(_r(0, 0.7, 1, yes_logit=1.0, no_logit=-1.0))["yes_logit"] == 1.0
    lite = evidence_of(_r(0, 0.7, 1, evidence={"tags": ["espresso"]}))
    assert lite["tags"] == ["espresso"] and "yes_logit" not in lite


def test_every_string_has_both_languages_and_language_default():
    assert all({"en", "zh"} <= set(v) for v in STRINGS.values())
    assert t("analysing", "zh", done=3, total=50) == "正在分析 3/50…"
    assert default_language("zh-CN") == "zh" and default_language("en-US") == "en" and default_language(None) == "en"
    assert default_language("zh-CN", "en") == "en"
