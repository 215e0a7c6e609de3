"""Issue 20, item 2 in the library: a read image keeps its encoded bytes, not its pixels, and
scoring decodes one batch at a time, with exactly the scores of images handed in decoded.

(The server-level figures, RSS of a real ``lychee serve`` for 40 and 1,000 6000x6000 images,
are in ``tests/serving/test_image_memory.py``.)
"""

from __future__ import annotations

import gc
import threading
import time

import pytest
from PIL import Image

from lychee_rerank import LycheeReranker
from lychee_rerank.inputs import decode_image, pixel_hash, to_content

from .conftest import make_photo, png_bytes

SIZE = (61, 47)  # a size no other image in these tests has: live decodes are counted by it


def live_images(size: tuple[int, int]) -> int:
    """Decoded PIL images of ``size`` alive right now."""
    # type(), not isinstance(): some objects in gc answer __class__ with a deprecation warning.
    return sum(1 for o in gc.get_objects() if issubclass(type(o), Image.Image) and o.size == size)


@pytest.fixture(scope="module")
def encoded() -> list[bytes]:
    return [png_bytes(make_photo(*SIZE, seed=100 + i)) for i in range(24)]


def test_a_read_image_keeps_its_bytes_not_its_pixels(tmp_path):
    big = Image.new("RGB", (3000, 2000), (200, 30, 30))
    path = tmp_path / "big.webp"
    big.save(path, lossless=True)
    contents = [to_content(path), to_content(path.read_bytes()), to_content({"text": "x", "image": path})]
    del big
    gc.collect()
    assert live_images((3000, 2000)) == 0  # nothing decoded is held between reading and scoring
    c = contents[0]
    assert c.has_image and c.image_size == (3000, 2000) and c.modality == "image"
    assert c.image_hash == pixel_hash(decode_image(path.read_bytes()))
    first = c.image
    assert c.image is first  # one decode while a caller holds it
    assert first.mode == "RGB" and first.getpixel((10, 10)) == (200, 30, 30)
    del first
    gc.collect()
    assert live_images((3000, 2000)) == 0  # let go once nobody holds it


def _max_live_while_scoring(rr: LycheeReranker, documents: list, batch_size: int) -> int:
    """Most decoded document images alive at once, sampled at every progress report."""
    seen = [live_images(SIZE)]

    def progress(done: int, total: int) -> None:
        seen.append(live_images(SIZE))

    rr.rerank("a photo", documents, batch_size=batch_size, progress=progress)
    return max(seen)


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> LycheeReranker:
    from lychee_rerank.backends.lite import LiteBackend

    return LycheeReranker(LiteBackend(cache_dir=tmp_path_factory.mktemp("lite"), ocr=False, use_cache=False))


@pytest.mark.parametrize("backend", ["lychee", "lite"])
def test_scoring_decodes_one_batch_at_a_time(backend, reranker, lite, encoded):
    """24 documents, batches of 4: pixels are decoded for the batch that needs them and let go
    (they were all decoded when read, and held until the call returned)."""
    rr = reranker if backend == "lychee" else lite
    if backend == "lite":
        rr.backend._memory.clear()  # analyses are memoised in memory: make it decode again
    gc.collect()
    live = _max_live_while_scoring(rr, list(encoded), batch_size=4)
    assert live <= 8, f"{live} documents decoded at once"


@pytest.mark.parametrize("backend", ["lychee", "lite"])
def test_lazy_and_eager_images_score_the_same(backend, reranker, lite, encoded, tmp_path):
    """Decoded when read (a PIL image handed in) or when the batch runs (bytes, a path): same scores."""
    rr = reranker if backend == "lychee" else lite
    photos = [decode_image(data) for data in encoded[:6]]
    paths = []
    for i, data in enumerate(encoded[:6]):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(data)
    query = {"text": "a photo", "image": encoded[7]}
    eager = {r.index: r.score for r in rr.rerank({"text": "a photo", "image": decode_image(encoded[7])}, photos, batch_size=4)}
    for documents in (list(encoded[:6]), paths):
        lazy = {r.index: r.score for r in rr.rerank(query, documents, batch_size=4)}
        assert lazy == pytest.approx(eager, abs=1e-6)


def test_a_corrupt_image_is_still_refused_when_read():
    data = png_bytes(make_photo(200, 200, seed=1), "JPEG")
    with pytest.raises(Exception, match="corrupt or truncated"):
        to_content(data[: len(data) // 2])


def test_the_pixel_budget_bounds_what_is_held_at_once():
    from lychee_rerank.inputs import PixelBudget

    budget = PixelBudget(100)
    lock = threading.Lock()
    held: list[int] = []
    snapshots: list[list[int]] = []

    def worker(n: int) -> None:
        with budget.hold(n):
            with lock:
                held.append(n)
                snapshots.append(sorted(held))
            time.sleep(0.02)
            with lock:
                held.remove(n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (60, 60, 30, 150, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads) and budget.in_use == 0
    # Never over the budget; a hold larger than the whole budget runs alone (never refused).
    assert all(sum(s) <= 100 or s == [150] for s in snapshots), snapshots
    with budget.hold(80), budget.hold(80):  # a thread that holds pixels never waits for more
        assert budget.in_use == 160
