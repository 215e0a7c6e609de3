"""Gallery logic: upload decoding, winner emphasis, the result card."""

from __future__ import annotations

from lychee_rerank.results import RerankResult
from lychee_rerank.ui.i18n import ERROR_TRANSLATIONS, STRINGS, default_language, t, translate_error
from lychee_rerank.ui.logic import (
    card_html,
    classify_uploads,
    decode_upload,
    document_for,
    evidence_line,
    evidence_of,
    winner_emphasis,
)

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
    strong = card_html(_r(0, 0.9, 1, source="a<b>.png"), "data:x", winner=True, emphasis=1.0, labels=labels)
    faint = card_html(_r(0, 0.9, 1, tie=True), "data:x", winner=True, emphasis=0.0, labels=labels)
    plain = card_html(_r(1, 0.2, 2), "data:x", winner=False, emphasis=1.0, labels=labels, evidence="tags <cup>")
    assert "lychee-winner" in strong and "6px solid rgba(212,175,55,1.00)" in strong
    assert "2px solid rgba(212,175,55,0.35)" in faint and "near tie" in faint
    assert "lychee-winner" not in plain and "212,175,55" not in plain
    assert "a&lt;b&gt;.png" in strong  # file names are escaped
    assert 'title="Rank 2 | Score 0.2000"' in plain and '<div class="lychee-hover">Rank 2 | Score 0.2000</div>' in plain
    assert '<div class="lychee-evidence" title="tags &lt;cup&gt;">tags &lt;cup&gt;</div>' in plain
    assert '<div class="lychee-thumb"><img src="data:x"' in plain  # the same box for every thumbnail


def test_evidence_for_model_and_lite_results():
    assert evidence_of(_r(0, 0.7, 1, yes_logit=1.0, no_logit=-1.0))["yes_logit"] == 1.0
    lite = evidence_of(_r(0, 0.7, 1, evidence={"tags": ["espresso"]}))
    assert lite["tags"] == ["espresso"] and "yes_logit" not in lite


def test_every_string_has_both_languages_and_language_default():
    assert all({"en", "zh"} <= set(v) for v in STRINGS.values())
    assert t("analysing", "zh", done=3, total=50) == "正在分析第3/50张…"
    assert t("analysing", "en", done=3, total=50) == "Analysing image 3/50…"
    assert default_language("zh-CN") == "zh" and default_language("en-US") == "en" and default_language(None) == "en"
    assert default_language("zh-CN", "en") == "en"


LITE_EVIDENCE = {
    "backend": "lite",
    "matched_tags": [{"label": "coffee 咖啡", "prob": 0.94, "match": 0.95}, {"label": "espresso", "prob": 0.93, "match": 0.93},
                     {"label": "cup", "prob": 0.02, "match": 0.5}],
    "ocr_match": "山茶咖啡 CAMELLIA COFFEE 上海市静安区南京西路1266号",
    "query_colours": ["red"],
    "colours": [{"name": "orange", "zh": "橙色", "share": 0.5}, {"name": "red", "zh": "红色", "share": 0.2}],
    "caption": "Official portrait of NASA astronaut Eileen Collins",
    "channels": {"tags": 0.95},
}


def test_evidence_line_is_one_readable_line():
    lite = _r(0, 0.7, 1, evidence=LITE_EVIDENCE)
    assert evidence_line(lite, "en") == (
        "tags coffee 咖啡, espresso · OCR “山茶咖啡 CAMELLIA COFFEE 上海市静安区…” · colours orange, red"
        " · caption “Official portrait of NASA a…”"
    )
    assert evidence_line(lite, "zh").startswith("标签 coffee 咖啡, espresso · 文字识别 “山茶咖啡") and "颜色 橙色, 红色" in evidence_line(lite, "zh")
    no_colour_query = _r(0, 0.7, 1, evidence={**LITE_EVIDENCE, "query_colours": []})
    assert "colours" not in evidence_line(no_colour_query, "en")  # colours only when the query asked for one
    assert evidence_line(_r(0, 0.7, 1, yes_logit=2.3141, no_logit=-1.05), "en") == "yes 2.31 · no -1.05"
    assert evidence_line(_r(0, 0.1, 1, evidence={"backend": "lite", "matched_tags": []}), "en") == "no matching tag, text or colour"
    assert evidence_line(_r(0, 0.0, 1, error="bad"), "en") == ""
    text_doc = _r(0, 0.9, 1, evidence={"backend": "lite", "channels": {"text": 0.912}, "query": "text"})
    assert evidence_line(text_doc, "en") == "text match 0.91" and evidence_line(text_doc, "zh") == "文本匹配 0.91"


def test_uploads_are_sorted_like_the_cli_reads_a_folder():
    photo = png_bytes(make_photo(60, 40, 2))
    files = [
        ("cat.png", photo), ("cat.txt", "  a black cat\r\non a sill \n".encode()), ("notes.txt", b"hello"),
        ("broken.jpg", b"\xff\xd8 not really"), ("report.pdf", b"%PDF-1.7"), ("dog.jpg", png_bytes(make_photo(30, 30, 3), "JPEG")),
        ("dog.txt", b"x" * (64 * 1024 + 1)),
    ]
    got = classify_uploads(files)
    assert [u.name for u in got.images] == ["cat.png", "dog.jpg"]
    assert got.sidecars == {"cat.png": "a black cat\non a sill"}
    reasons = {r.name: r.reason for r in got.refused}
    assert set(reasons) == {"notes.txt", "broken.jpg", "report.pdf", "dog.txt"}
    assert "no image named notes.* was uploaded" in reasons["notes.txt"]
    assert "unsupported file type .pdf" in reasons["report.pdf"]
    assert "not a supported image" in reasons["broken.jpg"] or "corrupt" in reasons["broken.jpg"]
    assert "caption file over 65,536 bytes" in reasons["dog.txt"]
    cat, dog = got.images
    assert got.default_caption(cat) == "a black cat\non a sill" and got.default_caption(dog) == ""
    assert document_for(cat, "  typed  ").caption == "typed" and document_for(cat, "").caption is None
    assert document_for(cat, "x").image_hash == cat.content.image_hash


def test_every_refusal_and_input_error_has_a_chinese_text():
    from lychee_rerank.inputs import ImageLimits

    photo = png_bytes(make_photo(60, 40, 2))
    messages = [r.reason for r in classify_uploads([
        ("notes.txt", b"x"), ("report.pdf", b"%PDF"), ("broken.png", b"nope"), ("empty.png", b""),
        ("cut.png", photo[:80]), ("dog.png", photo), ("dog.txt", b"x" * 70000),
    ]).refused]
    messages.append(decode_upload("big.png", photo, ImageLimits(max_pixels=100)).error)
    messages.append(decode_upload("heavy.png", photo, ImageLimits(max_bytes=10)).error)
    messages += ["query is empty: give text, an image, or both", "image analysis failed: boom"]
    for message in messages:
        zh = translate_error(message, "zh")
        assert not zh.startswith("错误详情（英文）"), message
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)
    assert translate_error("something new", "zh") == "错误详情（英文）：something new"
    assert translate_error("empty image data", "en") == "empty image data"
    assert len(ERROR_TRANSLATIONS) >= 10


def test_the_image_uploaders_accept_every_format_the_library_reads():
    """The query and single-pair uploaders had their own list, without TIFF."""
    from lychee_rerank.inputs import SUPPORTED_IMAGE_SUFFIXES
    from lychee_rerank.ui.logic import IMAGE_TYPES

    assert {f".{kind}" for kind in IMAGE_TYPES} == set(SUPPORTED_IMAGE_SUFFIXES) and "tiff" in IMAGE_TYPES
