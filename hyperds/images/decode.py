"""Image decoding with Pillow: bytes in, an upright RGB image out.

EXIF orientation is applied, every colour mode becomes RGB, and JPEGs decode at a reduced scale
(`draft()`) when the caller only needs a smaller image, which is most of the cost saved.
Internal to hyperds.loaders (the image pipeline's decode step).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

from PIL import Image, ImageOps

# Errors Pillow (and file systems) raise for unreadable, truncated or oversized images.
DECODE_ERRORS = (OSError, ValueError, EOFError, SyntaxError, Image.DecompressionBombError)

_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}  # orientations that turn the stored image by 90 degrees

# (displayed width, displayed height) -> the smallest displayed size the caller needs, or None.
DraftRequest = Callable[[int, int], "tuple[int, int] | None"]


def decode_rgb(data: bytes, draft: DraftRequest | None = None) -> Image.Image:
    """Decode `data` to an upright RGB image; `draft` may ask a JPEG to decode no smaller than a size.

    Raises one of DECODE_ERRORS for a truncated or unreadable image.
    """
    im = Image.open(io.BytesIO(data))
    orientation = im.getexif().get(_ORIENTATION, 1)
    if draft is not None and im.format == "JPEG":
        stored_w, stored_h = im.size
        shown = (stored_h, stored_w) if orientation in _SWAPS_AXES else (stored_w, stored_h)
        need = draft(*shown)
        if need is not None:
            need_w, need_h = (need[1], need[0]) if orientation in _SWAPS_AXES else need
            im.draft("RGB", (max(1, math.ceil(need_w)), max(1, math.ceil(need_h))))
    im.load()
    if orientation != 1:
        im = ImageOps.exif_transpose(im)
    return to_rgb(im)


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode (CMYK, L, P, LA, RGBA, I;16...) as RGB; an alpha channel is dropped."""
    if im.mode == "RGB":
        return im
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return im.convert("RGB")
