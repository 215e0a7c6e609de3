"""mkdocs hook: the HTTP API reference page, rendered from the service's own OpenAPI schema.

At build time it creates the FastAPI app (``create_app`` only builds routes and schemas: the model
loads in the app's lifespan, which never runs here), takes ``app.openapi()`` and writes two
generated files into the site: ``reference/http.md`` (every route, its bodies and responses, every
schema as a table; plain Markdown, so the site search indexes it and nothing loads from a CDN) and
``reference/openapi.json`` (the schema itself, for client generators). The schema is built with
default settings: ``LYCHEE_*`` variables of whoever builds the docs do not change the page.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Iterator

from mkdocs.structure.files import File, Files

PAGE = "reference/http.md"
SCHEMA = "reference/openapi.json"


@contextlib.contextmanager
def _default_env() -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("LYCHEE_")}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


def openapi_schema() -> dict[str, Any]:
    from lychee_rerank.serving.app import create_app
    from lychee_rerank.serving.settings import ServerSettings

    with _default_env():
        return create_app(ServerSettings()).openapi()


def _anchor(name: str) -> str:
    return "schema-" + name.lower()


def _cell(text: Any) -> str:
    """One table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _type(schema: dict[str, Any]) -> str:
    """A short readable type: `string`, [RerankRequest](#...), array of X, X | null."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " \\| ".join(_type(s) for s in schema[key])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " \\| ".join(f"`{k}`" for k in kind)
    if kind == "array":
        return "array of " + (_type(schema["items"]) if "items" in schema else "`any`")
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return "object of " + _type(schema["additionalProperties"])
    return f"`{kind or 'any'}`"


def _constraints(schema: dict[str, Any]) -> str:
    bits = []
    for key, word in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"),
                      ("minLength", "min length"), ("maxLength", "max length"), ("minItems", "min items"),
                      ("maxItems", "max items")):
        if key in schema:
            bits.append(f"{word} {schema[key]}")
    return ", ".join(bits)


def _body_schema(content: dict[str, Any]) -> tuple[str, str] | None:
    for media, spec in content.items():
        if "schema" in spec:
            return media, _type(spec["schema"])
    return None


def render(schema: dict[str, Any]) -> str:
    info = schema.get("info", {})
    out = [
        "# HTTP API",
        "",
        f"`lychee serve` ({info.get('title', '')} {info.get('version', '')}, OpenAPI {schema.get('openapi', '')}). "
        "This page is generated from the running code's OpenAPI schema each time the site is built; "
        f"the schema itself: [openapi.json](openapi.json). A running server also serves it at `/openapi.json`, "
        "with Swagger UI at `/docs` and ReDoc at `/redoc` (offline assets). With an API key "
        "(`--api-key` / `LYCHEE_API_KEY`) every route except `/health` needs `Authorization: Bearer KEY` "
        "(the page is built without one).",
        "",
    ]
    if info.get("summary"):
        out += [f"**{info['summary']}**", ""]
    if info.get("description"):
        out += [info["description"], ""]
    out += ["## Routes", "", "| method | path | what it does |", "|---|---|---|"]
    ops = [(path, method, op) for path, methods in schema.get("paths", {}).items() for method, op in methods.items()]
    for path, method, op in ops:
        out.append(f"| `{method.upper()}` | [`{path}`](#{op.get('operationId', path).lower()}) | {_cell(op.get('summary', ''))} |")
    out.append("")
    for path, method, op in ops:
        op_id = op.get("operationId", path).lower()
        out += [f"### `{method.upper()} {path}` {{#{op_id}}}", ""]
        if op.get("summary"):
            out += [f"**{op['summary']}**", ""]
        if op.get("description"):
            out += [op["description"].strip(), ""]
        if op.get("tags"):
            out += ["Tags: " + ", ".join(f"`{t}`" for t in op["tags"]), ""]
        params = op.get("parameters", [])
        if params:
            out += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
            for p in params:
                out.append(f"| `{p['name']}` | {p.get('in', '')} | {_type(p.get('schema', {}))} | "
                           f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description', ''))} |")
            out.append("")
        body = op.get("requestBody")
        if body:
            found = _body_schema(body.get("content", {}))
            if found:
                out += [f"Request body (`{found[0]}`{', required' if body.get('required') else ''}): {found[1]}", ""]
        responses = op.get("responses", {})
        if responses:
            out += ["| status | meaning | body |", "|---|---|---|"]
            for status, resp in responses.items():
                found = _body_schema(resp.get("content", {}))
                body_text = f"{found[1]} (`{found[0]}`)" if found else ""
                out.append(f"| {status} | {_cell(resp.get('description', ''))} | {body_text} |")
            out.append("")
    out += ["## Schemas", ""]
    for name, comp in schema.get("components", {}).get("schemas", {}).items():
        out += [f"### {name} {{#{_anchor(name)}}}", ""]
        if comp.get("description"):
            out += [comp["description"].strip(), ""]
        props = comp.get("properties")
        if props:
            required = set(comp.get("required", []))
            out += ["| field | type | required | default | description |", "|---|---|---|---|---|"]
            for field, spec in props.items():
                default = f"`{json.dumps(spec['default'])}`" if "default" in spec else ""
                desc = spec.get("description", "")
                limits = _constraints(spec)
                if limits:
                    desc = f"{desc} ({limits})" if desc else limits
                out.append(f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} | {_cell(default)} | {_cell(desc)} |")
            out.append("")
        elif comp.get("type") or any(k in comp for k in ("anyOf", "oneOf", "enum")):
            out += [f"Type: {_type(comp)}", ""]
    return "\n".join(out) + "\n"


def on_files(files: Files, config: Any) -> Files:
    schema = openapi_schema()
    for uri in (PAGE, SCHEMA):
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
    files.append(File.generated(config, PAGE, content=render(schema)))
    files.append(File.generated(config, SCHEMA, content=json.dumps(schema, indent=2, ensure_ascii=False)))
    return files
