"""A griffe extension for the API pages: what the docstrings in ``src/`` say, readable in Markdown.

* Sphinx roles (``:class:`~a.b.C```), which Markdown would print verbatim, become code (`C`).
* A pydantic field without a docstring, ``name: T = Field(..., description="...")``, gets its
  ``description`` as its docstring: that text is the field's documentation (it is also what the
  OpenAPI schema and ``--help`` show), so the reference says the same; its signature line shows
  the default rather than the whole ``Field(...)`` call.

The source stays as it is; only the rendered pages change.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|meth|class|attr|mod|data|exc|obj|const|type):`(~?)([^`]+)`")


def plain(text: str) -> str:
    """``:class:`~a.b.C``` -> `` `C` ``; ``:func:`a.b``` -> `` `a.b` ``."""
    return ROLE.sub(lambda m: "`" + (m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2).lstrip(".")) + "`", text)


def _field_call(node: Any) -> ast.Call | None:
    value = getattr(node, "value", None)
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return value if name == "Field" else None


def field_default(node: Any) -> str | None:
    """The default of a ``Field(...)`` call as source text (``default_factory=X``: ``X()``)."""
    call = _field_call(node)
    if call is None:
        return None
    if call.args:
        return ast.unparse(call.args[0])
    for kw in call.keywords:
        if kw.arg == "default":
            return ast.unparse(kw.value)
        if kw.arg == "default_factory":
            return ast.unparse(kw.value) + "()"
    return None


def field_description(node: Any) -> str | None:
    """``description=`` of a ``Field(...)`` call assigned at ``node``, if it is a literal."""
    value = _field_call(node)
    if value is None:
        return None
    for kw in value.keywords:
        if kw.arg == "description":
            try:
                text = ast.literal_eval(kw.value)
            except ValueError:
                return None
            return text if isinstance(text, str) else None
    return None


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, node: Any, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.is_attribute and obj.docstring is None and isinstance(node, ast.AST):
            text = field_description(node)
            if text:
                obj.docstring = griffe.Docstring(text, parent=obj)
        if obj.is_attribute and isinstance(node, ast.AST) and _field_call(node) is not None:
            # The signature line shows the default, not the whole Field(...) call (its
            # description is the text below it, its bounds are in the HTTP API's schemas).
            obj.value = field_default(node)
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)
