"""The Streamlit app behind ``lychee ui``. Configuration comes from the environment that
``lychee ui`` sets: LYCHEE_UI_BACKEND, LYCHEE_MODEL, LYCHEE_FAMILY, LYCHEE_ADAPTER, LYCHEE_UI_LANG.

Scores come from the same ``LycheeReranker.rerank`` as the library, CLI and HTTP service, and
an upload is turned into the same document as the CLI's file (sidecar caption included).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import streamlit as st

from lychee_rerank.config import RerankerConfig
from lychee_rerank.engine import LycheeReranker
from lychee_rerank.inputs import InputError
from lychee_rerank.lines import split_lines
from lychee_rerank.prompt import builtin_templates, resolve_instruction
from lychee_rerank.results import to_csv, to_json
from lychee_rerank.ui.i18n import default_language, t, translate_error
from lychee_rerank.ui.logic import (
    CARD_CSS,
    CARDS_PER_ROW,
    IMAGE_TYPES,
    UploadSet,
    card_html,
    classify_uploads,
    decode_upload,
    digest,
    document_for,
    evidence_line,
    evidence_of,
    image_data_uri,
    winner_emphasis,
)

MODES = ("gallery", "single", "batch")
CUSTOM = "__custom__"
#: The preset that sends no instruction: the model family's own default (it differs by family).
MODEL_DEFAULT = "__model_default__"
#: Sidebar widgets that only some modes show. Streamlit forgets a widget's value when a run
#: does not draw it; re-assigning the value at the top of each run keeps it across mode switches.
KEPT_KEYS = ("query", "preset", "custom_instruction", "top_k", "threshold")


@st.cache_resource(show_spinner="Loading the reranker…")
def get_reranker(config: RerankerConfig) -> LycheeReranker:
    """Loaded once per process (per config), not per click."""
    return LycheeReranker.from_config(config)


def keep_widget_state() -> None:
    state = st.session_state
    for key in KEPT_KEYS:
        if key in state:
            state[key] = state[key]
    state.setdefault("top_k", 12)
    state.setdefault("threshold", 0.0)


def relabel_mode() -> None:
    """The tabs' state is the open tab's label; keep the same mode when the language changes."""
    state = st.session_state
    new = state.get("lang", "en")
    for mode in MODES:
        if state.get("mode") in (t(f"tab_{mode}", "en"), t(f"tab_{mode}", "zh")):
            state["mode"] = t(f"tab_{mode}", new)
            return


def remember_preset() -> None:
    """Choosing "custom…" starts from the template that was selected, not from an empty box."""
    state = st.session_state
    if state.get("preset") == CUSTOM and not (state.get("custom_instruction") or "").strip():
        previous = state.get("last_template")
        default = state.get("default_instruction", "")
        state["custom_instruction"] = builtin_templates().get(previous, default) if previous else default


def instruction_controls(lang: str, default_instruction: str) -> dict:
    """The instruction preset; the first one is the model's own default (``default_instruction``)."""
    templates = builtin_templates()
    names = [MODEL_DEFAULT, *templates, CUSTOM]
    labels = {CUSTOM: t("custom", lang), MODEL_DEFAULT: t("model_default", lang)}
    st.session_state.setdefault("preset", names[0])
    preset = st.selectbox(
        t("instruction", lang), names, key="preset", on_change=remember_preset, format_func=lambda n: labels.get(n, n),
    )
    if preset == CUSTOM:
        custom = st.text_area(t("custom_instruction", lang), key="custom_instruction", height=120)
        instruction = custom if custom and custom.strip() else None
        return {"instruction": instruction, "template": None if instruction else st.session_state.get("last_template")}
    st.session_state["last_template"] = preset
    text = default_instruction if preset == MODEL_DEFAULT else templates[preset]
    st.text_area(t("template_text", lang), value=text, disabled=True, height=100, key=f"template_text_{preset}")
    return {"instruction": None, "template": None if preset == MODEL_DEFAULT else preset}


def sidebar(lang: str, mode: str, default_instruction: str) -> dict:
    """Only the open mode's controls: the gallery's query and ranking settings stay with the gallery."""
    opts: dict = {"go": False, "query": "", "query_image": None, "top_k": int(st.session_state["top_k"]),
                  "threshold": float(st.session_state["threshold"])}
    with st.sidebar:
        if mode == "gallery":
            opts["query"] = st.text_area(t("query", lang), key="query", height=80)
            opts["query_image"] = query_image_control(lang)
        elif mode == "single":
            st.caption(t("mode_single_hint", lang))
        else:
            st.caption(t("mode_batch_hint", lang))
        opts.update(instruction_controls(lang, default_instruction))
        if mode in ("gallery", "batch"):
            opts["top_k"] = int(st.number_input(t("top_k", lang), min_value=1, max_value=500, key="top_k"))
            opts["threshold"] = float(st.slider(t("threshold", lang), 0.0, 1.0, step=0.01, key="threshold"))
        if mode == "gallery":
            opts["go"] = st.button(t("rerank", lang), type="primary", key="rerank", width="stretch")
    return opts


def query_input(text: str, image_file):
    if image_file is not None:
        return {"text": text or None, "image": image_file.getvalue()}
    return text


@dataclass(frozen=True)
class KeptImage:
    """The gallery's query image, kept by the app: Streamlit empties an uploader that a run
    does not draw, so switching to another mode and back would otherwise lose it."""

    name: str
    data: bytes = field(repr=False)

    def getvalue(self) -> bytes:
        return self.data


def query_image_control(lang: str):
    state = st.session_state
    uploaded = st.file_uploader(t("query_image", lang), type=IMAGE_TYPES, key="query_image")
    kept = state.get("kept_query_image")
    if uploaded is not None:
        state["kept_query_image"] = KeptImage(uploaded.name, uploaded.getvalue())
        state["query_image_reset"] = False
        return uploaded
    if kept is not None and (state.get("query_image_reset") or state.get("previous_mode") != "gallery"):
        state["query_image_reset"] = True  # emptied by a mode switch, not by the user
        c1, c2 = st.columns([3, 1], vertical_alignment="center")
        c1.caption(t("kept_query_image", lang, name=kept.name))
        c2.button("✕", key="drop_query_image", help=t("remove", lang), on_click=drop_query_image)
        return kept
    drop_query_image()
    return None


def drop_query_image() -> None:
    """Removed by the user (a callback, so the run that follows no longer shows it)."""
    st.session_state.pop("kept_query_image", None)
    st.session_state["query_image_reset"] = False


def classified_uploads(files) -> UploadSet:
    """Decode each upload once; reruns (new query, new threshold) reuse the cached result."""
    cache: dict = st.session_state.setdefault("decoded", {})

    def decode(name: str, data: bytes):
        key = (name, len(data), hash(data))
        if key not in cache:
            cache[key] = decode_upload(name, data)
        return cache[key]

    return classify_uploads([(f.name, f.getvalue()) for f in files], decode)


def caption_key(upload, sidecar: str | None) -> str:
    # A new sidecar for the same photo starts the box again from the sidecar's text.
    return f"caption_{upload.digest[:16]}_{digest(sidecar.encode())[:8] if sidecar else 0}"


def gallery_tab(rr: LycheeReranker, lang: str, opts: dict) -> None:
    files = st.file_uploader(t("upload", lang), type=None, accept_multiple_files=True, key="gallery")
    uploads = classified_uploads(files or [])
    for refused in uploads.refused:
        st.error(t("bad_file", lang, name=refused.name, error=translate_error(refused.reason, lang)), icon=":material/error:")
    good = uploads.images
    stored = st.session_state.get("gallery_results")
    captions: list[str] = []
    if good:
        with st.expander(t("uploads", lang, n=len(good)), expanded=stored is None, key=f"preview_{stored is None}"):
            st.caption(t("captions_help", lang))
            for start in range(0, len(good), 6):
                cols = st.columns(6)
                for col, u in zip(cols, good[start:start + 6]):
                    key = caption_key(u, uploads.sidecars.get(u.name))
                    st.session_state.setdefault(key, uploads.default_caption(u))
                    with col:
                        st.image(u.thumbnail_uri, caption=u.name, width="stretch")
                        captions.append(st.text_area(f"{t('caption_for', lang)} · {u.name}", key=key, height=68,
                                                     placeholder=t("caption_placeholder", lang), label_visibility="collapsed"))
    signature = [(u.digest, (c or "").strip()) for u, c in zip(good, captions)]

    if opts["go"]:
        if not (opts["query"] or "").strip() and opts["query_image"] is None:
            st.warning(t("need_query", lang))
        elif not good:
            st.warning(t("need_images", lang))
        else:
            bar = st.progress(0.0, text=t("analysing", lang, done=0, total=len(good)))
            try:
                results = rr.rerank(
                    query_input(opts["query"], opts["query_image"]),
                    [document_for(u, c) for u, c in zip(good, captions)],
                    instruction=opts["instruction"], template=opts["template"], top_k=opts["top_k"],
                    score_threshold=opts["threshold"] or None, batch_size=8,
                    progress=lambda d, n: bar.progress(d / n, text=t("analysing", lang, done=d, total=n)),
                )
            except (InputError, ValueError) as exc:
                bar.empty()
                st.error(f"{t('error', lang)}: {translate_error(str(exc), lang)}")
                return
            bar.empty()
            label = (opts["query"] or "").strip() or (opts["query_image"].name if opts["query_image"] else "")
            st.session_state["gallery_results"] = stored = (results, signature, label)
            st.rerun()  # draw the page again with the preview collapsed and the results first
    if stored:
        results, used, label = stored
        if used == signature:
            show_gallery_results(results, dict(enumerate(good)), lang, label)
        elif good:
            st.info(t("stale_results", lang))


def show_viewer(result, upload, lang: str) -> None:
    """A real viewer: the image at full resolution with its rank, score and evidence."""

    def body() -> None:
        w, h = upload.content.image.size
        # Encoded here, for the one image opened: every upload held a full-size copy before.
        full = image_data_uri(upload.content.image, max_size=None)
        st.html(
            f'<div class="lychee-viewer" style="max-height:70vh;overflow:auto;text-align:center">'
            f'<img class="lychee-full" src="{full}" alt="{upload.name}" data-width="{w}" data-height="{h}" '
            f'style="max-width:100%"></div>'
        )
        st.markdown(f"**{t('rank', lang)} {result.rank}** · {t('score', lang)} **{result.score:.4f}** · `{upload.name}`")
        st.caption(t("full_resolution", lang, w=w, h=h))
        line = evidence_line(result, lang)
        if line:
            st.write(line)
        with st.expander(t("raw_record", lang)):
            st.json(evidence_of(result))

    st.dialog(t("viewer_title", lang), width="large")(body)()


def show_gallery_results(results, uploads: dict, lang: str, query: str) -> None:
    st.subheader(t("results_for", lang, query=query) if query else t("results", lang))
    ranked = [r for r in results if r.error is None]
    for r in results:
        if r.error is not None:
            st.error(t("bad_file", lang, name=r.source or f"#{r.index}", error=translate_error(r.error, lang)))
    if not ranked:
        st.info(t("no_results", lang))
    emphasis = winner_emphasis(results)
    labels = {k: t(k, lang) for k in ("rank", "score", "near_tie")}
    st.html(CARD_CSS)
    # Row by row in rank order: ranks 1-4 in the first row, 5-8 in the second...
    for start in range(0, len(ranked), CARDS_PER_ROW):
        cols = st.columns(CARDS_PER_ROW)
        for col, r in zip(cols, ranked[start:start + CARDS_PER_ROW]):
            upload = uploads[r.index]
            with col:
                st.html(card_html_for(r, upload, r is ranked[0], emphasis, labels, lang))
                if st.button(t("view", lang), key=f"view_{r.rank}", icon=":material/zoom_in:", width="stretch"):
                    show_viewer(r, upload, lang)
                with st.expander(t("raw_record", lang)):
                    st.json(evidence_of(r), expanded=False)
    c1, c2 = st.columns(2)
    c1.download_button(t("download_csv", lang), to_csv(results), "lychee-results.csv", "text/csv")
    c2.download_button(t("download_json", lang), to_json(results), "lychee-results.json", "application/json")


def card_html_for(r, upload, winner: bool, emphasis: float, labels: dict, lang: str) -> str:
    return card_html(r, upload.thumbnail_uri, winner=winner, emphasis=emphasis, labels=labels, evidence=evidence_line(r, lang))


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
            instruction = resolve_instruction(opts["instruction"], opts["template"]) or rr.backend.default_instruction
        except (InputError, ValueError) as exc:
            st.error(f"{t('error', lang)}: {translate_error(str(exc), lang)}")
            return
        if result.error:
            st.error(f"{t('error', lang)}: {translate_error(result.error, lang)}")
            return
        m1, m2, m3 = st.columns(3)
        m1.metric(t("score", lang), f"{result.score:.4f}")
        if result.yes_logit is not None:
            m2.metric(t("yes_logit", lang), f"{result.yes_logit:.3f}")
            m3.metric(t("no_logit", lang), f"{result.no_logit:.3f}")
        st.caption(f"{t('instruction_used', lang)}: {instruction}")
        line = evidence_line(result, lang)
        if line:
            st.markdown(f"{t('evidence', lang)}: {line}")
        with st.expander(t("raw_record", lang)):
            st.json(evidence_of(result))


def batch_tab(rr: LycheeReranker, lang: str, opts: dict) -> None:
    query = st.text_input(t("query", lang), key="batch_query")
    lines = st.text_area(t("documents", lang), key="batch_docs", height=200)
    if st.button(t("rank_texts", lang), key="rank_texts"):
        docs = [line.strip() for line in split_lines(lines or "") if line.strip()]  # a U+2028 stays in its line
        if not (query or "").strip():
            st.warning(t("need_query", lang))
            return
        if not docs:
            st.warning(t("need_documents", lang))
            return
        results = rr.rerank(query, docs, instruction=opts["instruction"], template=opts["template"],
                            top_k=opts["top_k"], score_threshold=opts["threshold"] or None)
        rows = [{t("rank", lang): r.rank, t("score", lang): round(r.score, 4), "≈": "≈" if r.tie else "",
                 t("document", lang): r.document, t("evidence", lang): evidence_line(r, lang),
                 t("error", lang): translate_error(r.error, lang) if r.error else ""} for r in results]
        st.dataframe(rows, width="stretch", hide_index=True)
        st.download_button(t("download_csv", lang), to_csv(results), "lychee-batch.csv", "text/csv", key="batch_csv")


def footer_family(info: dict) -> str:
    """The checkpoint family the footer names; a backend without families (lite) by its own name."""
    return str(info.get("family") or info.get("backend"))


def footer(rr: LycheeReranker, lang: str) -> None:
    info = rr.info
    st.divider()
    st.caption(t("status", lang, backend=info.get("backend"), family=footer_family(info), model=info.get("model"),
                 device=info.get("device"), dtype=info.get("dtype"), attn=info.get("attn_implementation")))
    if info.get("note"):
        st.caption(str(info["note"]))
    if str(info.get("device", "")).startswith("cuda"):
        import torch

        gib = 1024**3
        st.caption(t("gpu_memory", lang, used=torch.cuda.memory_allocated() / gib, reserved=torch.cuda.memory_reserved() / gib))


def open_mode(tabs) -> str:
    for mode, tab in zip(MODES, tabs):
        if tab.open:
            return mode
    return MODES[0]


def main() -> None:
    st.set_page_config(page_title="lychee-rerank", page_icon="🍒", layout="wide")
    keep_widget_state()
    locale = getattr(getattr(st, "context", None), "locale", None)
    default = default_language(locale, os.environ.get("LYCHEE_UI_LANG"))
    with st.sidebar:
        lang = st.radio("中文 / English", ["zh", "en"], index=0 if default == "zh" else 1, horizontal=True,
                        format_func=lambda x: "中文" if x == "zh" else "English", key="lang", on_change=relabel_mode)
    st.title(t("title", lang))
    rr = get_reranker(RerankerConfig(
        backend=os.environ.get("LYCHEE_UI_BACKEND", "auto"), model=os.environ.get("LYCHEE_MODEL") or None,
        family=os.environ.get("LYCHEE_FAMILY") or None, adapter=os.environ.get("LYCHEE_ADAPTER") or None,
    ))
    # Stateful tabs: the sidebar shows only the open mode's controls. Every tab's page is still
    # drawn, so uploads and typed text survive a switch.
    tabs = st.tabs([t(f"tab_{m}", lang) for m in MODES], key="mode", on_change="rerun")
    mode = open_mode(tabs)
    st.session_state["default_instruction"] = rr.backend.default_instruction
    opts = sidebar(lang, mode, rr.backend.default_instruction)
    st.session_state["previous_mode"] = mode
    with tabs[0]:
        gallery_tab(rr, lang, opts)
    with tabs[1]:
        single_tab(rr, lang, opts)
    with tabs[2]:
        batch_tab(rr, lang, opts)
    footer(rr, lang)


main()
