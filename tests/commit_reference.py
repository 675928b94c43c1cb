"""A plain-Python reference of the annotation change semantics, for checking hyperds commits against.

Frames are dicts as in `add_frames`; `replay` applies (author, changes) commits serially.
"""

from __future__ import annotations

import numpy as np


def comparable(rows: list[dict]) -> dict:
    """frame_id -> (revision, labels, annotations) without the wall-clock fields a replay cannot reproduce."""
    out = {}
    for row in rows:
        anns = []
        for a in row["annotations"]:
            a = {k: v for k, v in a.items() if k not in ("created_at", "reviewed_at")}
            a["bbox"] = [float(np.float32(x)) for x in a["bbox"]] if a["bbox"] is not None else None
            a["confidence"] = float(np.float32(a["confidence"])) if a["confidence"] is not None else None
            anns.append(a)
        out[row["frame_id"]] = (row["revision"], sorted(row["labels"]), anns)
    return out


# What a Camtrap DP observation says about the animal: kept as given, never set by a change.
_OBSERVED = ("life_stage", "sex", "behavior", "individual_id", "attributes")
_STATUS = {"accept": "accepted", "reject": "rejected", "correct": "corrected", "reopen": "unreviewed"}


def replay(frames: list[dict], commits: list[tuple[str, list[dict]]]) -> dict:
    """A plain-Python reference of the change semantics, applied serially to the initial frames."""
    state = {}
    for f in frames:
        anns = [{"ann_id": a["ann_id"], "label": a["label"], "bbox": a.get("bbox"), "confidence": a.get("confidence"),
                 "count": None, "source_kind": a.get("source_kind", "human"), "source": a.get("source"),
                 "review_status": "unreviewed", "reviewed_by": None, "note": None, "revision": 0, "level": "media",
                 **{k: a.get(k) for k in _OBSERVED}}
                for a in f["annotations"]]
        state[f["frame_id"]] = {"frame_id": f["frame_id"], "revision": 0, "annotations": anns}
    for author, changes in commits:
        for frame_id in {c["frame_id"] for c in changes}:
            state[frame_id]["revision"] += 1
        for c in changes:
            anns = state[c["frame_id"]]["annotations"]
            if c["op"] == "add":
                anns.append({"ann_id": c["ann_id"], "label": c["label"], "bbox": c.get("bbox"),
                             "confidence": c.get("confidence"), "count": c.get("count"), "source_kind": "human",
                             "source": author, "review_status": "unreviewed", "reviewed_by": None,
                             "note": c.get("note"), "revision": 0, "level": "media", **dict.fromkeys(_OBSERVED)})
                continue
            (a,) = [a for a in anns if a["ann_id"] == c["ann_id"]]
            a["revision"] += 1
            if c["op"] == "delete":
                anns.remove(a)
            elif c["op"] == "move":  # a moved box is the author's, no longer the model's output
                a.update(bbox=c["bbox"], source_kind="human", source=author, confidence=None)
            elif c["op"] == "review":
                a.update(review_status=_STATUS[c["status"]], note=c.get("note"),
                         reviewed_by=None if c["status"] == "reopen" else author)
            if c["op"] == "relabel" or (c["op"] == "review" and c.get("label")):
                a.update(label=c["label"], source_kind="human", source=author, confidence=None)
    for row in state.values():
        row["labels"] = sorted({a["label"] for a in row["annotations"] if a["review_status"] != "rejected"})
    return comparable(list(state.values()))
