"""``python -m lychee_rerank.cli``: the same as ``lychee``."""

from . import main

main()
