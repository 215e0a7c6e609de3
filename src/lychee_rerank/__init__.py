"""lychee-rerank: multimodal reranking (text, images, both) with lychee-rerank-mm."""

from .engine import LycheeReranker, ScoringError
from .inputs import Content, ImageLimits, InputError
from .prompt import DEFAULT_INSTRUCTION, SYSTEM_PROMPT, build_messages
from .results import PairScore, RerankResult

__version__ = "0.1.0"

__all__ = [
    "Content",
    "DEFAULT_INSTRUCTION",
    "ImageLimits",
    "InputError",
    "LycheeReranker",
    "PairScore",
    "RerankResult",
    "SYSTEM_PROMPT",
    "ScoringError",
    "build_messages",
    "__version__",
]
