"""The Streamlit app behind ``lychee ui``. Configuration comes from the environment that
``lychee ui`` sets: LYCHEE_UI_BACKEND, LYCHEE_MODEL, LYCHEE_ADAPTER, LYCHEE_UI_LANG.

Scores come from the same ``LycheeReranker.rerank`` as the library, CLI and HTTP service.
"""

from __future__ import annotations

import os

import streamlit as st

from lychee_rerank.engine import LycheeReranker
from lychee_rerank.inputs import InputError
from lychee_rerank.prompt import builtin_templates, resolve_instruction
from lychee_rerank.results import to_csv, to_json
from lychee_rerank.ui.i18n import default_language, t
from lychee_rerank.ui.logic import card_html, decode_upload, evidence_of, winner_emphasis

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]


@st.cache_resource(show_spinner="Loading the reranker…")
def get_reranker(backend: str, model: str | None, adapter: str | None) -> LycheeReranker:
    """Loaded once per process, not per click."""
    kwargs = {"adapter": adapter} if adapter else {}
    return LycheeReranker.load(backend=backend, model=model or None, **kwargs)


def decoded_uploads(files) -> list:
    """Decode each upload once; reruns (new query, new threshold) reuse the cached result."""
    cache: dict = st.session_state.setdefault("decoded", {})
    out = []
    for f in files:
        key = (f.name, f.size, getattr(f, "file_id", None))
        if key not in cache:
            cache[key] = decode_upload(f.name, f.getvalue())
        out.append(cache[key])
    return out


def sidebar(lang: str) -> dict:
    templates = builtin_templates()
    with st.sidebar:
        query = st.text_area(t("query", lang), key="query", height=80)
        query_image = st.file_uploader(t("query_image", lang), type=IMAGE_TYPES, key="query_image")
        names = list(templates) + ["__custom__"]
        preset = st.selectbox(
            t("instruction", lang), names, key="preset",
            format_func=lambda n: t("custom", lang) if n == "__custom__" else n,
        )
        custom = st.text_area(t("custom_instruction", lang), key="custom_instruction") if preset == "__custom__" else None
        top_k = st.number_input(t("top_k", lang), min_value=1, max_value=500, value=12, key="top_k")
        threshold = st.slider(t("threshold", lang), 0.0, 1.0, 0.0, 0.01, key="threshold")
        go = st.button(t("rerank", lang), type="primary", key="rerank", use_container_width=True)
    instruction = custom if preset == "__custom__" and custom and custom.strip() else None
    return {
        "query": query, "query_image": query_image, "template": None if instruction or preset == "__custom__" else preset,
        "instruction": instruction, "top_k": int(top_k), "threshold": float(threshold), "go": go,
    }


def query_input(text: str, image_file):
    if image_file is not None:
        return {"text": text or None, "image": image_file.getvalue()}
    return text


def gallery_tab(rr: LycheeReranker, lang: str, opts: dict) -> None:
    files = st.file_uploader(t("upload", lang), type=IMAGE_TYPES, accept_multiple_files=True, key="gallery")
    uploads = decoded_uploads(files or [])
    good = [u for u in uploads if u.content is not None]
    for u in uploads:
        if u.error:
            st.error(t("bad_file", lang, name=u.name, error=u.error), icon=":material/error:")
    if good:
        st.caption(t("uploaded", lang, n=len(good)))
        cols = st.columns(8)
        for i, u in enumerate(good):
            cols[i % 8].image(u.thumbnail_uri, caption=u.name, use_container_width=True)

    if opts["go"]:
        if not (opts["query"] or "").strip() and opts["query_image"] is None:
            st.warning(t("need_query", lang))
        elif not good:
            st.warning(t("need_images", lang))
        else:
            bar = st.progress(0.0, text=t("analysing", lang, done=0, total=len(good)))
            try:
                results = rr.rerank(
                    query_input(opts["query"], opts["query_image"]), [u.content for u in good],
                    instruction=opts["instruction"], template=opts["template"], top_k=opts["top_k"],
                    score_threshold=opts["threshold"] or None,
                    progress=lambda d, n: bar.progress(d / n, text=t("analysing", lang, done=d, total=n)),
                )
            except (InputError, ValueError) as exc:
                st.error(f"{t('error', lang)}: {exc}")
                return
            bar.empty()
            st.session_state["gallery_results"] = (results, [u.digest for u in good])
    stored = st.session_state.get("gallery_results")
    if stored:
        results, digests = stored
        by_index = dict(enumerate(good)) if [u.digest for u in good] == digests else None
        if by_index is not None:
            show_gallery_results(results, by_index, lang)


def show_gallery_results(results, uploads: dict, lang: str) -> None:
    st.subheader(t("results", lang))
    ranked = [r for r in results if r.error is None]
    if not ranked:
        st.info(t("no_results", lang))
    emphasis = winner_emphasis(results)
    labels = {k: t(k, lang) for k in ("rank", "score", "near_tie")}
    cols = st.columns(3)
    for pos, r in enumerate(ranked):
        upload = uploads[r.index]
        with cols[pos % 3]:
            st.html(card_html(r, upload.thumbnail_uri, upload.full_uri, winner=pos == 0, emphasis=emphasis, labels=labels))
            with st.expander(t("evidence", lang)):
                st.json(evidence_of(r))
    c1, c2 = st.columns(2)
    c1.download_button(t("download_csv", lang), to_csv(results), "lychee-results.csv", "text/csv")
    c2.download_button(t("download_json", lang), to_json(results), "lychee-results.json", "application/json")


def single_tab(rr: LycheeReranker, lang: str, opts: dict) -> None:
    c1, c2 = st.columns(2)
    with c1:
        q_text = st.text_area(t("query", lang), key="single_query")
        q_img = st.file_uploader(t("query_image", lang), type=IMAGE_TYPES, key="single_query_image")
    with c2:
        d_text = st.text_area(t("document_text", lang), key="single_doc")
        d_img = st.file_uploader(t("document_image", lang), type=IMAGE_TYPES, key="single_doc_image")
    if st.button(t("analyse", lang), key="analyse"):
        if not (q_text or "").strip() and q_img is None:
            st.warning(t("need_query", lang))
            return
        if not (d_text or "").strip() and d_img is None:
            st.warning(t("need_document", lang))
            return
        document = {"text": d_text or None, "image": d_img.getvalue()} if d_img is not None else d_text
        try:
            result = rr.rerank(query_input(q_text, q_img), [document], instruction=opts["instruction"], template=opts["template"])[0]
            instruction = resolve_instruction(opts["instruction"], opts["template"])
        except (InputError, ValueError) as exc:
            st.error(f"{t('error', lang)}: {exc}")
            return
        if result.error:
            st.error(result.error)
            return
        m1, m2, m3 = st.columns(3)
        m1.metric(t("score", lang), f"{result.score:.4f}")
        if result.yes_logit is not None:
            m2.metric(t("yes_logit", lang), f"{result.yes_logit:.3f}")
            m3.metric(t("no_logit", lang), f"{result.no_logit:.3f}")
        st.caption(f"{t('instruction_used', lang)}: {instruction}")
        with st.expander(t("evidence", lang)):
            st.json(evidence_of(result))


def batch_tab(rr: LycheeReranker, lang: str, opts: dict) -> None:
    query = st.text_input(t("query", lang), key="batch_query")
    lines = st.text_area(t("documents", lang), key="batch_docs", height=200)
    if st.button(t("rank_texts", lang), key="rank_texts"):
        docs = [line.strip() for line in (lines or "").splitlines() if line.strip()]
        if not (query or "").strip():
            st.warning(t("need_query", lang))
            return
        if not docs:
            st.warning(t("need_documents", lang))
            return
        results = rr.rerank(query, docs, instruction=opts["instruction"], template=opts["template"],
                            top_k=opts["top_k"], score_threshold=opts["threshold"] or None)
        rows = [{t("rank", lang): r.rank, t("score", lang): round(r.score, 4), "≈": "≈" if r.tie else "",
                 "document": r.document, "error": r.error or ""} for r in results]
        st.dataframe(rows, use_container_width=True, hide_index=True)
        st.download_button(t("download_csv", lang), to_csv(results), "lychee-batch.csv", "text/csv", key="batch_csv")


def footer(rr: LycheeReranker, lang: str) -> None:
    info = rr.info
    st.divider()
    st.caption(t("status", lang, backend=info.get("backend"), model=info.get("model"), device=info.get("device"),
                 dtype=info.get("dtype"), attn=info.get("attn_implementation")))
    if info.get("note"):
        st.caption(str(info["note"]))
    if str(info.get("device", "")).startswith("cuda"):
        import torch

        gib = 1024**3
        st.caption(t("gpu_memory", lang, used=torch.cuda.memory_allocated() / gib, reserved=torch.cuda.memory_reserved() / gib))


def main() -> None:
    st.set_page_config(page_title="lychee-rerank", page_icon="🍒", layout="wide")
    locale = getattr(getattr(st, "context", None), "locale", None)
    default = default_language(locale, os.environ.get("LYCHEE_UI_LANG"))
    with st.sidebar:
        lang = st.radio("中文 / English", ["zh", "en"], index=0 if default == "zh" else 1, horizontal=True,
                        format_func=lambda x: "中文" if x == "zh" else "English", key="lang")
    st.title(t("title", lang))
    rr = get_reranker(os.environ.get("LYCHEE_UI_BACKEND", "auto"), os.environ.get("LYCHEE_MODEL"), os.environ.get("LYCHEE_ADAPTER"))
    opts = sidebar(lang)
    gallery, single, batch = st.tabs([t("tab_gallery", lang), t("tab_single", lang), t("tab_batch", lang)])
    with gallery:
        gallery_tab(rr, lang, opts)
    with single:
        single_tab(rr, lang, opts)
    with batch:
        batch_tab(rr, lang, opts)
    footer(rr, lang)


main()
