"""MonoQwen2-VL through the engine equals rerankers' MonoVLMRanker, run unchanged (FP32, 1e-5).

The checkpoint is a tiny random MonoQwen2-VL in the published layout: an adapter directory
(``adapter_config.json`` + ``adapter_model.safetensors``, 4.x module paths, random ``lora_B``) on a
tiny Qwen2-VL base with the real Qwen2 vocabulary (``lychee_rerank.testing.tiny_qwen2_vl``). The
reference is ``rerankers.models.monovlm_ranker.MonoVLMRanker`` (rerankers 0.10.0) run unchanged:
it loads the adapter directory through transformers' PEFT integration and scores one pair per
forward pass. Only constructor arguments are set to run it offline on CPU (``processor_name`` = the
tiny base, ``attention_implementation="sdpa"``, FP32; see ``tests/qwen2_vl_support.py``). The engine
runs with the family's defaults (found from ``adapter_config.json`` and the base's ``config.json``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from lychee_rerank import LycheeReranker
from lychee_rerank.backends.families import FAMILIES, detect
from lychee_rerank.inputs import Content, InputError
from tests.qwen2_vl_support import DEFAULT_INSTRUCTION, FAMILY, Reference

from .parity import assert_spread, engine_scores

TOL = 1e-5
CUSTOM = "Does this page answer the question? Answer True or False."
CALLS = [  # (query, image indexes, instruction)
    ("a cat sitting on a window sill", [0, 1, 2, 3, 4, 5, 6, 7], None),
    ("一只黑猫趴在窗台上", [7, 6, 5, 4, 3, 2, 1, 0], None),
    ("quarterly revenue chart", [1, 3, 5, 2], None),
    ("红色的出口标志", [0, 2, 4, 6, 1], None),
    ("find product photos", [2, 5, 7], CUSTOM),
]


@pytest.fixture(scope="module")
def custom_reference(mono_qwen2_vl_dir) -> Reference:
    """MonoVLMRanker with its ``prompt_template`` argument: the custom instruction, then the query."""
    return Reference(mono_qwen2_vl_dir, prompt_template=CUSTOM + " The query is: {query}")


@pytest.fixture(scope="module")
def reference_scores(mono_qwen2_vl_reference, custom_reference, mono_qwen2_vl_images) -> list[list[float]]:
    out = []
    for query, picks, instruction in CALLS:
        ref = custom_reference if instruction == CUSTOM else mono_qwen2_vl_reference
        out.append(ref.scores(query, [mono_qwen2_vl_images[k] for k in picks]))
    return out


def test_the_reference_scores_spread(reference_scores):
    assert_spread(reference_scores)


def test_the_family_is_found_from_the_adapter_and_its_base(mono_qwen2_vl_dir, mono_qwen2_vl_reranker):
    assert (mono_qwen2_vl_dir / "adapter_config.json").is_file() and not (mono_qwen2_vl_dir / "config.json").exists()
    assert detect(mono_qwen2_vl_dir) is FAMILIES[FAMILY]
    rr = mono_qwen2_vl_reranker
    assert rr.info["family"] == FAMILY and rr.backend.default_instruction == DEFAULT_INSTRUCTION
    spec = FAMILIES[FAMILY]
    assert spec.licence == "Apache-2.0" and spec.peft_adapter
    assert spec.query_modalities == ("text",) and spec.document_modalities == ("image",)
    # The base alone (a plain Qwen2-VL config) is not taken for MonoQwen2-VL unless named.
    with pytest.raises(ValueError, match="unknown checkpoint family"):
        detect(mono_qwen2_vl_dir.parent / "base")


def test_the_adapter_matters(mono_qwen2_vl_dir, mono_qwen2_vl_reranker, mono_qwen2_vl_images):
    """The base without the adapter (family named) scores differently: the LoRA was loaded, not skipped."""
    base = LycheeReranker.from_pretrained(mono_qwen2_vl_dir.parent / "base", family=FAMILY, device="cpu", dtype="float32")
    query = "a cat sitting on a window sill"
    with_adapter = engine_scores(mono_qwen2_vl_reranker, query, mono_qwen2_vl_images)
    without = engine_scores(base, query, mono_qwen2_vl_images)
    assert max(abs(a - b) for a, b in zip(with_adapter, without)) > 0.05, (with_adapter, without)


def test_the_prompt_and_ids_are_the_references(mono_qwen2_vl_reranker, mono_qwen2_vl_reference, mono_qwen2_vl_images):
    ranker = mono_qwen2_vl_reference.ranker
    for query, picks, instruction in CALLS:
        template = (CUSTOM + " The query is: {query}") if instruction else ranker.prompt_template
        for k in picks[:3]:
            image = Image.open(mono_qwen2_vl_images[k]).convert("RGB")
            messages = [{"role": "user", "content": [{"type": "image", "image": image},
                                                     {"type": "text", "text": template.format(query=query)}]}]
            text = ranker.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            ids = ranker.processor(text=text, images=image, return_tensors="pt")["input_ids"][0].tolist()
            pair = mono_qwen2_vl_reranker.backend.prepare(0, Content(text=query), _image(mono_qwen2_vl_images[k]), instruction)
            assert pair.text == text and pair.ids == ids and not pair.truncated
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>")


def _image(path: Path) -> Content:
    from lychee_rerank.inputs import to_content

    return to_content(path)


@pytest.mark.parametrize("prefix_cache", ["on", "off", "forced"])
@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_engine_equals_the_reference_cold_and_warm(mono_qwen2_vl_dir, reference_scores, mono_qwen2_vl_images,
                                                   batch_size, prefix_cache, monkeypatch):
    """``on`` (the default): the pairs share only the 15 ids before the document's image, under the
    driver's 16-id minimum, so it scores in full; ``forced`` lowers that minimum, so batches continue
    from the prefix's KV cache (the image right after it); ``off``: ``prefix_cache=False``."""
    from lychee_rerank.backends import lychee

    if prefix_cache == "forced":
        monkeypatch.setattr(lychee, "MIN_PREFIX_TOKENS", 4)
    kwargs = {"prefix_cache": False} if prefix_cache == "off" else {}
    reranker = LycheeReranker.from_pretrained(mono_qwen2_vl_dir, device="cpu", dtype="float32", **kwargs)
    assert reranker.info["family"] == FAMILY
    for run in ("cold", "warm"):  # warm: the vision cache holds every image
        for (query, picks, instruction), expected in zip(CALLS, reference_scores):
            got = engine_scores(reranker, query, [mono_qwen2_vl_images[k] for k in picks], batch_size, instruction=instruction)
            assert got == pytest.approx(expected, abs=TOL), (run, query, instruction, batch_size, prefix_cache)
    stats = reranker.backend.stats
    assert (stats["prefix_batches"] > 0) == (prefix_cache == "forced"), stats
    assert (stats["prefix_fallbacks"] > 0) == (prefix_cache == "on"), stats
    assert stats["vision_cache_hits"] > 0, stats


def test_a_text_document_fails_alone_and_the_others_match(mono_qwen2_vl_reranker, mono_qwen2_vl_reference,
                                                          mono_qwen2_vl_images):
    query = "a cat sitting on a window sill"
    images = mono_qwen2_vl_images[:3]
    docs = [images[0], "a text document", images[1], {"text": "a caption", "image": images[2]}, images[2]]
    results = sorted(mono_qwen2_vl_reranker.rerank(query, docs), key=lambda r: r.index)
    for k in (1, 3):
        assert "reads image documents only" in (results[k].error or ""), results[k]
        assert results[k].score == 0
    assert [r.error for r in results if r.index in (0, 2, 4)] == [None] * 3
    expected = mono_qwen2_vl_reference.scores(query, images)
    assert [results[0].score, results[2].score, results[4].score] == pytest.approx(expected, abs=TOL)
    with pytest.raises(InputError, match="reads image documents only"):
        mono_qwen2_vl_reranker.rerank(query, ["only text"], raise_on_error=True)


def test_an_image_query_is_refused(mono_qwen2_vl_reranker, mono_qwen2_vl_images):
    for query in (mono_qwen2_vl_images[0], {"text": "a cat", "image": mono_qwen2_vl_images[0]}):
        with pytest.raises(InputError, match="reads text queries only: a query with image"):
            mono_qwen2_vl_reranker.rerank(query, mono_qwen2_vl_images[:2])


def test_an_over_long_query_is_cut_and_flagged(mono_qwen2_vl_reranker, mono_qwen2_vl_images):
    long_query = " ".join(f"word{i % 97} plain text, number {i}." for i in range(1500))  # > 8,192 tokens
    results = sorted(mono_qwen2_vl_reranker.rerank(long_query, mono_qwen2_vl_images[:2]), key=lambda r: r.index)
    assert all(r.truncated and r.error is None and 0 <= r.score <= 1 for r in results), results
    pair = mono_qwen2_vl_reranker.backend.prepare(0, Content(text=long_query), _image(mono_qwen2_vl_images[0]), None)
    assert pair.truncated
    short = mono_qwen2_vl_reranker.rerank("a cat", mono_qwen2_vl_images[:1])
    assert not short[0].truncated


def test_an_image_of_an_extreme_shape_fails_alone(mono_qwen2_vl_reranker, mono_qwen2_vl_images, tmp_path):
    thin = tmp_path / "thin.png"
    Image.new("RGB", (4000, 10), (200, 10, 10)).save(thin)  # aspect ratio 400: Qwen2-VL refuses it
    results = sorted(mono_qwen2_vl_reranker.rerank("a cat", [mono_qwen2_vl_images[0], thin]), key=lambda r: r.index)
    assert results[0].error is None and "cannot be read by this model" in (results[1].error or ""), results


def test_an_adapter_on_the_adapter_is_found_as_the_family(mono_qwen2_vl_dir, tmp_path):
    """``lychee finetune``'s output on MonoQwen2-VL names the MonoQwen2-VL directory as its base (no
    config.json there): detection follows the chain to the Qwen2-VL base's config.json."""
    stacked = tmp_path / "stacked"
    stacked.mkdir()
    (stacked / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(mono_qwen2_vl_dir)}))
    assert detect(stacked) is FAMILIES[FAMILY]
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(loop)}))
    with pytest.raises(ValueError, match="has no config.json"):
        detect(loop)


def test_an_adapter_whose_weights_do_not_fit_is_refused_not_ignored(mono_qwen2_vl_dir, tmp_path):
    """peft only warns when an adapter's tensors match no module (the LoRA then does nothing): the
    family's loader makes that an error naming the adapter."""
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(mono_qwen2_vl_dir, broken)
    weights = broken / "adapter_model.safetensors"
    save_file({k.replace(".layers.", ".blocks."): v for k, v in load_file(str(weights)).items()}, str(weights))
    with pytest.raises(ValueError, match="does not fit the model"):
        LycheeReranker.from_pretrained(broken, device="cpu", dtype="float32")


_BY_HUB_ID = """
import json, sys
from lychee_rerank import LycheeReranker
rr = LycheeReranker.from_pretrained(sys.argv[1], device="cpu", dtype="float32")
print(json.dumps([r.score for r in sorted(rr.rerank(sys.argv[2], sys.argv[3:]), key=lambda r: r.index)]))
"""


def test_the_published_adapter_loads_by_hub_id_from_the_cache_offline(mono_qwen2_vl_dir, mono_qwen2_vl_reranker,
                                                                      mono_qwen2_vl_images, tmp_path):
    """As a user with the hub cache and no network: adapter and base both by hub id (the published
    adapter_config.json names its base by id). Same scores as the local directories."""
    import os
    import subprocess
    import sys

    from tests.family_support import hub_snapshot

    cache = tmp_path / "hub"
    hub_snapshot(cache, "Qwen/Qwen2-VL-2B-Instruct", mono_qwen2_vl_dir.parent / "base")
    adapter = hub_snapshot(cache, "lightonai/MonoQwen2-VL-v0.1", mono_qwen2_vl_dir)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "Qwen/Qwen2-VL-2B-Instruct"}))
    images = [str(p) for p in mono_qwen2_vl_images[:3]]
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", _BY_HUB_ID, "lightonai/MonoQwen2-VL-v0.1", CALLS[0][0], *images],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    want = [r.score for r in sorted(mono_qwen2_vl_reranker.rerank(CALLS[0][0], images), key=lambda r: r.index)]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == pytest.approx(want, abs=TOL)

    shutil.rmtree(cache / "models--lightonai--MonoQwen2-VL-v0.1")  # not cached: a clear error, not a hang
    run = subprocess.run([sys.executable, "-c", _BY_HUB_ID, "lightonai/MonoQwen2-VL-v0.1", "q", images[0]],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode != 0 and "lightonai/MonoQwen2-VL-v0.1" in run.stderr and "HF_HUB_OFFLINE" in run.stderr, run.stderr[-3000:]
