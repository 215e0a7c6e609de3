"""The package's layering, checked on its source: no import cycles, backends built only by the registry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lychee_rerank

PACKAGE_DIR = Path(lychee_rerank.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["lychee_rerank", *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> set[str]:
    """Package modules ``module`` imports anywhere (functions included; TYPE_CHECKING blocks not)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.add(target)
                found.update(f"{target}.{a.name}" for a in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in MODULES and m != module}


def _cycle() -> list[str] | None:
    graph = {m: _imports(m) for m in MODULES}
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def dfs(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            # A package's __init__ importing its own submodules (and them importing siblings
            # through the package) is how packages are built, not a layering cycle.
            if n.startswith(m + ".") or m.startswith(n + "."):
                continue
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := dfs(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := dfs(m)):
            return found
    return None


def test_the_package_has_no_import_cycle():
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle(monkeypatch):
    """The check itself can fail: two modules that import each other are reported."""
    graph_imports = _imports

    def fake(module: str) -> set[str]:
        extra = {"lychee_rerank.cli.app": {"lychee_rerank.serving.ray_serve"},
                 "lychee_rerank.serving.ray_serve": {"lychee_rerank.cli.app"}}
        return graph_imports(module) | extra.get(module, set())

    monkeypatch.setitem(globals(), "_imports", fake)
    cycle = _cycle()
    assert cycle is not None and {"lychee_rerank.cli.app", "lychee_rerank.serving.ray_serve"} <= set(cycle)


def _backend_classes() -> set[str]:
    """Names of the classes defined under backends/ that derive from a backend class."""
    names = {"Backend"}
    changed = True
    trees = [ast.parse(p.read_text(encoding="utf-8")) for m, p in MODULES.items() if m.startswith("lychee_rerank.backends")]
    while changed:
        changed = False
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names:
                    bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                    if bases & names:
                        names.add(node.name)
                        changed = True
    return names - {"Backend"}


def _direct_constructions(module: str, classes: set[str]) -> list[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in classes:
                hits.append(f"{module}:{node.lineno} constructs {name}")
    for target in _imports(module):
        if target.startswith(("lychee_rerank.backends.lychee", "lychee_rerank.backends.lite", "lychee_rerank.backends.loading")):
            hits.append(f"{module} imports {target}")
    return hits


def test_only_backends_construct_a_backend():
    classes = _backend_classes()
    assert {"LycheeBackend", "LiteBackend"} <= classes
    outside = [m for m in MODULES if not m.startswith("lychee_rerank.backends")]
    hits = [h for m in outside for h in _direct_constructions(m, classes)]
    assert hits == [], "use lychee_rerank.backends.create (or LycheeReranker.from_config):\n" + "\n".join(hits)


def test_the_construction_check_sees_a_direct_construction(tmp_path, monkeypatch):
    """The check itself can fail: a module calling LiteBackend(...) is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from .backends.lite import LiteBackend\n\ndef f():\n    return LiteBackend()\n")
    monkeypatch.setitem(MODULES, "lychee_rerank.bad", bad)
    hits = _direct_constructions("lychee_rerank.bad", _backend_classes())
    assert any("constructs LiteBackend" in h for h in hits) and any("imports lychee_rerank.backends.lite" in h for h in hits)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_has_a_docstring(module):
    if MODULES[module].stat().st_size == 0:
        pytest.skip("empty package marker")
    assert ast.get_docstring(ast.parse(MODULES[module].read_text(encoding="utf-8"))), f"{module} says nothing about why it exists"


MAX_FUNCTION_LINES = 80


def _long_functions(modules: dict[str, Path]) -> list[str]:
    """Functions over MAX_FUNCTION_LINES whose docstring does not say why ("Long because ...")."""
    found = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and "Long because" not in (ast.get_docstring(node) or ""):
                    found.append(f"{module}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_is_long_without_a_reason():
    assert _long_functions(MODULES) == []


def test_the_length_check_sees_a_long_function(tmp_path):
    long = tmp_path / "long.py"
    long.write_text("def f():\n" + "    x = 1\n" * 90)
    assert _long_functions({"lychee_rerank.long": long}) == ["lychee_rerank.long:1 f (91 lines)"]


#: The family-agnostic driver and the machinery it owns (see docs/architecture.md).
DRIVER_MODULES = [
    "lychee_rerank.backends.lychee", "lychee_rerank.backends.packing", "lychee_rerank.backends.vision_cache",
    "lychee_rerank.backends.loading", "lychee_rerank.backends.base", "lychee_rerank.backends.patch_embed",
]


@pytest.mark.parametrize("module", DRIVER_MODULES)
def test_the_driver_knows_no_checkpoint_family(module):
    """Adding a family is one adapter module: the driver may not import a family's transformers
    classes or modules, nor name a model type, an architecture or a family anywhere in its source."""
    from lychee_rerank.backends.families import FAMILIES

    source = MODULES[module].read_text(encoding="utf-8")
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert not node.module.startswith("transformers.models"), f"{module} imports {node.module}"
            if node.module == "transformers":
                for alias in node.names:
                    assert not alias.name.startswith(("Qwen", "Llava", "Jina", "Bert")), f"{module} imports {alias.name}"
    names = {"qwen", "vl_", "_vl"}
    for spec in FAMILIES.values():
        names |= {spec.name.lower(), *(t.lower() for t in spec.model_types), *(a.lower() for a in spec.architectures)}
    lowered = source.lower()
    named = sorted(n for n in names if n in lowered)
    assert not named, f"{module} names checkpoint families: {named}"
