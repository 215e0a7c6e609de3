"""Where the time goes: one throughput scenario under py-spy, summarised by stage.

Usage:
    py-spy record --threads --format raw -o prof.txt -- \\
        python benchmarks/profile_scenario.py --model DIR --scenario "re-queried" --who engine --runs 3
    python benchmarks/profile_scenario.py --summarize prof.txt

The summary gives each stage's share of the main thread's samples (the preprocessing threads
are counted apart: their work overlaps the model's).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

# First match wins, searched from the innermost frame outwards.
STAGES = [
    ("vision tower", r"Qwen2_5_Vision\w*\.forward|get_image_features"),
    ("LM attention", r"Qwen2_5_VLAttention\.forward"),
    ("LM MLP", r"Qwen2MLP\.forward|Qwen2_5_VLMLP\.forward"),
    ("LM other (norms, embeddings, head)", r"Qwen2_5_VLTextModel\.forward|Qwen2_5_VLForConditionalGeneration\.forward"),
    ("3D rope positions", r"get_rope_index"),
    ("KV cache copy", r"deepcopy|batch_repeat_interleave"),
    ("image preprocessing", r"image_processing|_preprocess \(|BaseImageProcessor|processing_qwen2_5_vl"),
    ("prompt + tokenizer", r"apply_chat_template|prepare \(|tokeniz"),
    ("image decode/hash", r"pixel_hash|inputs\.py"),
]


MEASURED = ("measured_runs (",)


def summarize(path: Path) -> None:
    main, side = Counter(), Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        thread = frames[0]
        stage = "other"
        for name, pattern in STAGES:
            if any(re.search(pattern, f) for f in frames):
                stage = name
                break
        if "preprocess" in thread or "decode" in thread:
            side[stage] += int(count)
        elif any(m in stack for m in MEASURED):  # the scored runs only: no start-up, no warm-up
            main[stage] += int(count)
    for title, counter in (("main thread", main), ("helper threads (overlap the main thread)", side)):
        total = sum(counter.values())
        if not total:
            continue
        print(f"{title}: {total} samples")
        for stage, n in counter.most_common():
            print(f"  {stage:38s} {100 * n / total:5.1f}%")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--summarize", type=Path, default=None)
    parser.add_argument("--model", default=None, help="checkpoint directory or hub id (default: the tiny test checkpoint)")
    parser.add_argument("--scenario", default="re-queried")
    parser.add_argument("--who", choices=["engine", "batched"], default="engine")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.summarize:
        summarize(args.summarize)
        return
    from _scenarios import build_scenarios
    from throughput import FULL_SIZES, QUICK_SIZES, engine_runner

    from lychee_rerank import LycheeReranker
    from lychee_rerank.testing.reference import PlainBatchedScorer
    from lychee_rerank.testing.tiny_model import build

    # Like the other benchmarks: without --model, profile on the tiny checkpoint built offline.
    model = args.model or build(tempfile.mkdtemp(prefix="lychee-profile-"))

    (scenario,) = [s for s in build_scenarios(**(QUICK_SIZES if args.quick else FULL_SIZES)) if args.scenario in s.name]
    if args.who == "batched":
        batched = PlainBatchedScorer(model)
        pairs = scenario.reference_pairs()
        run = lambda: batched.score(pairs)  # noqa: E731
    else:
        run = engine_runner(LycheeReranker.from_pretrained(model, device="cpu", dtype="float32"), scenario, 8)

    # The first call of each shape is slow (kernel set-up): warm up outside the measured runs.
    # For the re-queried scenario this also fills the engine's vision cache, as a first query would.
    run()
    measured_runs(run, args.runs)


def measured_runs(run, n: int) -> None:
    for _ in range(n):
        run()


if __name__ == "__main__":
    main()
