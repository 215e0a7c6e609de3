"""The vision tower's patch embedding as one matmul on CPU.

Vision towers that cut images into patches beforehand (lychee-rerank-mm's 2x14x14 patches, say)
embed each with a ``Conv3d`` whose kernel equals its stride: mathematically a linear layer over
the flattened values (1,176 there). PyTorch's CPU Conv3d is slow for this shape; profiling a
cold 50-photo gallery put 37% of the vision tower's time in it. Any model whose
``model.visual.patch_embed.proj`` is such a convolution qualifies; others are left alone. The
same weights as a matmul give the same features (summation order aside: ~1e-7 in FP32).
CUDA keeps the convolution (cuDNN) until the GPU run-book has measured the swap there.
"""

from __future__ import annotations

import types
from typing import Any

import torch


def _matmul_forward(self: Any, hidden_states: torch.Tensor) -> torch.Tensor:
    if type(self.proj) is not torch.nn.Conv3d:  # wrapped later (a LoRA layer, say): its own forward
        return type(self).forward(self, hidden_states)
    weight = self.proj.weight
    flat = hidden_states.reshape(-1, weight[0].numel()).to(weight.dtype)
    out = flat @ weight.reshape(weight.shape[0], -1).t()
    if self.proj.bias is not None:
        out = out + self.proj.bias
    return out.view(-1, self.embed_dim)


def use_matmul_patch_embed(model: Any) -> bool:
    """Swap the patch embedding's forward for the matmul form; says whether it did.

    Only a Conv3d whose kernel equals its stride (patches are already cut) qualifies; anything
    else is left alone.
    """
    embed = getattr(getattr(getattr(model, "model", None), "visual", None), "patch_embed", None)
    proj = getattr(embed, "proj", None)
    if not isinstance(proj, torch.nn.Conv3d) or tuple(proj.kernel_size) != tuple(proj.stride) or proj.padding != (0, 0, 0):
        return False
    if proj.groups != 1 or proj.dilation != (1, 1, 1) or not hasattr(embed, "embed_dim"):
        return False
    embed.forward = types.MethodType(_matmul_forward, embed)
    return True
