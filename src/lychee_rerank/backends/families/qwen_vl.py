"""What the Qwen-VL families share: 3D rope positions, ``mm_encoder_outputs`` and the yes/no head.

Qwen2.5-VL and Qwen3-VL models expose the same helpers in transformers 5.18+
(``model.model.get_rope_index``, ``get_image_features`` and the ``mm_encoder_outputs``
argument), so the two adapters differ only in loading, geometry, preprocessing and which
vision outputs they keep. Positions are always computed on the full sequence and passed
explicitly, so the model's own ``rope_deltas`` state is never relied on (it is wrong for a
continuation from a KV cache and shared between threads).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .base import FamilyAdapter, ScoreHead, yes_no_head


class QwenVLFamily(FamilyAdapter):
    """Shared mechanics of the Qwen-VL yes/no rerankers (subclasses declare the rest)."""

    #: Score with the one-row difference head (see :class:`~.base.ScoreHead`).
    difference_head = False

    def head(self, model: Any, tokenizer: Any) -> ScoreHead:
        return yes_no_head(model, tokenizer, difference=self.difference_head)

    def positions(
        self, model: Any, input_ids: torch.Tensor, mask: torch.Tensor, grids: Sequence[tuple[int, int, int]],
        image_token_id: int,
    ) -> torch.Tensor:
        mm_types = (input_ids == image_token_id).int()
        grid = torch.tensor(list(grids), device=input_ids.device) if grids else None
        positions, _ = model.model.get_rope_index(input_ids, mm_types, image_grid_thw=grid, attention_mask=mask)
        return positions

    def generate_inputs(self, input_ids: torch.Tensor, vision_inputs: dict[str, torch.Tensor], image_token_id: int) -> dict:
        # transformers 5.24's Qwen-VL forward needs the token types beside a grid to place images.
        return {"mm_token_type_ids": (input_ids == image_token_id).int()} if vision_inputs else {}

    def image_tokens(self, grid: tuple[int, int, int]) -> int:
        return grid[0] * grid[1] * grid[2] // self.merge**2

    merge = 2

    def vision_output(self, model: Any, inputs: dict[str, torch.Tensor]) -> Any:
        """``get_image_features`` on the batch's pixels (moved to the model's device and dtype)."""
        device = model.device
        pixels = inputs["pixel_values"].to(device, model.dtype)
        return model.model.get_image_features(pixels, inputs["image_grid_thw"].to(device))
