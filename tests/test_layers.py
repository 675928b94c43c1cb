"""The layers of docs/architecture.md, checked on the code: every import points down.

Each module under hyperds/ is parsed with `ast` (imports inside functions included; those under
`if TYPE_CHECKING:` name types for annotations only, never run, and are skipped) and given the layer
of the diagram. The checks: no import points up; imports between packages of one layer only where the
diagram allows them (none between consumers); `lance` / `lancedb` only in the storage kernel; `torch`
only in the loaders; no consumer imports the classes that implement FrameSource or probes a source with
`hasattr` / `getattr` / `inspect`. A self-check feeds the checker synthetic violations, so a checker
that silently matched nothing would fail too.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import hyperds
import hyperds.errors

ROOT = Path(hyperds.__file__).parent

# (layer, group, module prefixes), bottom first; a module takes the longest matching prefix. Within a
# layer, only modules of the same group may import one another.
LAYERS: list[tuple[int, str, tuple[str, ...]]] = [
    (0, "definitions", ("hyperds._version", "hyperds.errors", "hyperds.fsio", "hyperds.source",
                        "hyperds.consumers", "hyperds.frames.schema")),
    (1, "query language", ("hyperds.query.ast", "hyperds.query.parse", "hyperds.query.validate",
                           "hyperds.query.normalize", "hyperds.query.rules", "hyperds.query.plan",
                           "hyperds.query.lance_sql", "hyperds.query.residual", "hyperds.query.combine",
                           "hyperds.query.allowlist")),
    (1, "images", ("hyperds.images",)),
    (2, "storage", ("hyperds.storage",)),
    (3, "frames", ("hyperds.frames",)),
    (4, "query engine", ("hyperds.query",)),
    (5, "versioning", ("hyperds.versioning",)),
    (6, "views", ("hyperds.views",)),
    (7, "workflows", ("hyperds.workflows",)),
    (8, "export", ("hyperds.export",)),
    (8, "evaluate", ("hyperds.evaluate",)),
    (8, "loaders", ("hyperds.loaders",)),
    (8, "distributed", ("hyperds.distributed",)),
    (9, "facade", ("hyperds.store", "hyperds.dataset")),
    (10, "public api", ("hyperds",)),
    (11, "web", ("hyperds.web",)),
    (12, "cli", ("hyperds.cli",)),
]
CONSUMERS = ("hyperds.loaders", "hyperds.distributed", "hyperds.export", "hyperds.evaluate", "hyperds.web",
             "hyperds.workflows")
# the FrameSource implementations: consumers read the protocol (hyperds.source), never these classes
IMPLEMENTATIONS = ("hyperds.dataset", "hyperds.views.handle", "hyperds.query.query", "hyperds.query")
SOURCE_NAMES = {"source", "on", "src", "view", "query", "dataset", "ds"}
KERNEL, LOADERS = "hyperds.storage", "hyperds.loaders"


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> tuple[int, str]:
    best = max(((len(p), layer, group) for layer, group, prefixes in LAYERS for p in prefixes if _within(module, p)),
               default=None)
    assert best is not None, f"{module} is in no layer of docs/architecture.md; add it to LAYERS and the diagram"
    return best[1], best[2]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_nodes(tree: ast.AST):
    """Every node that runs, i.e. not inside an `if TYPE_CHECKING:` body (its `else` runs)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imports(module: str, tree: ast.AST, is_package: bool) -> list[tuple[str, int]]:
    """(imported module, line) of every runtime import; `from pkg import name` also counts `pkg.name`,
    which is a module when `name` is one (`from .. import storage`)."""
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in runtime_nodes(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            named = [f"{target}.{alias.name}" for alias in node.names]
            modules = [n for n in named if _existing_module(n)]
            # `from pkg import mod` depends on pkg.mod; `from mod import name` on mod
            out += [(n, node.lineno) for n in modules] if len(modules) == len(named) else [(target, node.lineno)]
    return out


def _existing_module(name: str) -> bool:
    path = ROOT.parent / Path(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Every breach of the layer rules in one module's source text."""
    tree = ast.parse(source)
    here, group = layer_of(module)
    found = []
    for target, line in imports(module, tree, is_package):
        top = target.split(".")[0]
        where = f"{module}:{line} imports {target}"
        if top in ("lance", "lancedb") and not _within(module, KERNEL):
            found.append(f"{where}: only the storage kernel (hyperds/storage/) imports lance")
        if top == "torch" and not _within(module, LOADERS):
            found.append(f"{where}: only hyperds/loaders/ imports torch")
        if top != "hyperds" or not _existing_module(target) or _within(module, target) and target != module:
            continue  # a package importing its own submodules' parent (`from . import x`) is not a dependency
        there, other = layer_of(target)
        if there > here:
            found.append(f"{where}: layer {there} ({other}) is above layer {here} ({group})")
        elif there == here and other != group:
            found.append(f"{where}: {other} and {group} are side by side in the diagram; neither imports the other")
        if any(_within(module, c) for c in CONSUMERS) and target in IMPLEMENTATIONS:
            found.append(f"{where}: a consumer reads the FrameSource protocol (hyperds.source), not its implementations")
    if any(_within(module, c) for c in CONSUMERS):
        for node in runtime_nodes(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                    a.name == "inspect" for a in node.names) | (getattr(node, "module", None) == "inspect"):
                found.append(f"{module}:{node.lineno}: a consumer does not inspect its input")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr")
                    and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in SOURCE_NAMES):
                found.append(f"{module}:{node.lineno}: {node.func.id}({node.args[0].id}, ...) probes a source; "
                             "call the FrameSource protocol instead")
    return found


def test_no_module_breaks_the_layers():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        found += violations(_module_name(path), path.read_text(), path.name == "__init__.py")
    assert found == [], "\n".join(found)


def test_the_checker_flags_real_violations():
    """Synthetic modules with one breach each: the checker must name every one, and pass a clean one."""
    cases = {
        ("hyperds.views.handle", "from ..export import export\n"): "above layer",
        ("hyperds.views.handle", "def f():\n    from ..dataset import Dataset\n"): "above layer",
        ("hyperds.loaders.torch", "from ..export.base import export\n"): "side by side",
        ("hyperds.frames.table", "import lance\n"): "storage kernel",
        ("hyperds.web.images", "import torch\n"): "only hyperds/loaders/ imports torch",
        ("hyperds.export.source", "from ..query.query import Query\n"): "not its implementations",
        ("hyperds.export.source", "def f(source):\n    return hasattr(source, 'pins')\n"): "probes a source",
        ("hyperds.evaluate.source", "import inspect\n"): "does not inspect",
        ("hyperds.storage.scan", "from .. import views\n"): "above layer",
    }
    for (module, text), message in cases.items():
        found = violations(module, text)
        assert any(message in f for f in found), (module, text, found)
    clean = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..store import Store\nfrom .. import storage\n"
    assert violations("hyperds.views.handle", clean) == []


def test_every_module_is_in_a_layer():
    for path in ROOT.rglob("*.py"):
        layer_of(_module_name(path))


def test_every_error_is_public():
    errors = {n for n, o in vars(hyperds.errors).items()
              if inspect.isclass(o) and issubclass(o, Exception) and o.__module__ == "hyperds.errors"}
    assert errors - set(hyperds.__all__) == set()
    assert {"Store", "Dataset", "Query", "View", "FrameDataset", "IterableFrameDataset"} <= set(hyperds.__all__)
