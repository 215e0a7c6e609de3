"""MonoQwen2-VL (lightonai/MonoQwen2-VL-v0.1): Qwen2-VL-2B-Instruct + a LoRA adapter, P(True).

Reference scorer: ``MonoVLMRanker`` of AnswerDotAI/rerankers (``rerankers/models/monovlm_ranker.py``,
run unchanged as the parity reference in ``tests/backends/families/test_mono_qwen2_vl.py``).
What it does, and so what this adapter declares:

* the checkpoint is an adapter repository (``adapter_config.json`` + ``adapter_model.safetensors``)
  whose ``base_model_name_or_path`` is the Qwen2-VL base; the processor is the base's
  (``Qwen/Qwen2-VL-2B-Instruct``: its 3,136 to 12,845,056-pixel budget, resized by the processor).
  Here the base is loaded, the adapter attached through peft (its 4.x module paths mapped to
  transformers 5's) and merged, so scoring runs the plain Qwen2-VL model (:mod:`.qwen2_vl`);
* one user turn, no system turn (the chat template then writes "You are a helpful assistant."):
  ``[image, "Assert the relevance of the previous image document to the following query, answer
  True or False. The query is: {query}"]``, then the generation prompt. The first sentence is the
  instruction here: a custom instruction replaces it (rerankers' ``prompt_template`` argument);
* score: ``softmax([logit "False", logit "True"])[1]`` at the last position, i.e. sigmoid of the
  difference (``yes_logit``/``no_logit`` are the "True"/"False" logits);
* documents are images (a document with text is refused, alone); queries are text (an image
  query is refused). The reference never cuts a query; here a query is cut to 8,192 tokens.

Fine-tuning (``lychee finetune``) trains a new LoRA on the merged model; the new adapter names this
adapter directory as its base, and loads as base + published adapter + new adapter (detection and
:meth:`MonoQwen2VLFamily.load` follow the chain). Merging at load differs from the reference's
unmerged LoRA by rounding only (FP32: ~1e-7 on the scores).
"""

from __future__ import annotations

from typing import Any

from . import FAMILIES, adapter_base
from ...prompt import PromptSpec
from .base import Loaded, ScoreHead
from .qwen2_vl import LEGACY_KEY_MAPPING, Qwen2VLAdapter, load_model
from ..loading import attach_adapter

#: The instruction part of rerankers' ``prompt_template`` (the text before the query).
DEFAULT_INSTRUCTION = (
    "Assert the relevance of the previous image document to the following query, answer True or False."
)
QUERY_GLUE = " The query is: "
TRUE, FALSE = "True", "False"


class MonoQwen2VLFamily(Qwen2VLAdapter):
    spec = FAMILIES["mono_qwen2_vl"]
    # Only default_instruction is read (render writes the prompt); the system turn is the template's.
    prompt = PromptSpec(system="", default_instruction=DEFAULT_INSTRUCTION)
    max_query_tokens = 8192
    max_doc_tokens = 8192  # documents hold no text (refused)

    def load(self, name, *, device, dtype, attn_implementation, min_pixels, max_pixels, trust_remote_code) -> Loaded:
        options = dict(device=device, dtype=dtype, attn_implementation=attn_implementation,
                       trust_remote_code=trust_remote_code, min_pixels=min_pixels, max_pixels=max_pixels)
        base = adapter_base(name)
        if base is None:  # a checkpoint with the adapter already merged in (family named with --family)
            return load_model(name, **options)
        if adapter_base(base) is not None:
            # An adapter trained on MonoQwen2-VL (``lychee finetune``'s output names it as its base).
            loaded = self.load(base, **options)
        else:
            loaded = load_model(base, **options)
        model = attach_adapter(loaded.model, name, merge=True, key_mapping=LEGACY_KEY_MAPPING)
        # What peft writes as base_model_name_or_path when this model is fine-tuned: this adapter
        # (base + it), not the bare base, so the new adapter reloads on the same model.
        model.name_or_path = str(name)
        return Loaded(model.to(device).eval(), loaded.processor, loaded.attn_implementation)

    def messages(self, query: Any, document: Any, instruction: str, mode: str) -> list[dict[str, Any]]:
        text = f"{instruction}{QUERY_GLUE}{query.text or ''}"
        content: list[dict] = [{"type": "image"}] if document.raw_image is not None else []
        return [{"role": "user", "content": [*content, {"type": "text", "text": text}]}]

    def head(self, model: Any, tokenizer: Any) -> ScoreHead:
        ids = {}
        for word in (TRUE, FALSE):
            ids[word] = tokenizer.convert_tokens_to_ids(word)
            if ids[word] is None or ids[word] == tokenizer.unk_token_id:
                raise ValueError(f"the tokenizer has no {word!r} token: MonoQwen2-VL scores P({TRUE!r}) over {{False, True}}")
        return ScoreHead(model.get_output_embeddings().weight, ids[TRUE], ids[FALSE], difference=False)
