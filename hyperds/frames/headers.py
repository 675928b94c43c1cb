"""Read only the header of each image: size, EXIF capture time and camera, through ranged reads.

A JPEG header is walked marker by marker, fetching `block_size` bytes at a time and only where a
needed segment lies, so a 5 MB photo costs one 64 KiB read; `hash=True` reads whole objects instead.
"""

from __future__ import annotations

import functools
import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

DEFAULT_BLOCK = 64 * 1024

# One row per object, aligned with the input paths; `error` holds the reason an object was unreadable.
HEADER_SCHEMA = pa.schema(
    [
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("exif_time", pa.string()),
        ("exif_offset", pa.string()),
        ("camera_make", pa.string()),
        ("camera_model", pa.string()),
        ("sha256", pa.string()),
        ("bytes_read", pa.int64()),
        ("error", pa.string()),
    ]
)

_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])
_TAG_MAKE, _TAG_MODEL, _TAG_ORIENTATION, _TAG_DATETIME, _TAG_EXIF_IFD = 0x010F, 0x0110, 0x0112, 0x0132, 0x8769
_TAG_DATETIME_ORIGINAL, _TAG_OFFSET, _TAG_OFFSET_ORIGINAL = 0x9003, 0x9010, 0x9011
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


class Unreadable(Exception):
    """An object whose header cannot be read; the message is the reason shown to the user."""


class _Ranges:
    """Ranged reads of one object of known size, fetched in blocks and kept for reuse."""

    def __init__(self, fs: Any, path: str, size: int, block: int, data: bytes | None = None):
        self.fs, self.path, self.size, self.block = fs, path, size, block
        self.pieces: list[tuple[int, bytes]] = [(0, data)] if data is not None else []
        self.fetched = 0

    def read(self, start: int, n: int) -> bytes:
        end = start + n
        if end > self.size:
            raise Unreadable(f"truncated: the object ends at byte {self.size}, inside the image header")
        for off, buf in self.pieces:
            if off <= start and end <= off + len(buf):
                return buf[start - off : end - off]
        stop = min(self.size, max(end, start + self.block))
        buf = self.fs.cat_file(self.path, start=start, end=stop)
        self.fetched += len(buf)
        if len(buf) < end - start:
            raise Unreadable(f"truncated: got {start + len(buf)} of {end} bytes needed for the header")
        self.pieces.append((start, buf))
        return buf[: end - start]


def _jpeg(r: _Ranges) -> tuple[int, int, bytes | None, int]:
    """Walk JPEG markers up to the frame header: (width, height, EXIF TIFF block or None, SOF offset)."""
    pos, exif = 2, None
    while True:
        head = r.read(pos, 4)
        if head[0] != 0xFF:
            raise Unreadable(f"corrupt JPEG: no marker at byte {pos}")
        marker = head[1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            raise Unreadable("corrupt JPEG: image data starts before any frame header")
        length = int.from_bytes(head[2:4], "big")
        if length < 2:
            raise Unreadable(f"corrupt JPEG: segment at byte {pos} has length {length}")
        if marker in _SOF:
            sof = r.read(pos + 4, 5)
            return int.from_bytes(sof[3:5], "big"), int.from_bytes(sof[1:3], "big"), exif, pos
        if marker == 0xE1 and exif is None and length >= 8:
            seg = r.read(pos + 4, length - 2)
            if seg.startswith(b"Exif\x00\x00"):
                exif = seg[6:]
        pos += 2 + length


def _ifd(tiff: bytes, offset: int, order: str) -> dict[int, tuple[int, int, bytes]]:
    """Entries of one TIFF IFD: tag -> (type, count, the 4 value/offset bytes)."""
    if offset + 2 > len(tiff):
        raise Unreadable(f"unreadable EXIF: IFD offset {offset} lies outside the {len(tiff)}-byte block")
    n = int.from_bytes(tiff[offset : offset + 2], order)
    end = offset + 2 + 12 * n
    if end > len(tiff):
        raise Unreadable(f"unreadable EXIF: IFD at {offset} declares {n} entries past the end of the block")
    out = {}
    for i in range(offset + 2, end, 12):
        e = tiff[i : i + 12]
        out[int.from_bytes(e[0:2], order)] = (int.from_bytes(e[2:4], order), int.from_bytes(e[4:8], order), e[8:12])
    return out


def _value(tiff: bytes, entry: tuple[int, int, bytes], order: str) -> bytes:
    kind, count, raw = entry
    size = _TYPE_SIZES.get(kind, 1) * count
    if size <= 4:
        return raw[:size]
    start = int.from_bytes(raw, order)
    if start + size > len(tiff):
        raise Unreadable(f"unreadable EXIF: a value at offset {start} runs past the end of the block")
    return tiff[start : start + size]


def _text(tiff: bytes, ifd: dict, tag: int, order: str) -> str | None:
    if tag not in ifd:
        return None
    text = _value(tiff, ifd[tag], order).split(b"\x00", 1)[0].decode("utf-8", "replace").strip()
    return text or None


def parse_exif(tiff: bytes) -> dict[str, Any]:
    """Capture time (DateTimeOriginal, else DateTime), its UTC offset, make, model, orientation."""
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None or len(tiff) < 8 or int.from_bytes(tiff[2:4], order) != 42:
        raise Unreadable("unreadable EXIF: the block is not TIFF-structured")
    ifd0 = _ifd(tiff, int.from_bytes(tiff[4:8], order), order)
    sub = _ifd(tiff, int.from_bytes(ifd0[_TAG_EXIF_IFD][2], order), order) if _TAG_EXIF_IFD in ifd0 else {}
    orientation = int.from_bytes(_value(tiff, ifd0[_TAG_ORIENTATION], order)[:2], order) if _TAG_ORIENTATION in ifd0 else 1
    return {
        "time": _text(tiff, sub, _TAG_DATETIME_ORIGINAL, order) or _text(tiff, ifd0, _TAG_DATETIME, order),
        "offset": _text(tiff, sub, _TAG_OFFSET_ORIGINAL, order) or _text(tiff, sub, _TAG_OFFSET, order),
        "make": _text(tiff, ifd0, _TAG_MAKE, order),
        "model": _text(tiff, ifd0, _TAG_MODEL, order),
        "orientation": orientation,
    }


def _other_format(r: _Ranges) -> tuple[int, int]:
    """Size of a non-JPEG image (PNG, TIFF, WebP, ...) from its first block, via Pillow's lazy open."""
    head = r.read(0, min(r.size, r.block))
    try:
        with Image.open(io.BytesIO(head)) as im:
            return im.size
    except UnidentifiedImageError:
        raise Unreadable(f"not an image: unrecognised content starting with {head[:12]!r}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise Unreadable(f"cannot read the image header: {exc}") from None


def read_header(fs: Any, path: str, size: int, hash: bool = False, block_size: int = DEFAULT_BLOCK) -> dict[str, Any]:
    """One object's header fields (see HEADER_SCHEMA); never raises for a bad object, sets `error`."""
    row: dict[str, Any] = dict.fromkeys(HEADER_SCHEMA.names)
    r: _Ranges | None = None
    try:
        data = fs.cat_file(path) if hash else None
        r = _Ranges(fs, path, len(data) if data is not None else size, block_size, data)
        if data is not None:
            r.fetched = len(data)
            row["sha256"] = hashlib.sha256(data).hexdigest()
        if r.size < 2:
            raise Unreadable(f"not an image: the object has {r.size} bytes")
        if r.read(0, 2) == b"\xff\xd8":
            width, height, exif, sof = _jpeg(r)
            if data is not None and data.rfind(b"\xff\xd9") < sof:
                raise Unreadable("truncated: the JPEG has no end-of-image marker after its frame header")
            info = parse_exif(exif) if exif is not None else {}
            if info.get("orientation") in (5, 6, 7, 8):  # stored rotated: report the displayed size
                width, height = height, width
            row.update(
                exif_time=info.get("time"), exif_offset=info.get("offset"),
                camera_make=info.get("make"), camera_model=info.get("model"),
            )
        else:
            width, height = _other_format(r)
        row.update(width=width, height=height)
    except Unreadable as exc:
        row["error"] = str(exc)
    except FileNotFoundError:
        row["error"] = "object disappeared between listing and reading"
    except OSError as exc:
        row["error"] = f"cannot read object: {exc}"
    row["bytes_read"] = r.fetched if r is not None else 0
    return row


def read_headers(
    fs: Any,
    paths: list[str],
    sizes: list[int],
    hash: bool = False,
    block_size: int = DEFAULT_BLOCK,
    threads: int = 16,
    progress: bool = False,
) -> pa.Table:
    """read_header() over many objects on a thread pool; rows in input order (HEADER_SCHEMA)."""
    one = functools.partial(read_header, fs, hash=hash, block_size=block_size)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        rows = list(
            tqdm(pool.map(one, paths, sizes), total=len(paths), desc="reading headers", unit="img",
                 disable=None if progress else True)
        )
    return pa.Table.from_pylist(rows, schema=HEADER_SCHEMA)
