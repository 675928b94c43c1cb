"""The consumers a source offers as methods: `view.export(...)`, `query.export(...)`, `view.evaluate(...)`.

Views and queries sit below the consumer packages (hyperds.export, hyperds.evaluate), which read them
through the FrameSource protocol; importing a consumer from a view would point an import up the layers
(docs/architecture.md). So the top layer, hyperds/__init__.py, registers each consumer's entry point
here, and the methods call it through `call`. Importing any hyperds module runs hyperds/__init__ first,
so the entry points are always registered before a View or Query exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_ENTRY_POINTS: dict[str, Callable[[], Callable[..., Any]]] = {}


def register(name: str, load: Callable[[], Callable[..., Any]]) -> None:
    """Register consumer `name`: `load()` returns its entry point, a function taking the source first
    (imported on first use, so `import hyperds` stays light)."""
    _ENTRY_POINTS[name] = load


def call(name: str, source: Any, *args: Any, **kwargs: Any) -> Any:
    """Run consumer `name` on `source`."""
    return _ENTRY_POINTS[name]()(source, *args, **kwargs)
