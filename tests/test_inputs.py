"""Every accepted input type, image hygiene, and a precise message for each bad input."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lychee_rerank.inputs import Content, ImageLimits, InputError, decode_image, pixel_hash, to_content, to_rgb

from .conftest import make_photo, png_bytes


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return make_photo(60, 40, seed=7)


def test_str_is_text():
    c = to_content("a black cat")
    assert c.text == "a black cat" and c.image is None and c.modality == "text"


def test_path_bytes_data_uri_and_pil_give_the_same_pixels(tmp_path, photo):
    path = tmp_path / "p.png"
    photo.save(path)
    data = png_bytes(photo)
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    contents = [to_content(path), to_content(data), to_content(uri), to_content(photo)]
    assert {c.image_hash for c in contents} == {pixel_hash(photo)}
    assert all(c.modality == "image" and c.image.mode == "RGB" for c in contents)
    assert contents[0].source == str(path) and contents[1].source == "<bytes>" and contents[2].source == "<data-uri>"


def test_mapping_and_content_mix_text_and_image(tmp_path, photo):
    path = tmp_path / "p.png"
    photo.save(path)
    for image in (path, str(path), png_bytes(photo), photo):
        c = to_content({"text": "caption", "image": image})
        assert c.modality == "text+image" and c.text == "caption" and c.image_hash == pixel_hash(photo)
    assert to_content(Content(text="x")).text == "x"
    assert to_content({"text": "only text"}).modality == "text"


def test_mapping_relative_image_path_resolves_against_base_dir(tmp_path, photo):
    (tmp_path / "sub").mkdir()
    photo.save(tmp_path / "sub" / "p.png")
    c = to_content({"image": "sub/p.png"}, base_dir=tmp_path)
    assert c.image_hash == pixel_hash(photo)


def test_exif_orientation_is_applied(tmp_path):
    wide = Image.new("RGB", (40, 20), (255, 0, 0))
    wide.paste((0, 0, 255), (0, 0, 10, 20))  # blue stripe on the left
    exif = wide.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    wide.save(path, exif=exif, quality=95)
    c = to_content(path)
    assert c.image.size == (20, 40)  # upright: portrait
    top = np.asarray(c.image)[:5].mean(axis=(0, 1))
    assert top[2] > 150 and top[0] < 100  # the blue stripe is now on top


def test_caption_from_sidecar_and_exif(tmp_path, photo):
    path = tmp_path / "cat.png"
    photo.save(path)
    (tmp_path / "cat.txt").write_text("a tabby cat on a sofa\n")
    assert to_content(path).caption == "a tabby cat on a sofa"
    img = Image.new("RGB", (20, 20))
    exif = img.getexif()
    exif[0x010E] = "red square"
    jpg = tmp_path / "described.jpg"
    img.save(jpg, exif=exif)
    assert to_content(jpg).caption == "red square"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("P", (8, 8), 3),
        lambda: Image.new("L", (8, 8), 128),
        lambda: Image.new("1", (8, 8), 1),
        lambda: Image.new("CMYK", (8, 8), (0, 255, 255, 0)),
        lambda: Image.new("LA", (8, 8), (128, 255)),
        lambda: Image.new("I;16", (8, 8), 65535),
        lambda: Image.new("I", (8, 8), 40000),
        lambda: Image.new("F", (8, 8), 0.5),
    ],
    ids=["P", "L", "1", "CMYK", "LA", "I16", "I32", "F"],
)
def test_every_mode_becomes_rgb(make):
    rgb = to_rgb(make())
    assert rgb.mode == "RGB" and rgb.size == (8, 8)


def test_alpha_is_composited_on_white_and_16_bit_is_rescaled():
    transparent = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert to_rgb(transparent).getpixel((0, 0)) == (255, 255, 255)
    half_red = Image.new("RGBA", (4, 4), (255, 0, 0, 128))
    r, g, b = to_rgb(half_red).getpixel((0, 0))
    assert r == 255 and 120 < g < 135
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.info["transparency"] = 0
    assert to_rgb(palette).getpixel((0, 0)) == (255, 255, 255)
    # 16-bit mid-grey must stay mid-grey, not clip to white as a plain convert would.
    grey16 = Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16))
    assert 120 <= to_rgb(grey16).getpixel((0, 0))[0] <= 136


def test_16_bit_png_file_decodes(tmp_path):
    arr = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    c = to_content(path)
    px = np.asarray(c.image)[..., 0]
    assert px.min() < 10 and px.max() > 245  # full range kept


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (10, 10), (255, 0, 0)), Image.new("RGB", (10, 10), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    r, g, b = to_content(path).image.getpixel((5, 5))
    assert r > 200 and b < 50


# ---------------------------------------------------------------- bad input
def test_corrupt_and_truncated_images_have_precise_errors(tmp_path, photo):
    with pytest.raises(InputError, match="not a supported image"):
        to_content(b"this is not an image")
    data = png_bytes(make_photo(200, 200, seed=1), "JPEG")
    with pytest.raises(InputError, match="corrupt or truncated"):
        to_content(data[: len(data) // 2])
    with pytest.raises(InputError, match="empty image data"):
        to_content(b"")


def test_decompression_bomb_is_refused_before_decoding():
    big = png_bytes(Image.new("L", (4000, 3000)))
    with pytest.raises(InputError, match=r"4000x3000 = 12,000,000 pixels, over the limit of 1,000,000 \(max_image_pixels\)"):
        to_content(big, limits=ImageLimits(max_pixels=1_000_000))
    with pytest.raises(InputError, match="max_image_pixels"):
        to_content(Image.new("L", (2000, 1000)), limits=ImageLimits(max_pixels=1_000_000))


def test_oversized_image_bytes_are_refused(tmp_path, photo):
    data = png_bytes(photo)
    with pytest.raises(InputError, match=r"over the limit of 100 \(max_image_bytes\)"):
        to_content(data, limits=ImageLimits(max_bytes=100))
    path = tmp_path / "p.png"
    path.write_bytes(data)
    with pytest.raises(InputError, match="max_image_bytes"):
        to_content(path, limits=ImageLimits(max_bytes=100))


def test_missing_file_directory_and_unsupported_types(tmp_path):
    with pytest.raises(InputError, match="image file not found"):
        to_content(tmp_path / "nope.png")
    with pytest.raises(InputError, match="got a directory"):
        to_content(tmp_path)
    for bad in (42, 3.5, None, ["a", "b"], object()):
        with pytest.raises(InputError, match="unsupported input type"):
            to_content(bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unsupported key"):
        to_content({"txt": "typo"})
    with pytest.raises(InputError, match="'text' must be a string"):
        to_content({"text": 5})


def test_text_file_passed_as_image_is_reported(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(InputError, match="not a supported image"):
        to_content(path)


def test_bad_data_uris():
    with pytest.raises(InputError, match="only image"):
        to_content("data:text/plain;base64,aGVsbG8=")
    with pytest.raises(InputError, match="base64"):
        to_content("data:image/png,rawpayload")
    with pytest.raises(InputError, match="malformed"):
        to_content("data:image/png;base64")


def test_decode_image_returns_rgb(photo):
    assert decode_image(png_bytes(photo)).mode == "RGB"


# --------------------------------------------------------------------------- odd files (issue 13, item 11)
def _odd_files(tmp_path: Path) -> dict[str, Path]:
    """A /dev/zero symlink named like a photo, a FIFO (nobody writes to it) and /dev/zero itself."""
    link = tmp_path / "zero.png"
    link.symlink_to("/dev/zero")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    return {"device": Path("/dev/zero"), "symlink": link, "fifo": fifo}


@pytest.mark.parametrize("kind", ["device", "symlink", "fifo"])
def test_device_fifo_and_symlinked_device_are_refused_without_reading(tmp_path, kind):
    path = _odd_files(tmp_path)[kind]
    with pytest.raises(InputError, match="not a regular file"):
        to_content(path)
    with pytest.raises(InputError, match="not a regular file"):
        to_content({"text": "caption", "image": str(path)})


def test_the_bytes_read_are_capped_whatever_st_size_says(tmp_path):
    # /proc files report st_size 0 but hold data: a cap on st_size alone would read them whole.
    from lychee_rerank.inputs import read_image_file  # the one path every interface reads images through

    path = Path("/proc/self/maps")
    assert path.stat().st_size == 0
    with pytest.raises(InputError, match="over the limit of 16 bytes"):
        read_image_file(path, max_bytes=16)


@pytest.mark.parametrize("make", [
    lambda p: p,                                   # a Path to a video file
    lambda p: {"video": str(p)},                   # a video under its own key
    lambda p: {"text": "a cat", "video": str(p)},  # beside text
])
def test_video_inputs_are_refused_by_name_not_scored(tmp_path, make):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    with pytest.raises(InputError, match="video input is not supported"):
        to_content(make(clip))
