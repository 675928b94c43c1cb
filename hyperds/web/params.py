"""Reading request fields: every field is text of bounded length without control characters, or a 400.

Pages call these instead of indexing request.query_params/form directly, so a malformed field is
always answered with a message naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import BadRequest

MAX_LEN = 4096
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text(fields: Mapping[str, Any], name: str, default: str | None = None, max_len: int = MAX_LEN) -> str | None:
    """Field `name` as stripped text; `default` when absent or empty."""
    value = fields.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise BadRequest(f"field {name!r} must be text")
    if len(value) > max_len:
        raise BadRequest(f"field {name!r} is longer than {max_len} characters")
    if _CONTROL.search(value):
        raise BadRequest(f"field {name!r} contains control characters")
    return value.strip() or default


def required(fields: Mapping[str, Any], name: str, max_len: int = MAX_LEN) -> str:
    value = text(fields, name, max_len=max_len)
    if value is None:
        raise BadRequest(f"field {name!r} is missing; give it in the form or the URL")
    return value


def integer(fields: Mapping[str, Any], name: str, default: int | None = None, low: int = 0, high: int = 10**12) -> int:
    return _number(fields, name, default, low, high, int, "a whole number")


def number(fields: Mapping[str, Any], name: str, default: float | None = None, low: float = 0.0, high: float = 1.0) -> float:
    return _number(fields, name, default, low, high, float, "a number")


def _number(fields: Mapping[str, Any], name: str, default: Any, low: Any, high: Any, kind: type, what: str) -> Any:
    value = text(fields, name)
    if value is None:
        if default is None:
            raise BadRequest(f"field {name!r} is missing; give {what}")
        return default
    try:
        x = kind(value)
    except ValueError:
        raise BadRequest(f"field {name!r} must be {what}, not {value!r}") from None
    if not low <= x <= high:  # also refuses nan
        raise BadRequest(f"field {name!r} must lie in [{low}, {high}], not {x}")
    return x


def bbox(fields: Mapping[str, Any], name: str = "bbox") -> list[float]:
    """A box as 'x,y,w,h' (normalised to the image)."""
    value = required(fields, name, max_len=200)
    try:
        box = [float(v) for v in value.split(",")]
    except ValueError:
        raise BadRequest(f"field {name!r} must be 4 numbers 'x,y,w,h' in [0, 1], not {value!r}") from None
    if len(box) != 4 or not all(0.0 <= v <= 1.0 for v in box):
        raise BadRequest(f"field {name!r} must be 4 numbers 'x,y,w,h' in [0, 1], not {value!r}")
    x, y, w, h = box
    # a box drawn to the image's edge may overshoot by rounding; keep it inside the unit square
    return [x, y, min(w, 1.0 - x), min(h, 1.0 - y)]


def bbox_text(box: list[float]) -> str:
    """A box as the form writes it: 'x,y,w,h'."""
    return ",".join(f"{v:.4g}" for v in box)


def choice(fields: Mapping[str, Any], name: str, options: tuple[str, ...], default: str | None = None) -> str:
    value = text(fields, name, default=default)
    if value not in options:
        raise BadRequest(f"field {name!r} must be one of {list(options)}, not {value!r}")
    return value
