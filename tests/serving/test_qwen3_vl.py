"""`lychee serve` on a Qwen3-VL-Reranker checkpoint, over real HTTP on loopback: every dialect the
server speaks (/v1/rerank and its /v2 alias, TEI's /rerank, vLLM's /score and /v1/score, the
article's /api/rerank, /v1/analyze) returns the library's scores for texts and images; /health and
/v1/models name the family; Ray Serve answers as the single process does; a video is refused.

One server per module loads the checkpoint itself (the family found from config.json), as
`lychee serve --model DIR` does; the library's reranker (tests/qwen3_vl_support.py) is the yardstick.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from lychee_rerank.inputs import InputError

from ..qwen3_vl_support import (  # noqa: F401 - shared fixtures
    DEFAULT_INSTRUCTION,
    FAMILY,
    QUERY,
    TEXTS,
    library_scores,
    qwen3_vl_pngs,
    qwen3_vl_reranker,
)
from ..ray_support import ray_local  # noqa: F401 - the shared fixture
from .conftest import b64, data_uri
from .family_checks import (TOL, bytes_fixture, check_analyze, check_api_rerank, check_health_and_models,
    check_raw_scores, check_ray_serve, check_rerank, check_score, check_score_pairs, check_tei_rerank, post,
    server_fixture)

q3_server = server_fixture("qwen3_vl_dir")  # loads the checkpoint itself, as `lychee serve` does
pngs = bytes_fixture("qwen3_vl_pngs")


# --------------------------------------------------------------------------- service
def test_health_and_models_name_the_family(q3_server, qwen3_vl_dir):
    check_health_and_models(q3_server, qwen3_vl_dir, FAMILY)


# --------------------------------------------------------------------------- /v1/rerank (Cohere, Jina, vLLM, infinity)
def test_v1_rerank_texts_and_images_in_every_shape_match_the_library(q3_server, qwen3_vl_reranker, pngs):
    a, b, c = pngs
    documents = [
        "a red circle on a blue background",                                   # text
        data_uri(a),                                                           # data: URI string
        {"text": "a drawing", "image": b64(b)},                                # Jina object, text + image
        [{"type": "text", "text": "shapes"},                                   # OpenAI content parts
         {"type": "image_url", "image_url": {"url": data_uri(c)}}],
        {"image": b64(c)},                                                     # image only
        "stock market report",
    ]
    library_docs = [documents[0], a, {"text": "a drawing", "image": b}, {"text": "shapes", "image": c}, c, documents[5]]
    check_rerank(q3_server, qwen3_vl_reranker, QUERY, documents, library_docs, min_spread=1e-4, usage=(6, 6, 4))

    # An image query (text + image), vLLM's {"content": [parts]} documents (one per part), an
    # instruction, infinity's raw scores (the yes - no logit).
    query = {"text": "this picture", "image": data_uri(a)}
    body = {"query": query, "documents": {"content": [{"type": "image_url", "image_url": {"url": data_uri(b)}},
                                                      {"type": "text", "text": "a red circle"}]},
            "instruction": "Find the matching picture.", "raw_scores": True}
    r = post(q3_server, "/v1/rerank", body)
    results = qwen3_vl_reranker.rerank({"text": "this picture", "image": a}, [b, "a red circle"],
                                       instruction="Find the matching picture.")
    check_raw_scores(r, results, lambda x: x.yes_logit - x.no_logit)


# --------------------------------------------------------------------------- TEI /rerank
def test_tei_rerank_and_its_cohere_shape_match_the_library(q3_server, qwen3_vl_reranker, pngs):
    check_tei_rerank(q3_server, qwen3_vl_reranker, QUERY, TEXTS)

    # /rerank with `documents` is /v1/rerank: an image document too.
    docs = [TEXTS[0], {"image": data_uri(pngs[0])}]
    r = post(q3_server, "/rerank", {"query": QUERY, "documents": docs})
    assert r.status_code == 200, r.text
    expected = library_scores(qwen3_vl_reranker, QUERY, [TEXTS[0], pngs[0]])
    assert {x["index"]: x["relevance_score"] for x in r.json()["results"]} == pytest.approx(expected, abs=TOL)


# --------------------------------------------------------------------------- vLLM /score
def test_vllm_score_one_query_and_pairs_with_images_match_the_library(q3_server, qwen3_vl_reranker, pngs):
    a, b, _ = pngs
    parts = [{"type": "text", "text": TEXTS[0]}, {"type": "image_url", "image_url": {"url": data_uri(a)}},
             {"type": "image", "image": b64(b)}]
    check_score(q3_server, qwen3_vl_reranker, QUERY, {"content": parts}, [TEXTS[0], a, b])

    # N pairs: text_1[i] against text_2[i], an image query among them.
    check_score_pairs(q3_server, qwen3_vl_reranker, "/score", [QUERY, {"text": "what is drawn", "image": data_uri(b)}],
                      [TEXTS[1], TEXTS[2]], [(QUERY, TEXTS[1]), ({"text": "what is drawn", "image": b}, TEXTS[2])])


# --------------------------------------------------------------------------- /api/rerank (the article's shape)
def test_api_rerank_matches_the_library_with_logits(q3_server, qwen3_vl_reranker, pngs):
    documents = [{"text": TEXTS[0], "image": None}, {"text": "a photo", "image": data_uri(pngs[1])},
                 {"text": None, "image": data_uri(pngs[2])}]
    check_api_rerank(q3_server, qwen3_vl_reranker, QUERY, documents, [TEXTS[0], {"text": "a photo", "image": pngs[1]}, pngs[2]])


# --------------------------------------------------------------------------- /v1/analyze
def test_analyze_shows_the_family_prompt_default_instruction_and_the_library_score(q3_server, qwen3_vl_reranker, pngs):
    data = check_analyze(q3_server, qwen3_vl_reranker, "a red circle", {"text": "a drawing", "image": b64(pngs[0])},
                         {"text": "a drawing", "image": pngs[0]})
    assert data["instruction"] == DEFAULT_INSTRUCTION
    prompt = data["prompt"]
    assert f"<Instruct>: {DEFAULT_INSTRUCTION}" in prompt and "<Query>:a red circle" in prompt
    assert prompt.count("<|image_pad|>") == 1  # the placeholder, not the expanded visual tokens
    assert data["images"] == [{"side": "document", "width": 96, "height": 64}]
    user = "".join("<image>" if p["type"] == "image" else p["text"] for p in data["messages"][-1]["content"])
    assert "<Query>:a red circle" in user and user.endswith("<Document>:<image>a drawing"), data["messages"]


# --------------------------------------------------------------------------- video: refused, never scored
VIDEO_URI = "data:video/mp4;base64," + base64.b64encode(b"\x00\x00\x00\x18ftypmp42" + bytes(64)).decode()


def test_the_library_refuses_video_by_name(qwen3_vl_reranker, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    for video in (clip, {"video": str(clip)}, {"text": "a cat", "video": str(clip)}):
        with pytest.raises(InputError, match="video input is not supported"):
            qwen3_vl_reranker.score(QUERY, video)
        with pytest.raises(InputError, match="video input is not supported"):
            qwen3_vl_reranker.rerank(video, ["a cat"])
        # Among documents it fails alone (the per-pair error rule), with no score.
        bad, good = sorted(qwen3_vl_reranker.rerank(QUERY, [video, "a cat"]), key=lambda r: r.index)
        assert "video input is not supported" in bad.error and bad.score == 0 and good.error is None
    with pytest.raises(InputError, match="only image/\\* is accepted"):
        qwen3_vl_reranker.score(QUERY, VIDEO_URI)


def _refused_naming_video(r: httpx.Response, where: str) -> None:
    """Never a score for it: a 422 JSON error naming the video (the query, /v1/analyze's one
    document), or for a document among others its own error naming it (the per-document rule)."""
    if r.status_code == 422:
        message = r.json()["error"]["message"]
        assert "video" in message.lower(), message
        return
    assert r.status_code == 200, r.text
    body = r.json()
    items = body["results"] if isinstance(body, dict) and "results" in body else body["data"]
    (item,) = [x for x in items if x["index"] == 0]
    assert item.get("error") and "video" in item["error"].lower(), (where, item)
    assert item.get("relevance_score", item.get("score")) == 0


VIDEO_REQUESTS = [
    pytest.param("/v1/rerank", {"query": QUERY, "documents": [{"image": VIDEO_URI}, "a cat"]}, id="image-field-holding-video"),
    pytest.param("/v1/rerank", {"query": QUERY, "documents": [{"text": "a cat", "video": VIDEO_URI}]}, id="text-plus-video-key"),
    pytest.param("/v1/rerank", {"query": QUERY, "documents": [{"video": VIDEO_URI}]}, id="video-key"),
    pytest.param("/v1/rerank", {"query": QUERY, "documents": [[{"type": "video_url", "video_url": {"url": VIDEO_URI}}]]},
                 id="video_url-part"),
    pytest.param("/v1/rerank", {"query": {"text": QUERY, "video": VIDEO_URI}, "documents": ["a cat"]}, id="query-video-key"),
    pytest.param("/rerank", {"query": QUERY, "documents": [{"video_url": VIDEO_URI}, "a cat"]}, id="rerank-video_url-key"),
    pytest.param("/score", {"text_1": QUERY, "text_2": {"content": [{"type": "video", "video": VIDEO_URI}]}}, id="score-video-part"),
    pytest.param("/v1/analyze", {"query": QUERY, "document": {"video": VIDEO_URI}}, id="analyze-video-key"),
    pytest.param("/v1/rerank", {"query": QUERY, "documents": [VIDEO_URI, "a cat"]}, id="video-data-uri-string"),
    pytest.param("/api/rerank", {"query": {"text": QUERY}, "documents": [{"text": "a cat", "video": VIDEO_URI}]},
                 id="api-rerank-video-key"),
]


@pytest.mark.parametrize(("path", "body"), VIDEO_REQUESTS)
def test_a_video_over_http_gets_a_clear_error_not_a_score(q3_server, path, body):
    _refused_naming_video(post(q3_server, path, body), path)


# --------------------------------------------------------------------------- Ray Serve
def test_ray_serve_two_replicas_answer_like_the_single_process_server(ray_local, q3_server, qwen3_vl_dir, pngs):
    """Texts, images, an image query, an instruction, top_n, a bad document, a bad query."""
    requests = [
        {"query": QUERY, "documents": [*TEXTS, {"image": data_uri(pngs[0])}]},
        {"query": {"text": "this picture", "image": data_uri(pngs[1])},
         "documents": [{"image": data_uri(pngs[2])}, {"text": "a drawing", "image": data_uri(pngs[0])}, "text only"],
         "instruction": "Find the matching picture.", "top_n": 2},
        {"query": "anything", "documents": ["fine", {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}]},
        {"query": "", "documents": ["x"]},
    ]
    check_ray_serve(q3_server, qwen3_vl_dir, FAMILY, requests)
