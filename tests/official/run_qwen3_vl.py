"""Run the OFFICIAL Qwen3-VL-Reranker scorer on a list of calls; executed in the official environment.

    PYTHONPATH=.cache/official-qwen3vl .venv/bin/python tests/official/run_qwen3_vl.py REQUEST.json OUT.json

(see ``scripts/official_env.sh``). Not a test module and not imported by the tests: the harness
(``tests/official/harness.py``) starts it in a subprocess, because the official code needs
transformers 4.57.x while the project runs on 5.x.

REQUEST.json::

    {"model_dir": "/path/to/checkpoint",
     "calls": [{"instruction": "...",                       # optional: omitted -> official default
                "query": {"text": "...", "image": "/a.png"},  # text/image: a value or a list; either may be absent
                "documents": [{"text": "..."}, {"image": ["/b.png", "/c.png"]}, {}]}],
     "images_as": "pil",          # optional: "pil" (default; PIL images opened here) or "path"
     "reranker_kwargs": {},       # optional: Qwen3VLReranker(...) keyword arguments, e.g. {"max_length": 2048}
     "return_inputs": false}      # optional: also return each pair's input_ids and image_grid_thw

OUT.json: ``{"transformers_version", "scores": [[float per document] per call], "load_seconds",
"score_seconds"}`` plus ``"inputs"`` (per call, per document: ``{"input_ids", "image_grid_thw"}``)
when asked. Each call goes through ``Qwen3VLReranker.process`` exactly as the official README shows;
the official model is built once, in float32.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _side(side: dict, images_as: str) -> dict:
    """A query/document dict for ``process``: images opened with PIL (or left as paths)."""
    from PIL import Image

    out = {k: v for k, v in side.items() if k != "image"}
    if "image" in side:
        paths = side["image"] if isinstance(side["image"], list) else [side["image"]]
        if images_as == "path":
            images = [str(p) for p in paths]
        else:
            images = []
            for p in paths:
                with Image.open(p) as img:
                    img.load()
                    images.append(img.copy())
        out["image"] = images if isinstance(side["image"], list) else images[0]
    return out


def main(argv: list[str]) -> int:
    request_path, out_path = Path(argv[0]), Path(argv[1])
    request = json.loads(request_path.read_text())
    sys.path.insert(0, str(Path(__file__).resolve().parent))

    import torch
    import transformers
    from qwen3_vl_reranker import Qwen3VLReranker  # the vendored official scorer, unchanged

    print(f"transformers {transformers.__version__}", flush=True)
    images_as = request.get("images_as", "pil")
    t0 = time.perf_counter()
    reranker = Qwen3VLReranker(
        request["model_dir"], torch_dtype=torch.float32, **request.get("reranker_kwargs", {})
    )
    load_seconds = time.perf_counter() - t0

    recorded: list[dict] = []
    if request.get("return_inputs"):
        official_tokenize = reranker.tokenize

        def tokenize(pairs, **kwargs):
            inputs = official_tokenize(pairs, **kwargs)
            grid = inputs.get("image_grid_thw")
            recorded.append({
                "input_ids": inputs["input_ids"][0].tolist(),
                "image_grid_thw": grid.tolist() if grid is not None else [],
            })
            return inputs

        reranker.tokenize = tokenize

    scores, inputs = [], []
    t0 = time.perf_counter()
    for call in request["calls"]:
        payload = {
            "query": _side(call.get("query", {}), images_as),
            "documents": [_side(d, images_as) for d in call.get("documents", [])],
        }
        if "instruction" in call:
            payload["instruction"] = call["instruction"]
        recorded.clear()
        scores.append([float(s) for s in reranker.process(payload)])
        inputs.append(list(recorded))
    result = {
        "transformers_version": transformers.__version__,
        "scores": scores,
        "load_seconds": load_seconds,
        "score_seconds": time.perf_counter() - t0,
    }
    if request.get("return_inputs"):
        result["inputs"] = inputs
    out_path.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
