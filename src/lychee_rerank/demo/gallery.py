"""Build the example gallery: real photos from scikit-image plus text-bearing images drawn here.

    python -m lychee_rerank.demo.gallery OUT_DIR [--font FONT] [--install-font]

Nothing here is committed: the photos come from the ``scikit-image`` wheel (each with its own
licence, written to ``OUT_DIR/LICENSES.md``), and the receipt, signs, slide, ticket, menu and
notices are drawn with PIL from the text below. ``OUT_DIR/queries/`` holds a few derived
images used as image queries by the evaluation set (``examples/eval/gallery_eval.jsonl``).

Drawing Chinese needs a CJK font. Looked for, in order: ``--font`` or ``$LYCHEE_CJK_FONT``; the
PyPI package ``noto-cjk-sans-otc`` (Noto Sans CJK, OFL-1.1: ``pip install noto-cjk-sans-otc==0.0.1``);
``fc-match :lang=zh``; the usual system paths (Debian ``fonts-wqy-microhei``, ``fonts-noto-cjk``;
macOS PingFang; Windows Microsoft YaHei). ``--install-font`` pip-installs the PyPI package
when none is found.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ENV_FONT = "LYCHEE_CJK_FONT"
FONT_PACKAGE = "noto-cjk-sans-otc==0.0.1"
_SYSTEM_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)


class FontNotFound(RuntimeError):
    """No font with Chinese glyphs could be found."""


@dataclass(frozen=True)
class CJKFont:
    path: str
    index: int = 0

    def get(self, size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(self.path, size, index=self.index)


def find_cjk_font(explicit: str | os.PathLike[str] | None = None) -> CJKFont:
    """Locate a font that draws Chinese (see the module doc for the search order)."""
    candidates: list[str] = []
    if explicit:
        candidates.append(str(explicit))
    if os.environ.get(ENV_FONT):
        candidates.append(os.environ[ENV_FONT])
    try:
        from noto_cjk_sans_otc import FONT_PATH  # type: ignore[import-not-found]

        candidates.append(str(FONT_PATH))
    except ImportError:
        pass
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(
                ["fc-match", "-f", "%{file}", ":lang=zh-cn"], capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
            if out:
                candidates.append(out)
        except (OSError, subprocess.SubprocessError):
            pass
    candidates.extend(_SYSTEM_FONTS)
    for path in candidates:
        font = _usable(path)
        if font is not None:
            return font
    raise FontNotFound(
        "no font with Chinese glyphs found. Install one: "
        f"`pip install {FONT_PACKAGE}` (or `apt-get install fonts-wqy-microhei`), "
        f"or pass --font / set ${ENV_FONT}; `--install-font` does the pip install for you."
    )


def _usable(path: str) -> CJKFont | None:
    """The font (and, in a collection, the Simplified Chinese face) if it really has CJK glyphs."""
    if not path or not Path(path).is_file():
        return None
    best: CJKFont | None = None
    for index in range(12):
        try:
            face = ImageFont.truetype(path, 24, index=index)
        except OSError:
            break
        if not _has_cjk(face):
            continue
        family = " ".join(face.getname()).lower()
        if best is None:
            best = CJKFont(path, index)
        if " sc" in family or "simplified" in family or "microhei" in family or "zenhei" in family:
            return CJKFont(path, index)
    return best


def _has_cjk(face: ImageFont.FreeTypeFont) -> bool:
    """A font without the glyphs draws the same 'missing' box for every character."""
    masks = [bytes(face.getmask(ch)) for ch in ("中", "文", "字")]
    return all(masks) and len(set(masks)) == 3


def install_font() -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", FONT_PACKAGE], check=True)


# ----------------------------------------------------------------------------- photos
@dataclass(frozen=True)
class Photo:
    name: str
    loader: str
    """``skimage.data`` function (``stereo_motorcycle`` gives a pair: the left image is used)."""
    credit: str
    caption: str | None = None
    """Written as a same-name ``.txt`` sidecar (the way datasets ship captions)."""
    exif_caption: str | None = None
    """Written into the JPEG's EXIF ImageDescription instead."""


PHOTOS: tuple[Photo, ...] = (
    Photo(
        "astronaut.jpg",
        "astronaut",
        "Eileen Collins, NASA; public domain (NASA Great Images).",
        caption="Official portrait of NASA astronaut Eileen Collins in front of the US flag, 1999.",
    ),
    Photo("coffee.jpg", "coffee", "Rachel Michetti, courtesy of Pikolo Espresso Bar; CC0."),
    Photo("chelsea.jpg", "chelsea", "Stefan van der Walt (Chelsea the cat); CC0."),
    Photo("rocket.jpg", "rocket", "SpaceX, launch of DSCOVR on Falcon 9; released into the public domain."),
    Photo(
        "motorcycle.jpg",
        "stereo_motorcycle",
        "Middlebury 2014 stereo dataset (N. Nesic, P. Westling, X. Wang, Y. Kitajima, G. Krathwohl, "
        "D. Scharstein), down-sampled, as redistributed by scikit-image.",
    ),
    Photo("camera.jpg", "camera", "Lav Varshney ('cameraman' replacement); CC0."),
    Photo(
        "hubble.jpg",
        "hubble_deep_field",
        "NASA, Hubble eXtreme Deep Field; public domain.",
        exif_caption="Hubble eXtreme Deep Field: thousands of galaxies in deep space (NASA/ESA).",
    ),
    Photo(
        "coins.jpg", "coins", "Greek coins from Pompeii, Brooklyn Museum Collection; no known copyright restrictions."
    ),
    Photo("retina.jpg", "retina", "Mikael Häggström, fundus photograph of a normal left eye; CC0."),
    Photo(
        "ihc.jpg",
        "immunohistochemistry",
        "Center for Microscopy And Molecular Imaging (CMMI); no known copyright restrictions.",
    ),
    Photo("brick.jpg", "brick", "CC0Textures (Bricks25), transformed by scikit-image; CC0."),
    Photo("grass.jpg", "grass", "linolafett on DeviantArt (Grass-01), cropped by scikit-image; CC0."),
    Photo("gravel.jpg", "gravel", "CC0Textures (Gravel04), cropped by scikit-image; CC0."),
    Photo("clock.jpg", "clock", "Stefan van der Walt, motion-blurred wall clock; public domain."),
    Photo("cell.jpg", "cell", "Paul Müller et al., quantitative phase image of a cell; CC0."),
    Photo("handwriting.jpg", "text", "Wikipedia File:Corner.png (handwritten formulas); public domain."),
    Photo("horse.png", "horse", "Andreas Preuss (marauder), openclipart horse silhouette; CC0."),
)


def _load_photo(loader: str) -> Image.Image:
    import skimage.data

    data = getattr(skimage.data, loader)()
    if isinstance(data, tuple):
        data = data[0]
    arr = np.asarray(data)
    if arr.dtype == bool:
        arr = np.where(arr, 0, 255).astype(np.uint8)  # silhouette drawn black on white
    image = Image.fromarray(arr)
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, "white")
        background.paste(image, mask=image.split()[3])
        return background
    return image.convert("RGB")


def _save_photo(photo: Photo, out_dir: Path) -> None:
    image = _load_photo(photo.loader)
    target = out_dir / photo.name
    if target.suffix.lower() == ".png":
        image.save(target)
    else:
        exif = Image.Exif()
        if photo.exif_caption:
            exif[0x010E] = photo.exif_caption  # ImageDescription
        image.save(target, quality=92, exif=exif.tobytes())
    if photo.caption:
        target.with_suffix(".txt").write_text(photo.caption + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------- drawn images
def _canvas(size: tuple[int, int], colour: str | tuple[int, int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", size, colour)
    return image, ImageDraw.Draw(image)


def _centred(
    draw: ImageDraw.ImageDraw,
    y: int,
    text: str,
    font: ImageFont.FreeTypeFont,
    width: int,
    fill: str | tuple[int, int, int],
) -> None:
    w = draw.textlength(text, font=font)
    draw.text(((width - w) / 2, y), text, font=font, fill=fill)


def draw_receipt(font: CJKFont) -> Image.Image:
    image, d = _canvas((640, 960), (228, 228, 224))
    d.rectangle((60, 30, 580, 930), fill="white")
    f_big, f = font.get(36), font.get(24)
    _centred(d, 60, "山茶咖啡 CAMELLIA COFFEE", f_big, 640, "black")
    _centred(d, 115, "上海市静安区南京西路1266号", f, 640, "black")
    d.text((90, 170), "2026-03-14 09:42   收银员 Cashier: 03", font=f, fill="black")
    d.line((90, 215, 550, 215), fill="black", width=2)
    rows = [("拿铁 Latte (大杯)", "32.00"), ("美式咖啡 Americano", "28.00"), ("牛角包 Croissant", "18.00")]
    y = 240
    for item, price in rows:
        d.text((90, y), item, font=f, fill="black")
        d.text((470, y), price, font=f, fill="black")
        y += 50
    d.line((90, y + 5, 550, y + 5), fill="black", width=2)
    d.text((90, y + 30), "合计 TOTAL", font=f_big, fill="black")
    d.text((430, y + 30), "¥78.00", font=f_big, fill="black")
    d.text((90, y + 100), "微信支付 WeChat Pay      78.00", font=f, fill="black")
    _centred(d, y + 180, "谢谢惠顾  Thank you!", f, 640, "black")
    return image


def draw_street_sign(font: CJKFont) -> Image.Image:
    image, d = _canvas((1000, 640), (150, 190, 230))
    d.rectangle((480, 420, 520, 640), fill=(110, 110, 110))
    d.rounded_rectangle((100, 80, 900, 440), radius=24, fill=(0, 110, 60), outline="white", width=10)
    _centred(d, 120, "南京东路", font.get(110), 1000, "white")
    _centred(d, 260, "Nanjing Rd (E)", font.get(60), 1000, "white")
    _centred(d, 350, "外滩 The Bund  500 m  →", font.get(40), 1000, "white")
    return image


def draw_slide(font: CJKFont) -> Image.Image:
    image, d = _canvas((1280, 720), "white")
    d.rectangle((0, 0, 1280, 130), fill=(25, 60, 140))
    d.text((60, 20), "2026年第三季度销售报告", font=font.get(54), fill="white")
    d.text((60, 88), "Q3 2026 Sales Review", font=font.get(28), fill=(210, 220, 255))
    f = font.get(30)
    bullets = [
        "• 营收同比增长 18%  Revenue +18% YoY",
        "• 华东区贡献最大  East region leads",
        "• 下季度目标：新客户 500 家",
    ]
    for i, line in enumerate(bullets):
        d.text((60, 190 + i * 70), line, font=f, fill=(30, 30, 30))
    base, heights = 640, (120, 170, 150, 230)
    for i, h in enumerate(heights):
        x = 820 + i * 100
        d.rectangle((x, base - h, x + 60, base), fill=(40, 120, 200) if i < 3 else (240, 140, 30))
        d.text((x + 8, base + 10), f"Q{i + 1}", font=font.get(22), fill=(60, 60, 60))
    return image


def draw_no_parking(font: CJKFont) -> Image.Image:
    image, d = _canvas((720, 900), (235, 235, 235))
    cx, cy, r = 360, 330, 250
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(210, 20, 30))
    d.ellipse((cx - r + 45, cy - r + 45, cx + r - 45, cy + r - 45), fill=(20, 70, 170))
    k = (r - 45) / math.sqrt(2)
    d.line((cx - k, cy - k, cx + k, cy + k), fill=(210, 20, 30), width=45)
    d.line((cx - k, cy + k, cx + k, cy - k), fill=(210, 20, 30), width=45)
    _centred(d, 620, "禁止停车", font.get(90), 720, (180, 10, 20))
    _centred(d, 740, "NO PARKING", font.get(60), 720, (180, 10, 20))
    _centred(d, 830, "违者拖车 Violators will be towed", font.get(28), 720, (40, 40, 40))
    return image


def draw_wet_floor(font: CJKFont) -> Image.Image:
    image, d = _canvas((640, 900), (200, 200, 205))
    d.polygon([(170, 40), (470, 40), (580, 880), (60, 880)], fill=(250, 205, 0))
    d.polygon([(320, 120), (420, 300), (220, 300)], outline="black", fill=(250, 205, 0), width=12)
    d.text((305, 170), "!", font=font.get(100), fill="black")
    _centred(d, 360, "小心地滑", font.get(84), 640, "black")
    _centred(d, 490, "CAUTION", font.get(64), 640, "black")
    _centred(d, 580, "WET FLOOR", font.get(56), 640, "black")
    return image


def draw_train_ticket(font: CJKFont) -> Image.Image:
    image, d = _canvas((1000, 620), (205, 230, 245))
    d.rounded_rectangle((30, 30, 970, 590), radius=20, fill=(225, 240, 250), outline=(90, 140, 190), width=4)
    f, f_big = font.get(30), font.get(52)
    d.text((70, 60), "G1 次", font=f, fill=(200, 30, 30))
    d.text((70, 130), "北京南站  →  上海虹桥", font=f_big, fill="black")
    d.text((70, 205), "Beijingnan    Shanghai Hongqiao", font=f, fill=(60, 60, 60))
    d.text((70, 280), "2026年05月01日 09:00开   07车12F号", font=f, fill="black")
    d.text((70, 340), "¥553.0元      二等座 Second class", font=f, fill="black")
    d.text((70, 420), "限乘当日当次车  Valid for this train only", font=font.get(26), fill=(60, 60, 60))
    return image


def draw_menu(font: CJKFont) -> Image.Image:
    image, d = _canvas((800, 1000), (250, 243, 225))
    d.rectangle((0, 0, 800, 170), fill=(170, 30, 25))
    _centred(d, 30, "老王牛肉面馆", font.get(64), 800, (255, 230, 150))
    _centred(d, 115, "Lao Wang Noodle House", font.get(32), 800, "white")
    items = [
        ("红烧牛肉面", "Braised Beef Noodles", "¥22"),
        ("兰州拉面", "Lanzhou Hand-pulled Noodles", "¥18"),
        ("凉拌黄瓜", "Cucumber Salad", "¥8"),
        ("酸梅汤", "Sour Plum Drink", "¥6"),
    ]
    y = 230
    for zh, en, price in items:
        d.text((70, y), zh, font=font.get(44), fill=(60, 20, 10))
        d.text((620, y), price, font=font.get(44), fill=(170, 30, 25))
        d.text((70, y + 58), en, font=font.get(28), fill=(90, 70, 60))
        y += 180
    return image


def draw_wifi_card(font: CJKFont) -> Image.Image:
    image, d = _canvas((900, 560), (245, 245, 245))
    cx, cy = 160, 300
    for r in (110, 75, 40):
        d.arc((cx - r, cy - r, cx + r, cy + r), 225, 315, fill=(30, 30, 30), width=14)
    d.ellipse((cx - 12, cy - 12, cx + 12, cy + 12), fill=(30, 30, 30))
    d.text((300, 90), "欢迎光临 Welcome", font=font.get(44), fill=(30, 30, 30))
    d.text((300, 220), "WiFi: Lychee-Guest", font=font.get(44), fill=(30, 30, 30))
    d.text((300, 320), "密码 Password: lychee2026", font=font.get(40), fill=(30, 30, 30))
    return image


def draw_opening_hours(font: CJKFont) -> Image.Image:
    image, d = _canvas((800, 900), (40, 40, 45))
    d.rounded_rectangle((60, 60, 740, 840), radius=16, fill="white")
    _centred(d, 110, "营业时间", font.get(80), 800, "black")
    _centred(d, 220, "OPENING HOURS", font.get(44), 800, "black")
    f = font.get(34)
    lines = [
        "周一至周五  Mon - Fri",
        "9:00 - 21:00",
        "周六周日  Sat - Sun",
        "10:00 - 18:00",
        "节假日休息",
        "Closed on public holidays",
    ]
    for i, line in enumerate(lines):
        _centred(d, 330 + i * 76, line, f, 800, (40, 40, 40))
    return image


def draw_exit_sign(font: CJKFont) -> Image.Image:
    image, d = _canvas((1000, 420), (30, 30, 30))
    d.rectangle((20, 20, 980, 400), fill=(0, 150, 70))
    d.ellipse((110, 70, 160, 120), fill="white")  # a running figure: head, body, limbs
    d.line((130, 125, 110, 230), fill="white", width=22)
    d.line((120, 150, 70, 200), fill="white", width=16)
    d.line((125, 150, 185, 180), fill="white", width=16)
    d.line((110, 230, 60, 320), fill="white", width=18)
    d.line((110, 230, 170, 300), fill="white", width=18)
    d.polygon([(230, 180), (300, 130), (300, 230)], fill="white")
    d.text((360, 80), "安全出口", font=font.get(120), fill="white")
    d.text((380, 250), "EXIT", font=font.get(100), fill="white")
    return image


def draw_meeting_notice(font: CJKFont) -> Image.Image:
    image, d = _canvas((900, 1100), (255, 255, 250))
    d.rectangle((0, 0, 900, 16), fill=(200, 40, 40))
    _centred(d, 70, "会议通知", font.get(80), 900, (200, 40, 40))
    _centred(d, 180, "Meeting Notice", font.get(40), 900, (60, 60, 60))
    f = font.get(34)
    lines = [
        "时间：本周五 15:00",
        "Time: Friday 3 pm",
        "地点：3楼 301 会议室",
        "Room 301, 3rd floor",
        "议题：新产品发布计划",
        "Agenda: product launch plan",
        "请准时参加  Please be on time",
    ]
    for i, line in enumerate(lines):
        d.text((90, 300 + i * 95), line, font=f, fill=(30, 30, 30))
    return image


DRAWN: dict[str, Callable[[CJKFont], Image.Image]] = {
    "receipt.png": draw_receipt,
    "street_sign.png": draw_street_sign,
    "slide.png": draw_slide,
    "no_parking.png": draw_no_parking,
    "wet_floor.png": draw_wet_floor,
    "train_ticket.png": draw_train_ticket,
    "menu.png": draw_menu,
    "wifi.png": draw_wifi_card,
    "opening_hours.png": draw_opening_hours,
    "exit_sign.png": draw_exit_sign,
    "meeting_notice.png": draw_meeting_notice,
}


# ----------------------------------------------------------------------------- query images
def _query_images() -> dict[str, Image.Image]:
    """Derived views (crop, flip, shift) of gallery photos, used as image queries."""
    cat = _load_photo("chelsea")
    coffee = _load_photo("coffee")
    rocket = _load_photo("rocket")
    return {
        "cat_closeup.jpg": cat.crop((120, 20, 380, 280)).transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        "coffee_crop.jpg": coffee.crop((80, 30, 520, 380)).rotate(
            8, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(255, 255, 255)
        ),
        "rocket_crop.jpg": rocket.crop((140, 0, 520, 427)),
    }


def build_gallery(out_dir: str | os.PathLike[str], *, font: CJKFont | None = None) -> list[Path]:
    """Write the gallery into ``out_dir``; returns the gallery image paths (not the queries)."""
    out = Path(out_dir)
    (out / "queries").mkdir(parents=True, exist_ok=True)
    font = font or find_cjk_font()
    written: list[Path] = []
    for photo in PHOTOS:
        _save_photo(photo, out)
        written.append(out / photo.name)
    for name, draw in DRAWN.items():
        draw(font).save(out / name)
        written.append(out / name)
    for name, image in _query_images().items():
        image.save(out / "queries" / name, quality=92)
    _write_licences(out, font)
    return written


def _write_licences(out: Path, font: CJKFont) -> None:
    lines = [
        "# Licences and attribution",
        "",
        "Photographs: taken from the data bundled with scikit-image (https://scikit-image.org,",
        "`skimage.data`); credits and terms as stated in its documentation:",
        "",
    ]
    lines += [f"- `{p.name}` (`skimage.data.{p.loader}`): {p.credit}" for p in PHOTOS]
    lines += [
        "",
        "Caption of `astronaut.jpg` (sidecar `astronaut.txt`) and the EXIF description of `hubble.jpg`",
        "were written for this gallery from the scikit-image descriptions.",
        "",
        "Drawn images (" + ", ".join(f"`{n}`" for n in DRAWN) + ") and `queries/`",
        "(crops of the photos above) were generated by `python -m lychee_rerank.demo.gallery`;",
        "they are part of lychee-rerank (Apache-2.0). All names, prices and addresses are invented.",
        "",
        f"Text was drawn with the font `{Path(font.path).name}` (face {font.index}); Noto Sans CJK and",
        "WenQuanYi Micro Hei are under the SIL Open Font License 1.1 / Apache-2.0 respectively.",
        "",
    ]
    (out / "LICENSES.md").write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lychee_rerank.demo.gallery", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="where to write the gallery (e.g. examples/gallery)")
    parser.add_argument("--font", help=f"a font file with Chinese glyphs (default: search; see ${ENV_FONT})")
    parser.add_argument(
        "--install-font", action="store_true", help=f"pip install {FONT_PACKAGE} if no CJK font is found"
    )
    args = parser.parse_args(argv)
    from ..extras import MissingExtra, missing

    if "skimage" in missing("lite"):  # the gallery's photos ship in scikit-image
        print(MissingExtra('the example gallery needs scikit-image: pip install "lychee-rerank[lite]"'), file=sys.stderr)
        return 1
    try:
        font = find_cjk_font(args.font)
    except FontNotFound:
        if not args.install_font:
            raise
        install_font()
        import importlib

        importlib.invalidate_caches()
        font = find_cjk_font(args.font)
    paths = build_gallery(args.out_dir, font=font)
    print(
        f"wrote {len(paths)} images (+ {len(_query_images())} query images) to {args.out_dir} using font {font.path}#{font.index}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
