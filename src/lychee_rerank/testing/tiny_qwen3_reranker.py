"""Write a tiny random Qwen3-Reranker checkpoint in the published on-disk layout.

Parity tests against the official Qwen3-Reranker code (the README snippet of QwenLM/Qwen3-Embedding,
vendored in ``tests/official/``) need a checkpoint that the README code and this project both load
through their ordinary paths (``AutoTokenizer`` / ``AutoModelForCausalLM``), without the 1.2 GB
download. This one has random weights and the files of ``Qwen/Qwen3-Reranker-0.6B``: a flat
``config.json`` (``Qwen3ForCausalLM`` / ``qwen3``, ``head_dim`` set explicitly, tied embeddings),
``generation_config.json``, ``tokenizer.json`` / ``tokenizer_config.json`` with the REAL Qwen2
vocabulary and Qwen3's added tokens at their real ids (``<think>`` 151667, ``</think>`` 151668), and
one ``model.safetensors`` with the real key names (``model.*``; no ``lm_head.weight``: tied).
Weights are float32. (The tokenizer_config has no chat template: the reranker's prompt is a fixed
string and never goes through one.)

Usage: ``python -m lychee_rerank.testing.tiny_qwen3_reranker OUT_DIR [--seed N]``
"""

from __future__ import annotations

import json
from pathlib import Path

# The probes that spread the scores are prompts of the family's form.
from ..backends.families.qwen3_reranker import DEFAULT_INSTRUCTION, PREFIX, SUFFIX
from .tiny_pieces import seed_main
from .tiny_qwen3_vl import QWEN3_ADDED_TOKENS, build_qwen3_tokenizer, save_weights, spread_tied_yes_no

#: 151,643 BPE tokens plus Qwen3's 26 added tokens (the embedding rows of Qwen3-Reranker-0.6B).
QWEN3_RERANKER_VOCAB_SIZE = 151669
#: ``model_max_length`` of the Qwen3 tokenizer_config.json.
MODEL_MAX_LENGTH = 131072



def _config_dict(*, hidden_size: int, num_layers: int, num_heads: int, num_kv_heads: int, head_dim: int) -> dict:
    """``config.json`` in the published Qwen3-Reranker-0.6B layout (Qwen3-0.6B's keys), sizes scaled down."""
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "hidden_size": hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": 3 * hidden_size,
        "max_position_embeddings": 40960,
        "max_window_layers": num_layers,
        "model_type": "qwen3",
        "num_attention_heads": num_heads,
        "num_hidden_layers": num_layers,
        "num_key_value_heads": num_kv_heads,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000,
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "transformers_version": "4.51.3",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": QWEN3_RERANKER_VOCAB_SIZE,
    }


def _probe_ids(tokenizer: "object") -> list[list[int]]:
    """Prompts of the README's form (short, long, Chinese, custom instructions) to spread the scores on."""
    long_doc = " ".join(["the quick brown fox jumps over the lazy dog near a red car"] * 6)
    pairs = [
        ("What is the capital of China?", "The capital of China is Beijing."),
        ("Explain gravity", "Gravity is a force that attracts two bodies towards each other."),
        ("a cat", "a black cat"), ("coffee", "red car 1 2 3"), ("一只黑猫", "the quick brown fox"),
        ("rocket", "astronaut camera"), ("dog in the park", "coffee cup on a table"), ("white", "商品 主图"),
        ("the lazy dog", "score 8"), ("what jumps over the dog", long_doc), ("red car", "一只黑猫趴在窗台上，旁边有一杯咖啡。"),
    ]
    instructions = [DEFAULT_INSTRUCTION, "Find the passage about animals", "判断文档是否回答了问题"]
    out = []
    for k, (q, d) in enumerate(pairs):
        body = f"<Instruct>: {instructions[k % 3]}\n<Query>: {q}\n<Document>: {d}"
        out.append(tokenizer.encode(PREFIX + body + SUFFIX, add_special_tokens=False))
    return out


def _spread_yes_no(model: "object", tokenizer: "object") -> None:
    """:func:`~.tiny_qwen3_vl.spread_tied_yes_no` over README-form prompts (one kind: text)."""
    import torch

    probes = [torch.tensor([ids]) for ids in _probe_ids(tokenizer)]

    def hidden_groups() -> list:
        return [torch.stack([model.model(input_ids=ids).last_hidden_state[0, -1].float() for ids in probes])]

    spread_tied_yes_no(model, tokenizer, model.model.norm.weight, hidden_groups)


def build(
    out_dir: str | Path,
    seed: int = 0,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    head_dim: int = 32,
) -> Path:
    """Build the checkpoint in ``out_dir`` (about 40 MB, mostly the 151,669-row embedding); return its path."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_qwen3_tokenizer(out)
    config_file = out / "tokenizer_config.json"
    tok_config = json.loads(config_file.read_text())
    tok_config["model_max_length"] = MODEL_MAX_LENGTH
    config_file.write_text(json.dumps(tok_config, indent=2, ensure_ascii=False))
    (out / "config.json").write_text(json.dumps(_config_dict(
        hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads, num_kv_heads=num_kv_heads, head_dim=head_dim,
    ), indent=2))
    (out / "generation_config.json").write_text(json.dumps({
        "bos_token_id": 151643, "eos_token_id": 151645, "transformers_version": "4.51.3",
    }, indent=2))

    torch.manual_seed(seed)
    config = Qwen3Config.from_pretrained(out)
    model = Qwen3ForCausalLM(config).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert len(tokenizer) == 151643 + len(QWEN3_ADDED_TOKENS) == QWEN3_RERANKER_VOCAB_SIZE
    _spread_yes_no(model, tokenizer)

    save_weights(model, out, tie_word_embeddings=True)
    return out


def main(argv: list[str] | None = None) -> None:
    seed_main(build, __doc__, argv)


if __name__ == "__main__":
    main()
