"""A deliberately naive reference scorer: the yardstick for every fast path.

One pair at a time, the prompt written out by hand from the published format (not with the
package's prompt builder), the processor on that single pair, a full forward pass over every
position with eager attention, softmax over [no, yes]. Nothing shared, nothing cached,
nothing batched.
"""

from __future__ import annotations

import time

import torch
from PIL import Image

SYSTEM = (
    'Judge whether the Document meets the requirements based on the Query and the Instruct provided. '
    'Note that the answer can only be "yes" or "no".'
)
INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


class NaiveReference:
    def __init__(self, model_dir, min_pixels: int = 4 * 28 * 28, max_pixels: int = 1280 * 28 * 28) -> None:
        from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

        # As the published inference scripts do it.
        self.processor = AutoProcessor.from_pretrained(model_dir, min_pixels=min_pixels, max_pixels=max_pixels)
        self.model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            model_dir, dtype=torch.float32, attn_implementation="eager"
        ).eval()
        tok = self.processor.tokenizer
        self.model_seconds = 0.0  # time inside model(...), to show the model dominates a benchmark
        self.yes = tok.convert_tokens_to_ids("yes")
        self.no = tok.convert_tokens_to_ids("no")

    @staticmethod
    def _side(text: str | None, image: Image.Image | None) -> list[dict]:
        parts = []
        if image is not None:
            parts.append({"type": "image"})
        if text:
            parts.append({"type": "text", "text": text})
        return parts

    @torch.no_grad()
    def score(self, query_text=None, query_image=None, doc_text=None, doc_image=None, instruction=INSTRUCTION):
        user = (
            [{"type": "text", "text": f"<Instruct>: {instruction}"}, {"type": "text", "text": "<Query>:"}]
            + self._side(query_text, query_image)
            + [{"type": "text", "text": "\n<Document>:"}]
            + self._side(doc_text, doc_image)
        )
        messages = [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
            {"role": "user", "content": user},
        ]
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        images = [im for im in (query_image, doc_image) if im is not None] or None
        inputs = self.processor(text=[text], images=images, return_tensors="pt")
        self.last_image_tokens = int(inputs["image_grid_thw"].prod(-1).sum()) // 4 if images else 0
        self.last_prompt_tokens = int(inputs["input_ids"].shape[1])  # what HTTP usage.prompt_tokens counts
        start = time.perf_counter()
        logits = self.model(**inputs).logits[0, -1]
        self.model_seconds += time.perf_counter() - start
        pair = torch.stack([logits[self.no], logits[self.yes]])
        return float(torch.softmax(pair, dim=0)[1]), float(logits[self.yes]), float(logits[self.no])
