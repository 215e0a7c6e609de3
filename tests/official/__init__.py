"""Reference checks against the official Qwen3-VL-Reranker scorer (vendored, run in its own environment)."""
