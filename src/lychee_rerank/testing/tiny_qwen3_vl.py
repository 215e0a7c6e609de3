"""Write a tiny random Qwen3-VL-Reranker checkpoint in the published on-disk layout.

Parity tests against the official Qwen3-VL-Reranker scorer (``tests/official/``) need a
checkpoint that both the official code (transformers 4.57.x) and this project (transformers
5.x) load through their ordinary paths, without the 4 GB download. This one has random
weights and the files of ``Qwen/Qwen3-VL-Reranker-2B`` / ``Qwen/Qwen3-VL-2B-Instruct``:
nested ``config.json`` (``text_config`` / ``vision_config``), ``preprocessor_config.json``,
``video_preprocessor_config.json``, ``chat_template.json`` with the real Qwen3-VL template,
``tokenizer.json`` / ``tokenizer_config.json`` with the REAL Qwen2 vocabulary and Qwen3's added
tokens at their real ids, and one ``model.safetensors`` with the real key names
(``model.language_model.*``, ``model.visual.*``; no ``lm_head.weight``: the embeddings are
tied, as in the 2B checkpoint). Weights are float32 (the real ones are bfloat16).

Usage: ``python -m lychee_rerank.testing.tiny_qwen3_vl OUT_DIR [--seed N]``
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

# The reranker's system prompt and default instruction, for the probes that spread the scores.
from ..backends.families.qwen3_vl import DEFAULT_INSTRUCTION as RERANKER_DEFAULT_INSTRUCTION
from ..prompt import SYSTEM_PROMPT as RERANKER_SYSTEM
from .tiny_model import QWEN_ADDED_TOKENS, SPECIAL_TOKENS, build_qwen2_tokenizer
from .tiny_pieces import drawn_images, seed_parser

#: Qwen3's added tokens after Qwen2.5-VL's 151643..151664; none of them is "special".
QWEN3_EXTRA_TOKENS = ["<tool_response>", "</tool_response>", "<think>", "</think>"]
#: Every added token, in id order from 151643 (151643..151668).
QWEN3_ADDED_TOKENS = [*QWEN_ADDED_TOKENS, *QWEN3_EXTRA_TOKENS]
FIRST_ADDED_ID = 151643
#: ``text_config.vocab_size`` of the Qwen3-VL 2B/8B checkpoints (151,669 tokens, padded).
QWEN3_VL_VOCAB_SIZE = 151936
#: ``additional_special_tokens`` of the Qwen3-VL tokenizer_config.json: the special added tokens
#: minus ``<|endoftext|>`` (which is the pad token). With eos ``<|im_end|>`` and pad
#: ``<|endoftext|>``, ``tokenizer.all_special_ids`` is 151643..151656: exactly the ids the official
#: scorer's truncation keeps.
ADDITIONAL_SPECIAL_TOKENS = SPECIAL_TOKENS[1:]

# The Qwen3-VL Instruct chat template (``chat_template.json`` of Qwen/Qwen3-VL-2B-Instruct and
# Qwen/Qwen3-VL-8B-Instruct, which Qwen3-VL-Reranker inherits), written out literally. Source:
# a public copy in NVIDIA TAO's tao-vl-reason dataset code (``QWEN3VL_INSTRUCT_CHAT_TEMPLATE``,
# "byte-identical to the chat templates shipped with ... Qwen/Qwen3-VL-8B-Instruct"), checked
# against two independent public copies (a llama.cpp server log of a Qwen3-VL GGUF and a
# template registry's "qwen3-vl-instruct" entry). The hub itself is not reachable here.
QWEN3_VL_CHAT_TEMPLATE = "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0].role == 'system' %}\n        {%- if messages[0].content is string %}\n            {{- messages[0].content }}\n        {%- else %}\n            {%- for content in messages[0].content %}\n                {%- if 'text' in content %}\n                    {{- content.text }}\n                {%- endif %}\n            {%- endfor %}\n        {%- endif %}\n        {{- '\\n\\n' }}\n    {%- endif %}\n    {{- \"# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0].role == 'system' %}\n        {{- '<|im_start|>system\\n' }}\n        {%- if messages[0].content is string %}\n            {{- messages[0].content }}\n        {%- else %}\n            {%- for content in messages[0].content %}\n                {%- if 'text' in content %}\n                    {{- content.text }}\n                {%- endif %}\n            {%- endfor %}\n        {%- endif %}\n        {{- '<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- set image_count = namespace(value=0) %}\n{%- set video_count = namespace(value=0) %}\n{%- for message in messages %}\n    {%- if message.role == \"user\" %}\n        {{- '<|im_start|>' + message.role + '\\n' }}\n        {%- if message.content is string %}\n            {{- message.content }}\n        {%- else %}\n            {%- for content in message.content %}\n                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}\n                    {%- set image_count.value = image_count.value + 1 %}\n                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}\n                    <|vision_start|><|image_pad|><|vision_end|>\n                {%- elif content.type == 'video' or 'video' in content %}\n                    {%- set video_count.value = video_count.value + 1 %}\n                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}\n                    <|vision_start|><|video_pad|><|vision_end|>\n                {%- elif 'text' in content %}\n                    {{- content.text }}\n                {%- endif %}\n            {%- endfor %}\n        {%- endif %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role + '\\n' }}\n        {%- if message.content is string %}\n            {{- message.content }}\n        {%- else %}\n            {%- for content_item in message.content %}\n                {%- if 'text' in content_item %}\n                    {{- content_item.text }}\n                {%- endif %}\n            {%- endfor %}\n        {%- endif %}\n        {%- if message.tool_calls %}\n            {%- for tool_call in message.tool_calls %}\n                {%- if (loop.first and message.content) or (not loop.first) %}\n                    {{- '\\n' }}\n                {%- endif %}\n                {%- if tool_call.function %}\n                    {%- set tool_call = tool_call.function %}\n                {%- endif %}\n                {{- '<tool_call>\\n{\"name\": \"' }}\n                {{- tool_call.name }}\n                {{- '\", \"arguments\": ' }}\n                {%- if tool_call.arguments is string %}\n                    {{- tool_call.arguments }}\n                {%- else %}\n                    {{- tool_call.arguments | tojson }}\n                {%- endif %}\n                {{- '}\\n</tool_call>' }}\n            {%- endfor %}\n        {%- endif %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if loop.first or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {%- if message.content is string %}\n            {{- message.content }}\n        {%- else %}\n            {%- for content in message.content %}\n                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}\n                    {%- set image_count.value = image_count.value + 1 %}\n                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}\n                    <|vision_start|><|image_pad|><|vision_end|>\n                {%- elif content.type == 'video' or 'video' in content %}\n                    {%- set video_count.value = video_count.value + 1 %}\n                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}\n                    <|vision_start|><|video_pad|><|vision_end|>\n                {%- elif 'text' in content %}\n                    {{- content.text }}\n                {%- endif %}\n            {%- endfor %}\n        {%- endif %}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"  # noqa: E501


# Real preprocessor files of the Qwen3-VL checkpoints (patch 16, merge 2, mean/std 0.5).
PREPROCESSOR_CONFIG = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "image_processor_type": "Qwen2VLImageProcessorFast",
}
VIDEO_PREPROCESSOR_CONFIG = {
    **{k: v for k, v in PREPROCESSOR_CONFIG.items() if k != "image_processor_type"},
    "size": {"longest_edge": 25165824, "shortest_edge": 4096},
    "video_processor_type": "Qwen3VLVideoProcessor",
}


def build_qwen3_tokenizer(out_dir: Path) -> "object":
    """The real Qwen2 vocabulary with Qwen3's added tokens (151643..151668), saved in the
    published Qwen3-VL tokenizer layout.

    ``tokenizer.json`` comes from :func:`~lychee_rerank.testing.tiny_model.build_qwen2_tokenizer`
    plus the four Qwen3 tokens; ``tokenizer_config.json`` is then written the way the real
    checkpoint has it (transformers-4.57 era: ``additional_special_tokens``, ``added_tokens_decoder``,
    no chat template), so that transformers 4.57 and 5.x read the same special tokens.
    """
    from tokenizers import AddedToken

    out = Path(out_dir)
    fast = build_qwen2_tokenizer(out)
    fast.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN3_EXTRA_TOKENS])
    for i, t in enumerate(QWEN3_ADDED_TOKENS):
        if fast.convert_tokens_to_ids(t) != FIRST_ADDED_ID + i:  # pragma: no cover - guards the real ids
            raise RuntimeError(f"{t} got id {fast.convert_tokens_to_ids(t)}, expected {FIRST_ADDED_ID + i}")
    fast.backend_tokenizer.save(str(out / "tokenizer.json"))
    n_special = len(SPECIAL_TOKENS)
    decoder = {
        str(FIRST_ADDED_ID + i): {
            "content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
            "special": i < n_special,
        }
        for i, t in enumerate(QWEN3_ADDED_TOKENS)
    }
    config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": ADDITIONAL_SPECIAL_TOKENS,
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 262144,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
    for stale in ("special_tokens_map.json", "chat_template.jinja"):
        (out / stale).unlink(missing_ok=True)
    return fast


def _mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary pairs over (t, h, w) in Qwen3-VL's proportions ([24, 20, 20] at 128).

    With the interleaved layout, h takes pairs 1, 4, 7, ... and w 2, 5, 8, ... below 3x their
    share, so h and w are rounded down to stay inside head_dim/2 (e.g. [4, 2, 2] at 16).
    """
    half = head_dim // 2
    hw = half * 20 // 64
    return [half - 2 * hw, hw, hw]


def _config_dict(
    *, hidden_size: int, num_layers: int, num_heads: int, num_kv_heads: int, vision_hidden_size: int,
    vision_depth: int, vision_heads: int, tie_word_embeddings: bool,
) -> dict:
    """``config.json`` in the published Qwen3-VL layout, sizes scaled down.

    Long because it spells out the whole nested config literally, as the real 2B checkpoint has
    it (key order included): one readable place to compare against.
    """
    head_dim = hidden_size // num_heads
    return {
        "architectures": ["Qwen3VLForConditionalGeneration"],
        "image_token_id": 151655,
        "model_type": "qwen3_vl",
        "text_config": {
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": 151643,
            "dtype": "float32",
            "eos_token_id": 151645,
            "head_dim": head_dim,
            "hidden_act": "silu",
            "hidden_size": hidden_size,
            "initializer_range": 0.02,
            "intermediate_size": 3 * hidden_size,
            "max_position_embeddings": 262144,
            "model_type": "qwen3_vl_text",
            "num_attention_heads": num_heads,
            "num_hidden_layers": num_layers,
            "num_key_value_heads": num_kv_heads,
            "rms_norm_eps": 1e-06,
            "rope_scaling": {
                "mrope_interleaved": True,
                "mrope_section": _mrope_section(head_dim),
                "rope_type": "default",
            },
            "rope_theta": 5000000,
            "tie_word_embeddings": tie_word_embeddings,
            "use_cache": True,
            "vocab_size": QWEN3_VL_VOCAB_SIZE,
        },
        "tie_word_embeddings": tie_word_embeddings,
        "transformers_version": "4.57.0.dev0",
        "video_token_id": 151656,
        "vision_config": {
            # Deepstack taps, one per decoder layer they feed (real 2B: [5, 11, 17] of 24 blocks).
            "deepstack_visual_indexes": list(range(min(vision_depth, num_layers))),
            "depth": vision_depth,
            "hidden_act": "gelu_pytorch_tanh",
            "hidden_size": vision_hidden_size,
            "in_channels": 3,
            "initializer_range": 0.02,
            "intermediate_size": 4 * vision_hidden_size,
            "model_type": "qwen3_vl",
            "num_heads": vision_heads,
            "num_position_embeddings": 2304,
            "out_hidden_size": hidden_size,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        "vision_end_token_id": 151653,
        "vision_start_token_id": 151652,
    }


def _probe_images() -> list["object"]:
    """Small drawn images (gradients and a block) of several sizes, sides already multiples of 32
    as the official scorer's resize (qwen_vl_utils) leaves them: 4 to 60 visual tokens."""
    return drawn_images([(64, 64), (96, 64), (32, 128), (128, 96), (256, 192), (320, 128), (192, 160), (96, 96)])


def _probe_inputs(processor: "object") -> list[tuple[str, dict]]:
    """Reranker prompts as the official scorer renders them, as model inputs tagged by kind:
    text pairs (short, long, Chinese, an empty "NULL" side) and pairs with images on either or
    both sides."""
    long_doc = " ".join(["the quick brown fox jumps over the lazy dog near a red car"] * 6)
    texts = [
        ("a cat", "a black cat"), ("coffee", "red car 1 2 3"), ("一只黑猫", "the quick brown fox"),
        ("rocket", "astronaut camera"), ("dog in the park", "coffee cup on a table"), ("white", "商品 主图"),
        ("the lazy dog", "score 8"), ("find product photos", "a red car"), ("a cat", "NULL"),
        ("what jumps over the dog", long_doc), ("red car", "一只黑猫趴在窗台上，旁边有一杯咖啡。"),
    ]
    head = (
        f"<|im_start|>system\n{RERANKER_SYSTEM}<|im_end|>\n<|im_start|>user\n"
        f"<Instruct>: {RERANKER_DEFAULT_INSTRUCTION}<Query>:"
    )
    tail = "<|im_end|>\n<|im_start|>assistant\n"
    image = "<|vision_start|><|image_pad|><|vision_end|>"
    probes = [("text", processor(text=[f"{head}{q}\n<Document>:{d}{tail}"], return_tensors="pt")) for q, d in texts]
    pictures = _probe_images()
    for k, img in enumerate(pictures):
        q, d = texts[k]
        layouts = [
            (f"{head}{image}\n<Document>:{d}{tail}", [img]),
            (f"{head}{q}\n<Document>:{image}{tail}", [img]),
            (f"{head}{q}\n<Document>:{image}{d}{tail}", [img]),
            (f"{head}{image}{q}\n<Document>:{image}{tail}", [img, pictures[(k + 3) % len(pictures)]]),
        ]
        prompt, imgs = layouts[k % len(layouts)]
        probes.append(("image", processor(text=[prompt], images=imgs, do_resize=False, return_tensors="pt")))
    return probes


def spread_tied_yes_no(
    model: "object", tokenizer: "object", norm: "object", hidden_groups: "Callable[[], list]", rounds: int = 3
) -> None:
    """Make p(yes) vary over 0-1 with the input, for a checkpoint whose lm_head IS its input embedding.

    The score is sigmoid(h . (E[yes] - E[no])) with h the last hidden state; with random
    weights h sits near one point per input kind (``hidden_groups()`` returns one stack of h per
    kind: text-only, with an image...), so p(yes) is nearly constant and a mismatch between two
    code paths could hide. We set E[yes] = E[no] + delta, delta an ordinary-sized row orthogonal
    to the mean h of each kind (so each kind centres on p = 0.5), then scale the final RMSNorm
    weight ``norm`` so the logits spread with a standard deviation of 1.5. "yes"/"no" occur in
    the system prompt, so a large row would also move h: keeping delta small and scaling h
    instead keeps the rounds converging.
    """
    import torch

    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    w = model.get_output_embeddings().weight
    direction = torch.randn(w.shape[1], generator=torch.Generator().manual_seed(1234))
    with torch.no_grad():
        for r in range(rounds):
            groups = hidden_groups()
            basis = torch.linalg.qr(torch.stack([g.mean(0) for g in groups], dim=1)).Q
            delta = direction - basis @ (basis.T @ direction)
            delta *= float(w[no].float().norm()) / float(delta.norm())
            w[yes] = w[no] + delta.to(w.dtype)
            if r == 0:
                spread = float(torch.cat([(g - g.mean(0)) @ delta for g in groups]).std())
                norm *= 1.5 / max(spread, 1e-6)


def _spread_yes_no(model: "object", processor: "object") -> None:
    """:func:`spread_tied_yes_no` over text-only and image prompts of the reranker's form."""
    import torch

    probes = _probe_inputs(processor)

    def hidden_groups() -> list:
        hidden: dict[str, list] = {}
        for kind, inputs in probes:
            hidden.setdefault(kind, []).append(model.model(**inputs).last_hidden_state[0, -1].float())
        return [torch.stack(v) for v in hidden.values()]

    spread_tied_yes_no(model, processor.tokenizer, model.model.language_model.norm.weight, hidden_groups)


def save_weights(model: "object", out: Path, tie_word_embeddings: bool) -> None:
    """``model.safetensors`` under the model's own key names; no ``lm_head.weight`` when tied (as published)."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()
             if not (tie_word_embeddings and k == "lm_head.weight")}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})


def build(
    out_dir: str | Path,
    seed: int = 0,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    vision_hidden_size: int = 32,
    vision_depth: int = 2,
    vision_heads: int = 2,
    tie_word_embeddings: bool = True,
) -> Path:
    """Build the checkpoint in ``out_dir`` (about 40 MB, mostly the 151,936-row embedding) and
    return its path."""
    import torch
    from transformers import AutoProcessor, Qwen3VLConfig, Qwen3VLForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_qwen3_tokenizer(out)
    (out / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=2))
    (out / "video_preprocessor_config.json").write_text(json.dumps(VIDEO_PREPROCESSOR_CONFIG, indent=2))
    (out / "chat_template.json").write_text(json.dumps({"chat_template": QWEN3_VL_CHAT_TEMPLATE}, indent=2))
    config_dict = _config_dict(
        hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads, num_kv_heads=num_kv_heads,
        vision_hidden_size=vision_hidden_size, vision_depth=vision_depth, vision_heads=vision_heads,
        tie_word_embeddings=tie_word_embeddings,
    )
    (out / "config.json").write_text(json.dumps(config_dict, indent=2))
    (out / "generation_config.json").write_text(json.dumps({
        "bos_token_id": 151643, "pad_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643],
        "top_k": 20, "top_p": 0.8, "repetition_penalty": 1.0, "temperature": 0.7,
        "transformers_version": "4.57.0.dev0",
    }, indent=2))

    torch.manual_seed(seed)
    config = Qwen3VLConfig.from_pretrained(out)
    model = Qwen3VLForConditionalGeneration(config).eval()
    processor = AutoProcessor.from_pretrained(out)
    _spread_yes_no(model, processor)

    save_weights(model, out, tie_word_embeddings)  # model.language_model.*, model.visual.*, lm_head.* unless tied
    return out


def main(argv: list[str] | None = None) -> None:
    parser = seed_parser(__doc__)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--vision-hidden-size", type=int, default=32)
    parser.add_argument("--vision-depth", type=int, default=2)
    parser.add_argument("--vision-heads", type=int, default=2)
    parser.add_argument("--untied", action="store_true", help="separate lm_head (as the 8B checkpoint)")
    args = parser.parse_args(argv)
    path = build(
        args.out_dir, seed=args.seed, hidden_size=args.hidden_size, num_layers=args.layers,
        num_heads=args.heads, num_kv_heads=args.kv_heads, vision_hidden_size=args.vision_hidden_size,
        vision_depth=args.vision_depth, vision_heads=args.vision_heads, tie_word_embeddings=not args.untied,
    )
    print(path)


if __name__ == "__main__":
    main()
