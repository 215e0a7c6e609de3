"""UI strings in English and Chinese; the app looks every label up here."""

from __future__ import annotations

import re

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
    "model_default": {"en": "model default", "zh": "模型默认"},
    "custom_instruction": {"en": "Custom instruction", "zh": "自定义指令"},
    "top_k": {"en": "Top-k", "zh": "返回前 k 个"},
    "threshold": {"en": "Score threshold (0–1)", "zh": "分数阈值（0–1）"},
    "rerank": {"en": "Rerank / 开始重排序", "zh": "开始重排序 / Rerank"},
    "upload": {
        "en": "Drop images here (jpg, png, webp, bmp, gif, tif), with optional photo.txt captions",
        "zh": "拖入图片（jpg、png、webp、bmp、gif、tif），可附带 photo.txt 说明文字",
    },
    "uploaded": {"en": "{n} image(s) ready", "zh": "已就绪 {n} 张图片"},
    "bad_file": {"en": "Skipped {name}: {error}", "zh": "已跳过 {name}：{error}"},
    "need_query": {"en": "Type a query or add a query image first.", "zh": "请先输入查询或上传查询图片。"},
    "need_images": {"en": "Upload at least one image.", "zh": "请至少上传一张图片。"},
    "analysing": {"en": "Analysing image {done}/{total}…", "zh": "正在分析第{done}/{total}张…"},
    "results": {"en": "Results", "zh": "结果"},
    "results_for": {"en": "Results for “{query}”", "zh": "“{query}”的结果"},
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
    "status": {"en": "Backend {backend} · family {family} · model {model} · {device} · {dtype} · attention {attn}", "zh": "后端 {backend} · 模型家族 {family} · 模型 {model} · {device} · {dtype} · 注意力 {attn}"},
    "gpu_memory": {"en": "GPU memory: {used:.2f} GiB in use, {reserved:.2f} GiB reserved", "zh": "显存：已用 {used:.2f} GiB，保留 {reserved:.2f} GiB"},
    "error": {"en": "Error", "zh": "错误"},
    "document": {"en": "Document", "zh": "文档"},
    "template_text": {"en": "Template text (read-only)", "zh": "模板内容（只读）"},
    "mode_single_hint": {
        "en": "Query and document are on the page; only the instruction applies here.",
        "zh": "查询和文档在页面中填写；此处只需选择指令。",
    },
    "mode_batch_hint": {"en": "Query and documents are on the page.", "zh": "查询和文档在页面中填写。"},
    "uploads": {"en": "Uploaded images ({n}) and captions", "zh": "已上传图片（{n}）及说明文字"},
    "captions_help": {
        "en": "Captions: a photo.txt uploaded with photo.jpg is its caption, the same sidecar file the CLI "
        "reads next to a photo (else the photo's EXIF description). Type or edit one per image below; "
        "an empty box means no caption.",
        "zh": "说明文字：与 photo.jpg 一起上传的 photo.txt 即为其说明，与命令行读取照片旁同名 .txt 文件的方式相同"
        "（否则使用照片的 EXIF 描述）。也可在下方为每张图片输入或修改；留空表示没有说明。",
    },
    "caption_for": {"en": "Caption", "zh": "说明文字"},
    "caption_placeholder": {"en": "no caption", "zh": "无说明"},
    "stale_results": {
        "en": "The images or captions changed since the last ranking: click Rerank.",
        "zh": "图片或说明文字已更改：请重新点击“开始重排序”。",
    },
    "view": {"en": "View", "zh": "查看大图"},
    "kept_query_image": {"en": "Query image: {name}", "zh": "查询图片：{name}"},
    "remove": {"en": "Remove", "zh": "移除"},
    "viewer_title": {"en": "Image viewer", "zh": "图片查看"},
    "full_resolution": {"en": "Full resolution {w}×{h} px", "zh": "原始分辨率 {w}×{h} 像素"},
    "raw_record": {"en": "Raw record", "zh": "原始记录"},
    "ev_text": {"en": "text match", "zh": "文本匹配"},
    "ev_tags": {"en": "tags", "zh": "标签"},
    "ev_ocr": {"en": "OCR", "zh": "文字识别"},
    "ev_colours": {"en": "colours", "zh": "颜色"},
    "ev_caption": {"en": "caption", "zh": "说明"},
    "ev_none": {"en": "no matching tag, text or colour", "zh": "没有匹配的标签、文字或颜色"},
    "refused_count": {"en": "{n} file(s) refused", "zh": "{n} 个文件未被接受"},
}

#: English error details (from :mod:`lychee_rerank.inputs`, the backends and the UI itself) and
#: their Chinese text, so a Chinese page never shows an English reason. First match wins;
#: ``{0}``, ``{1}`` are the pattern's groups, kept as they are (sizes, file names, details).
ERROR_TRANSLATIONS: list[tuple[str, str]] = [
    (r"not a supported image \(could not identify the format\)", "不是受支持的图片格式（无法识别）"),
    (r"empty image data", "图片数据为空"),
    (r"corrupt or truncated image \((.*)\)", "图片已损坏或不完整（{0}）"),
    (r"refused as a decompression bomb \((.*)\)", "疑似解压炸弹，已拒绝（{0}）"),
    (r"(?:.* )?is ([\d,]+) bytes, over the limit of ([\d,]+) \(max_image_bytes\)", "文件大小 {0} 字节，超过上限 {1} 字节"),
    (r"(?:.* )?is (\d+x\d+) = ([\d,]+) pixels, over the limit of ([\d,]+) \(max_image_pixels\)",
     "图片为 {0}（{1} 像素），超过上限 {2} 像素"),
    (r"(?:.* )?has no pixels \((.*)\)", "图片没有像素（{0}）"),
    (r"query is empty: give text, an image, or both", "查询为空：请输入文字、上传图片或两者都给"),
    (r"a \.txt file is read only as the caption of an image with the same name: no image named (.+) was uploaded",
     ".txt 文件只作为同名图片的说明文字读取：没有上传名为 {0} 的图片"),
    (r"caption file over ([\d,]+) bytes", "说明文件超过 {0} 字节"),
    (r"unsupported file type (\S+): expected an image \((.*)\) or a \.txt caption",
     "不支持的文件类型 {0}：需要图片（{1}）或 .txt 说明文件"),
    (r"image analysis failed: (.*)", "图片分析失败：{0}"),
    (r"scoring failed: (.*)", "评分失败：{0}"),
    (r"query could not be analysed: (.*)", "无法分析查询：{0}"),
]


def translate_error(message: str, lang: str) -> str:
    """An error detail in the page's language (English details are the source text)."""
    if lang != "zh":
        return message
    for pattern, zh in ERROR_TRANSLATIONS:
        match = re.fullmatch(pattern, message.strip(), flags=re.DOTALL)
        if match:
            return zh.format(*match.groups())
    return f"错误详情（英文）：{message}"


def t(key: str, lang: str, **kwargs: object) -> str:
    text = STRINGS[key].get(lang) or STRINGS[key]["en"]
    return text.format(**kwargs) if kwargs else text


def default_language(locale: str | None, flag: str | None = None) -> str:
    """The --lang flag wins; else the browser's locale; else English."""
    if flag in ("zh", "en"):
        return flag
    return "zh" if (locale or "").lower().startswith("zh") else "en"
