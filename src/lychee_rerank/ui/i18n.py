"""UI strings in English and Chinese; the app looks every label up here."""

from __future__ import annotations

STRINGS: dict[str, dict[str, str]] = {
    "title": {"en": "lychee-rerank: multimodal reranking", "zh": "lychee-rerank 多模态重排序"},
    "tab_gallery": {"en": "Gallery ranking", "zh": "图文重排"},
    "tab_single": {"en": "Single analysis", "zh": "单条分析"},
    "tab_batch": {"en": "Batch text", "zh": "批量重排序"},
    "language": {"en": "Language", "zh": "语言"},
    "query": {"en": "Query (Chinese, English or mixed)", "zh": "查询（中文、英文或混合）"},
    "query_image": {"en": "Query image (optional)", "zh": "查询图片（可选）"},
    "instruction": {"en": "Instruction", "zh": "指令"},
    "custom": {"en": "custom…", "zh": "自定义…"},
    "custom_instruction": {"en": "Custom instruction", "zh": "自定义指令"},
    "top_k": {"en": "Top-k", "zh": "返回前 k 个"},
    "threshold": {"en": "Score threshold (0–1)", "zh": "分数阈值（0–1）"},
    "rerank": {"en": "Rerank / 开始重排序", "zh": "开始重排序 / Rerank"},
    "upload": {"en": "Drop images here (jpg, png, webp, bmp, gif)", "zh": "拖入图片（jpg、png、webp、bmp、gif）"},
    "uploaded": {"en": "{n} image(s) ready", "zh": "已就绪 {n} 张图片"},
    "bad_file": {"en": "Skipped {name}: {error}", "zh": "已跳过 {name}：{error}"},
    "need_query": {"en": "Type a query or add a query image first.", "zh": "请先输入查询或上传查询图片。"},
    "need_images": {"en": "Upload at least one image.", "zh": "请至少上传一张图片。"},
    "analysing": {"en": "Analysing {done}/{total}…", "zh": "正在分析 {done}/{total}…"},
    "results": {"en": "Results", "zh": "结果"},
    "no_results": {"en": "No image reaches the threshold.", "zh": "没有图片达到阈值。"},
    "rank": {"en": "Rank", "zh": "排名"},
    "score": {"en": "Score", "zh": "得分"},
    "near_tie": {"en": "≈ near tie", "zh": "≈ 接近并列"},
    "evidence": {"en": "Evidence", "zh": "依据"},
    "download_csv": {"en": "Download CSV", "zh": "下载 CSV"},
    "download_json": {"en": "Download JSON", "zh": "下载 JSON"},
    "document_text": {"en": "Document text", "zh": "文档文本"},
    "document_image": {"en": "Document image (optional)", "zh": "文档图片（可选）"},
    "analyse": {"en": "Analyse / 分析", "zh": "分析 / Analyse"},
    "need_document": {"en": "Give the document text or image.", "zh": "请提供文档文本或图片。"},
    "yes_logit": {"en": "yes logit", "zh": "yes 对数几率"},
    "no_logit": {"en": "no logit", "zh": "no 对数几率"},
    "instruction_used": {"en": "Instruction used", "zh": "使用的指令"},
    "documents": {"en": "Documents, one per line", "zh": "文档，每行一个"},
    "rank_texts": {"en": "Rank / 排序", "zh": "排序 / Rank"},
    "need_documents": {"en": "Give at least one document line.", "zh": "请至少输入一行文档。"},
    "status": {"en": "Backend {backend} · model {model} · {device} · {dtype} · attention {attn}", "zh": "后端 {backend} · 模型 {model} · {device} · {dtype} · 注意力 {attn}"},
    "gpu_memory": {"en": "GPU memory: {used:.2f} GiB in use, {reserved:.2f} GiB reserved", "zh": "显存：已用 {used:.2f} GiB，保留 {reserved:.2f} GiB"},
    "error": {"en": "Error", "zh": "错误"},
}


def t(key: str, lang: str, **kwargs: object) -> str:
    text = STRINGS[key].get(lang) or STRINGS[key]["en"]
    return text.format(**kwargs) if kwargs else text


def default_language(locale: str | None, flag: str | None = None) -> str:
    """The --lang flag wins; else the browser's locale; else English."""
    if flag in ("zh", "en"):
        return flag
    return "zh" if (locale or "").lower().startswith("zh") else "en"
