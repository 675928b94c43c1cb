"""Plain-Python reference for view manifests and digests, written from the documented definition.

Used by the view tests to check the vectorised implementation; deliberately slow and obvious.
"""

from __future__ import annotations

import hashlib


def split_of(key: str, seed: int, fractions: list[tuple[str, float]]) -> str:
    u = int.from_bytes(hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest(), "big") / 2.0**64
    acc = 0.0
    for name, fraction in fractions:
        acc += fraction
        if u < acc:
            return name
    return fractions[-1][0]


def manifest(rows_by_dataset: dict[str, list[dict]], subqueries: list[tuple[str, object]],
             label_map: dict[str, str] | None = None, unknown: str = "drop",
             split: tuple[str, list[tuple[str, float]], int] | None = None, empty: str = "drop",
             rule: int = 2) -> list[dict]:
    """Rows of the view: `subqueries` are (name, python predicate over a frame dict), first match wins.

    A frame left without a class is dropped unless empty="keep"; under rule 1 (views published before the
    rejected-annotations rule) only a label map dropped such frames."""
    out = []
    for dataset in sorted(rows_by_dataset):
        for row in sorted(rows_by_dataset[dataset], key=lambda r: r["frame_id"].encode()):
            sub = next((name for name, pred in subqueries if pred(row)), None)
            if sub is None:
                continue
            labels = sorted(set(row["labels"] or []))
            if label_map is None:
                classes = labels
            else:
                mapped = [label_map.get(lab, lab if unknown == "keep" else None) for lab in labels]
                classes = sorted({c for c in mapped if c is not None})
            keep_empty = (label_map is None) if rule == 1 else (empty == "keep")
            if not classes and not keep_empty:
                continue
            split_name = None
            if split is not None:
                by, fractions, seed = split
                key = row[by] if row[by] is not None else f"\x00frame\x1f{dataset}/{row['frame_id']}"
                split_name = split_of(key, seed, fractions)
            out.append({**row, "dataset": dataset, "subquery": sub, "classes": classes, "split": split_name})
    return out


def digest(rows: list[dict]) -> str:
    h = hashlib.sha256(b"hyperds-manifest/1\n")
    for r in rows:
        anns = "\x1d".join(
            ":".join("" if a[k] is None else str(a[k]) for k in ("ann_id", "revision", "label", "review_status"))
            for a in (r["annotations"] or [])
        )
        fields = [r["dataset"], r["frame_id"], r["uri"], str(r["revision"]), "\x1d".join(r["labels"] or []),
                  "\x1d".join(r["classes"]), anns, r["split"] or "", r["subquery"]]
        h.update(("\x1f".join(fields) + "\x1e").encode())
    return h.hexdigest()
