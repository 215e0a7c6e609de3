"""Fixtures for the official-scorer tests; they live in ``harness.py`` so other folders can use them.

The root ``tests/conftest.py`` registers them for the whole suite (``pytest_plugins =
["tests.official.harness"]``); importing them here too keeps this folder self-contained. A second
registration costs nothing: the checkpoint and the environment are cached per process.
"""

from tests.official.harness import official_env, qwen3_vl_dir  # noqa: F401  (fixtures)
