"""Hypothesis state machine: appends, corrections, deletions, draft edits, publishes and cleanups interleaved.

Invariant: every published version still resolves to the frames, count and digest that a plain-Python
reference computed from the rows at the moment it was published, and verify() agrees.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile

import views_reference as ref
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import hyperds

SPECIES = ["lion", "zebra", "gazelle"]
SITES = ["S1", "S2", "S3", None]
LABEL_MAP = {"lion": "cat", "zebra": "equid"}
SPLIT = [("train", 0.5), ("test", 0.5)]
VIEWS = {
    # name: (SQL, python predicate over a frame dict, label map, split)
    # annotation functions skip rejected annotations (the rejected-annotations rule)
    "lions": ("any_annotation(label = 'lion')",
              lambda r: any(a["label"] == "lion" and a["review_status"] != "rejected" for a in r["annotations"]), None,
              None),
    "mapped": ("site IS NOT NULL", lambda r: r["site"] is not None, LABEL_MAP, ("site", SPLIT, 5)),
}


class ViewsMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.dir = tempfile.mkdtemp(prefix="hyperds-views-")
        self.store = hyperds.connect(self.dir)
        self.ds = self.store.create_dataset("cams")
        self.next_id = 0
        self.published: dict[tuple[str, str], tuple[list[str], str]] = {}
        self._append(4, 0)
        for name, (sql, _, label_map, split) in VIEWS.items():
            self.store.create_view(name, sql, datasets=["cams"], label_map=label_map,
                                   split={"by": split[0], "fractions": dict(split[1]), "seed": split[2]} if split else None)

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def _append(self, n: int, seed: int) -> None:
        rows = []
        for i in range(n):
            k = self.next_id + i
            labels = [SPECIES[(seed + k + j) % 3] for j in range((seed + k) % 3)]
            rows.append({"frame_id": f"f{k:04d}", "uri": f"s3://b/{k}.jpg", "site": SITES[(seed * 7 + k) % 4],
                         "annotations": [{"label": lab} for lab in labels]})
        self.next_id += n
        self.ds.add_frames(rows)

    def _rows(self) -> list[dict]:
        return self.store.dataset("cams").to_arrow().to_pylist()

    @rule(n=st.integers(1, 5), seed=st.integers(0, 9))
    def append(self, n, seed):
        self._append(n, seed)

    @rule(pick=st.integers(0, 10_000), label=st.sampled_from(SPECIES), reject=st.booleans())
    def correct(self, pick, label, reject):
        annotated = [r for r in self._rows() if r["annotations"]]
        if not annotated:
            return
        frame = annotated[pick % len(annotated)]
        ann = frame["annotations"][pick % len(frame["annotations"])]
        change = {"op": "review", "status": "reject"} if reject else {"op": "relabel", "label": label}
        self.ds.commit([{**change, "frame_id": frame["frame_id"], "ann_id": ann["ann_id"]}], author="hyp", message="fix")

    @rule(pick=st.integers(0, 10_000))
    def delete(self, pick):
        rows = self._rows()
        if len(rows) > 1:
            self.ds.lance().delete(f"frame_id = '{rows[pick % len(rows)]['frame_id']}'")

    @rule(name=st.sampled_from(sorted(VIEWS)))
    def publish(self, name):
        _, pred, label_map, split = VIEWS[name]
        expected = ref.manifest({"cams": self._rows()}, [("default", pred)], label_map=label_map, split=split)
        view = self.store.view(name, "draft").publish()
        assert view.frame_count == len(expected) and view.digest == ref.digest(expected)
        self.published[(name, view.version)] = ([r["frame_id"] for r in expected], view.digest)

    @precondition(lambda self: self.published)
    @rule()
    def cleanup(self):
        self.store.cleanup(older_than=dt.timedelta(0))

    @invariant()
    def published_versions_resolve_to_their_record(self):
        for (name, version), (ids, digest) in getattr(self, "published", {}).items():
            view = hyperds.view(name, version, store=self.store)
            assert (len(view), view.digest) == (len(ids), digest)
            assert view.frame_ids().to_pylist() == ids
        if getattr(self, "published", None):
            name, version = max(self.published)
            report = hyperds.view(name, version, store=self.store).verify()
            assert report.ok, str(report)


ViewsMachine.TestCase.settings = settings(max_examples=12, stateful_step_count=12, deadline=None)
TestViewsStateful = ViewsMachine.TestCase
