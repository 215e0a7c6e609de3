"""The one place a reranker prompt is built, from the pieces its checkpoint family declares.

Inference and fine-tuning both call :func:`build_messages` with the family's
:class:`PromptSpec`, so a score can never drift because two code paths wrote the prompt
differently. (The naive references in the tests write theirs out by hand, on purpose.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional

from PIL import Image

from .config import ScoringMode
from .inputs import Content

#: System message of the published lychee-rerank-mm inference scripts (Qwen3-VL-Reranker's too).
SYSTEM_PROMPT = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".'
)
#: System message for ``scoring="generate"``: chat VLMs that were not trained as rerankers.
GENERATE_SYSTEM_PROMPT = (
    "Judge how well the Document meets the requirements based on the Query and the Instruct "
    "provided. Answer with a single number from 0 (irrelevant) to 10 (perfect match) and nothing else."
)
#: lychee-rerank-mm's default instruction (each family declares its own, in its PromptSpec).
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


@dataclass(frozen=True)
class PromptSpec:
    """The pieces of a yes/no reranker prompt: a system turn, then one user turn of parts.

    User parts, in order: ``instruct_prefix + instruction``, ``query_prefix``, the query's
    image then text, ``document_prefix``, the document's image then text. A side with neither
    becomes one text part ``empty_side`` (nothing when it is ``None``).
    """

    system: str = SYSTEM_PROMPT
    default_instruction: str = DEFAULT_INSTRUCTION
    instruct_prefix: str = "<Instruct>: "
    query_prefix: str = "<Query>:"
    document_prefix: str = "\n<Document>:"
    empty_side: Optional[str] = None
    generate_system: Optional[str] = None
    """System turn of ``scoring="generate"`` (0-10 answers); ``None``: the family cannot generate."""


@dataclass(frozen=True)
class Prompt:
    """Chat messages plus the images they refer to, in the order the placeholders appear."""

    messages: list[dict]
    contents: tuple[Content, ...] = field(default=(), repr=False)

    @property
    def images(self) -> list[Image.Image]:
        """Decoded on access: building the messages needs only where each image goes."""
        return [c.image for c in self.contents if c.has_image]


def _parts(content: Content, empty: Optional[str]) -> list[dict]:
    parts: list[dict] = []
    if content.has_image:
        parts.append({"type": "image"})
    if content.text:
        parts.append({"type": "text", "text": content.text})
    if not parts and empty is not None:
        parts.append({"type": "text", "text": empty})
    return parts


def build_messages(
    query: Content,
    document: Content,
    instruction: str | None = None,
    mode: ScoringMode = "yesno",
    spec: PromptSpec = PromptSpec(generate_system=GENERATE_SYSTEM_PROMPT),
) -> Prompt:
    """Build the prompt of one (query, document) pair from a family's ``spec`` (default: lychee's).

    Layout: system message, then one user message whose parts are ``<Instruct>: ...``,
    ``<Query>:``, the query's image then text, ``\\n<Document>:``, the document's image then
    text. The caller applies the chat template with the generation prompt (empty assistant turn).
    """
    if mode == "generate" and spec.generate_system is None:
        raise ValueError("this model family is a yes/no reranker: scoring='generate' is not available for it")
    system = spec.system if mode == "yesno" else spec.generate_system
    user = [
        {"type": "text", "text": f"{spec.instruct_prefix}{instruction or spec.default_instruction}"},
        {"type": "text", "text": spec.query_prefix},
        *_parts(query, spec.empty_side),
        {"type": "text", "text": spec.document_prefix},
        *_parts(document, spec.empty_side),
    ]
    messages = [
        {"role": "system", "content": [{"type": "text", "text": system}]},
        {"role": "user", "content": user},
    ]
    return Prompt(messages=messages, contents=(query, document))


@lru_cache(maxsize=1)
def builtin_templates() -> dict[str, str]:
    """Named instructions shipped with the package (``data/instructions.json``)."""
    text = resources.files("lychee_rerank").joinpath("data/instructions.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def load_templates(path: str | Path | None = None) -> dict[str, str]:
    """Built-in templates, overlaid with a user JSON file ``{"name": "instruction", ...}``."""
    templates = dict(builtin_templates())
    if path is not None:
        try:
            user = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ValueError(f"template file not found: {path}") from exc
        except json.JSONDecodeError as exc:
            raise ValueError(f"template file {path} is not valid JSON: {exc}") from exc
        if not isinstance(user, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in user.items()):
            raise ValueError(f'template file {path} must be a JSON object {{"name": "instruction", ...}}')
        templates.update(user)
    return templates


def resolve_instruction(
    instruction: str | None = None,
    template: str | None = None,
    templates_file: str | Path | None = None,
) -> str | None:
    """Pick the instruction: an explicit one wins, then a named template; ``None`` means the
    model family's own default (``backend.default_instruction``), which differs by family."""
    if instruction is not None and template is not None:
        raise ValueError("give either an instruction or a template name, not both")
    if instruction is not None:
        if not instruction.strip():
            raise ValueError("instruction is empty")
        return instruction
    if template is not None:
        templates = load_templates(templates_file)
        if template not in templates:
            raise ValueError(f"unknown template {template!r}; known: {', '.join(sorted(templates))}")
        return templates[template]
    return None
