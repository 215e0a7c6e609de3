"""PP-OCRv4 (RapidOCR 1.4.4) reads drawn Chinese and English; text-free images skip recognition."""

from __future__ import annotations

from PIL import Image, ImageDraw

from lychee_rerank.backends.lite.ocr import Reader

from .conftest import blank


def _squash(text: str) -> str:
    return "".join(text.split()).lower()


def test_reads_a_drawn_chinese_and_an_english_line(cjk_font):
    image = Image.new("RGB", (900, 300), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 50), "欢迎光临山茶咖啡", font=cjk_font.get(48), fill="black")
    draw.text((40, 170), "Total 78.00 Thank you", font=cjk_font.get(48), fill="black")
    result = Reader().read(image)
    text = _squash(result.text)
    assert "欢迎光临山茶咖啡" in text, result.lines
    assert "total78.00thankyou" in text, result.lines
    assert all(0.6 <= line.confidence <= 1 for line in result.lines)


def test_text_in_a_large_image_is_read_after_downscaling(cjk_font):
    image = Image.new("RGB", (2400, 1350), (240, 240, 235))
    ImageDraw.Draw(image).text((200, 500), "禁止停车 NO PARKING", font=cjk_font.get(140), fill=(180, 10, 20))
    reader = Reader(det_side=640)
    text = _squash(reader.read(image).text)
    assert "禁止停车" in text and "noparking" in text


def test_recognition_is_skipped_when_detection_finds_nothing():
    reader = Reader()
    gradient = Image.linear_gradient("L").resize((640, 360)).convert("RGB")
    for image in (blank((255, 255, 255)), blank((30, 90, 200)), gradient):
        before = reader.recognitions
        result = reader.read(image)
        assert result.lines == [] and result.boxes == 0
        assert reader.recognitions == before  # the recogniser never ran
    assert reader._engine is not None  # ... though detection did (the engine was loaded and used)


def test_analysis_keeps_ocr_lines_and_snippet(analyses):
    receipt = analyses["receipt"]
    text = _squash(receipt.ocr_text)
    assert "山茶咖啡" in text and "latte" in text and "78.00" in text
    assert receipt.ocr_vector is not None and receipt.ocr_vector.shape == (384,)
    assert receipt.ocr_boxes >= len(receipt.ocr) >= 8
