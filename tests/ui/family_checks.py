"""The UI checks every family's UI test runs (tests/ui/test_<family>.py) on a ``model_app``: the
footer, the gallery's cards, batch text's table and single analysis's metrics against the library
(the yardstick reranker), and the errors of inputs a family refuses; and the gallery end to end in
a real browser. Each family module gives its own checkpoint, inputs and expectations."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest

from ..qwen3_vl_support import spread
from .conftest import open_mode
from ..serving.conftest import png, server_photo

#: The text families' batch documents (English and Chinese) and queries, and the pictures they refuse.
QUERY = "What is the capital of China?"
QUERY_ZH = "中国的首都是哪里？"
TEXTS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "北京是中国的首都。",
         "一只黑猫趴在窗台上，旁边有一杯咖啡。", "stock market report"]
PICTURES = [png(server_photo(64, 48, seed=21)), png(server_photo(90, 60, seed=22))]
TEMPLATE = "text_to_image"  # a built-in template, chosen in the sidebar


def errors(app) -> list[str]:
    return [e.value for e in app.error]


def cards(app) -> dict[str, tuple[int, float]]:
    """{upload name: (rank, score)} from the gallery cards' data attributes (score to 6 decimals)."""
    out = {}
    for html in app.get("html"):
        body = html.proto.body
        if 'class="lychee-card' in body:
            name = body.split('data-name="', 1)[1].split('"', 1)[0]
            rank = int(body.split('data-rank="', 1)[1].split('"', 1)[0])
            out[name] = (rank, float(body.split('data-score="', 1)[1].split('"', 1)[0]))
    return out


def assert_footer(app, family: str, model_dir: Path) -> str:
    """The app started cleanly and its footer names the backend, family, checkpoint, device and
    dtype; returns the captions (a family's notice stands under the footer)."""
    assert not app.exception
    captions = " ".join(c.value for c in app.caption)
    assert f"Backend lychee · family {family} · model {model_dir} · cpu · float32" in captions
    return captions


def uploads(paths: list[Path]) -> list[tuple[str, bytes, str]]:
    return [(p.name, p.read_bytes(), "image/png") for p in paths]


def rerank_gallery(app, query: str) -> None:
    app.sidebar.text_area(key="query").input(query)
    app.sidebar.button(key="rerank").click().run()
    assert not app.exception


def assert_cards(app, files: list[tuple[str, bytes, str]], expected: list) -> None:
    """One card a file, each with the library's rank and score (the card rounds to 6 decimals)."""
    shown = cards(app)
    assert len(shown) == len(files)
    for r in expected:
        rank, score = shown[files[r.index][0]]
        assert rank == r.rank and score == pytest.approx(r.score, abs=1e-6)


def check_gallery(app, reranker: Any, files: list[tuple[str, bytes, str]], query: str, min_spread: float,
                  no_errors: bool = False) -> list:
    """The gallery (``files`` uploaded) ranked for ``query`` as the library ranks them with the
    family's default instruction; returns the library's results."""
    rerank_gallery(app, query)
    if no_errors:
        assert not errors(app)
    expected = reranker.rerank(query, [data for _, data, _ in files])
    assert spread([r.score for r in expected]) > min_spread
    assert_cards(app, files, expected)
    return expected


def check_gallery_template(app, reranker: Any, files: list[tuple[str, bytes, str]], query: str, default: list,
                           template: str) -> None:
    """A named template from the sidebar reaches the model as the library's ``template=``
    (``default``: the library's results without it)."""
    app.sidebar.selectbox(key="preset").set_value(template).run()
    app.sidebar.button(key="rerank").click().run()
    assert not app.exception
    before = {r.index: r.score for r in default}
    expected = reranker.rerank(query, [data for _, data, _ in files], template=template)
    assert max(abs(r.score - before[r.index]) for r in expected) > 1e-6  # the template was read
    assert_cards(app, files, expected)


def assert_table(app, expected: list, no_errors: bool = False) -> None:
    """Batch text's table: the library's order and scores (4 decimals)."""
    assert not app.exception
    if no_errors:
        assert not errors(app)
    table = app.dataframe[0].value
    assert list(table["Document"]) == [r.document for r in expected]  # the library's order
    assert list(table["Score"]) == pytest.approx([round(r.score, 4) for r in expected], abs=1e-9)  # 4 decimals
    if no_errors:
        assert not any(table["Error"])


def check_batch_text(app, reranker: Any, query: str, texts: list[str], min_spread: Optional[float] = None,
                     no_errors: bool = False) -> None:
    """Batch text ranks ``texts`` for ``query`` as the library does (the family's default instruction)."""
    app.text_input(key="batch_query").input(query)
    app.text_area(key="batch_docs").input("\n".join(texts))
    app.button(key="rank_texts").click().run()
    expected = reranker.rerank(query, texts)
    if min_spread is not None:
        assert max(r.score for r in expected) - min(r.score for r in expected) > min_spread
    assert_table(app, expected, no_errors=no_errors)


def check_batch_text_template(app, reranker: Any, query: str, texts: list[str], template: str, read: bool) -> None:
    """A named template from the sidebar: the library's ``template=`` where the family ``read``s
    instructions (the scores change), otherwise accepted and changing nothing."""
    app.sidebar.selectbox(key="preset").set_value(template).run()
    app.button(key="rank_texts").click().run()
    if read:
        default = {r.document: r.score for r in reranker.rerank(query, texts)}
        expected = reranker.rerank(query, texts, template=template)
        assert max(abs(r.score - default[r.document]) for r in expected) > 1e-6  # the template was read
    else:
        expected = reranker.rerank(query, texts)
    assert_table(app, expected)


def check_text_family_batch(app, reranker: Any, family: str, model_dir: Path, min_spread: float,
                            template_read: bool) -> None:
    """A text family's footer, then batch text in English and Chinese as the library ranks it (the
    family's default instruction), then with ``TEMPLATE`` chosen (``template_read``: the scores change)."""
    assert_footer(app, family, model_dir)
    open_mode(app, "Batch text")
    for query in (QUERY, QUERY_ZH):
        check_batch_text(app, reranker, query, TEXTS, min_spread=min_spread, no_errors=True)
    check_batch_text_template(app, reranker, QUERY_ZH, TEXTS, TEMPLATE, read=template_read)


def analyse(app, query: str, text: Optional[str] = None, image: Optional[bytes] = None, no_errors: bool = False) -> None:
    """Single analysis of ``query`` against a document of ``text`` and/or ``image``."""
    open_mode(app, "Single analysis")
    app.text_area(key="single_query").input(query)
    if text is not None:
        app.text_area(key="single_doc").input(text)
    if image is not None:
        app.file_uploader(key="single_doc_image").set_value(("d.png", image, "image/png")).run()
    app.button(key="analyse").click().run()
    assert not app.exception
    if no_errors:
        assert not errors(app), errors(app)


def assert_metrics(app, lib: Any, instruction: Optional[str] = None, logits: bool = True,
                   no_logit: Optional[float] = None) -> None:
    """Single analysis shows the library's result ``lib``: the instruction used (where the family
    has one), the score (4 decimals), the yes and no logits (``no_logit``: a family's constant)."""
    if instruction is not None:
        assert f"Instruction used: {instruction}" in [c.value for c in app.caption]  # the family's own
    metrics = {m.label: m.value for m in app.metric}
    assert float(metrics["Score"]) == pytest.approx(lib.score, abs=1e-4)  # shown to 4 decimals
    if logits:
        assert float(metrics["yes logit"]) == pytest.approx(lib.yes_logit, abs=1e-3)
        assert float(metrics["no logit"]) == pytest.approx(lib.no_logit if no_logit is None else no_logit, abs=1e-3)


def assert_refused(app, reason: str) -> None:
    """Analyse again: an error naming ``reason``, and no score."""
    app.button(key="analyse").click().run()
    assert not app.exception
    assert any(reason in e for e in errors(app)), errors(app)
    assert not app.metric


def check_text_only_analysis(app, reranker: Any, reason: str, instruction: Optional[str] = None, logits: bool = True,
                             pictures: list[bytes] = PICTURES) -> None:
    """A text family's single analysis: a Chinese pair scored as the library scores it; an image
    document, then an image query, each an error naming ``reason`` and no score."""
    analyse(app, QUERY_ZH, text=TEXTS[2], no_errors=True)
    assert_metrics(app, reranker.rerank(QUERY_ZH, [TEXTS[2]])[0], instruction=instruction, logits=logits)

    app.file_uploader(key="single_doc_image").set_value(("d.png", pictures[0], "image/png")).run()
    assert_refused(app, reason)  # an image document

    app.file_uploader(key="single_doc_image").set_value([]).run()
    app.file_uploader(key="single_query_image").set_value(("q.png", pictures[1], "image/png")).run()
    assert_refused(app, reason)  # an image query


def check_gallery_refused(app, reason: str, pictures: list[bytes] = PICTURES) -> None:
    """Gallery uploads a family cannot read: each an error naming the file and ``reason``, no card."""
    files = [(f"p{i}.png", data, "image/png") for i, data in enumerate(pictures)]
    app.file_uploader(key="gallery").set_value(files).run()
    rerank_gallery(app, QUERY)
    shown = errors(app)
    assert len([e for e in shown if reason in e]) == len(files), shown
    for name, _, _ in files:
        assert any(f"Skipped {name}:" in e and reason in e for e in shown), shown
    assert not [h for h in app.get("html") if 'class="lychee-card' in h.proto.body]  # no score shown for an image


def check_gallery_in_browser(model_dir: Path, pngs: list[Path], reranker: Any, family: str, tmp_path: Path,
                             notice: Optional[str] = None) -> None:
    """``lychee ui`` in a real headless Chromium (no --family: the app finds it in config.json): the
    footer names the family (and ``notice`` is on the page), and the gallery's cards, read from
    the page, carry the library's ranks and scores."""
    from . import drive
    from .browser import browser_page, chromium_path, running_ui

    assert chromium_path(), "Debian's chromium is required (scripts/setup.sh --browser installs it)"
    ui = running_ui("--backend", "lychee", "--model", str(model_dir), "--lang", "en", log=tmp_path / "ui.log")
    with ui as url, browser_page(1400, 1000) as page:
        page.goto(url)
        page.get_by_role("button", name="Rerank").wait_for(timeout=180_000)
        page.get_by_text(f"family {family}").wait_for(timeout=60_000)
        footer = page.get_by_text(f"family {family}").inner_text()
        assert f"Backend lychee · family {family} · model {model_dir}" in footer
        if notice is not None:
            page.get_by_text(notice).first.wait_for(timeout=60_000)
        # Upload first and wait until the app has them: a Rerank click racing the upload's rerun
        # would find no images (test_browser's flow waits on its refused files instead).
        page.locator(".st-key-gallery input[type=file]").set_input_files([str(p) for p in pngs])
        page.get_by_text(drive.t("uploads", "en", n=len(pngs))).wait_for(timeout=120_000)
        seen = drive.rank_gallery(page, "en", [], {}, watch_progress=False)
    query = drive.GALLERY_QUERY["en"]
    expected = reranker.rerank(query, [p.read_bytes() for p in pngs])
    shown = {c["name"]: (c["rank"], c["score"]) for c in seen["cards"]}
    assert len(shown) == len(pngs)
    for r in expected:
        rank, score = shown[pngs[r.index].name]
        assert rank == r.rank and score == pytest.approx(r.score, abs=1e-6)
