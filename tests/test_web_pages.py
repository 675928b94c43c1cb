"""Pages over HTTP against plain-Python oracles: keyset paging walks every selected frame exactly once,
facets and home counts match the rows, views publish and diff from the browser forms, and undo
restores whatever a sequence of decisions changed."""

from __future__ import annotations

import re
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

import hyperds
from web_support import serve, signed_in

TILE = re.compile(r'data-frame-id="([^"]+)"')
NEXT = re.compile(r'id="next-page" href="([^"]+)"')


def synthetic(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        anns = [{"ann_id": f"f{i:03d}:{k}", "label": ["zebra", "lion", "impala"][(i + k) % 3], "source_kind": "model",
                 "source": "MDv5a", "confidence": (i * 37 % 100) / 100, "bbox": [0.1, 0.1, 0.2, 0.2]}
                for k in range(i % 3)]
        rows.append({"frame_id": f"f{i:03d}", "uri": f"file:///none/f{i:03d}.jpg", "site": f"S{i % 4}",
                     "annotations": anns})
    return rows


def walk(http, url: str) -> list[str]:
    seen = []
    while url:
        page = http.get(url)
        assert page.status_code == 200, page.text[-500:]
        html = page.text.replace("&amp;", "&")
        seen += TILE.findall(html)
        found = NEXT.search(html)
        url = found.group(1) if found else None
    return seen


def test_paging_facets_and_home_match_the_rows(tmp_path):
    store = hyperds.connect(tmp_path / "s")
    rows = synthetic(230)
    store.create_dataset("traps").add_frames(rows)
    with serve(store) as server:
        http, _ = signed_in(server.url, "ana")
        everything = walk(http, "/browse?dataset=traps")
        assert everything == sorted(r["frame_id"] for r in rows)
        s1 = walk(http, "/browse?dataset=traps&q=site+%3D+%27S1%27")
        assert s1 == sorted(r["frame_id"] for r in rows if r["site"] == "S1")
        lions = walk(http, "/browse?dataset=traps&q=any_annotation(label+%3D+%27lion%27+AND+confidence+%3E%3D+0.5)")
        assert lions == sorted(r["frame_id"] for r in rows
                               if any(a["label"] == "lion" and a["confidence"] >= 0.5 for a in r["annotations"]))
        facets = http.get("/api/facets", params={"dataset": "traps", "q": "site = 'S2'"}).json()
        expected = Counter(label for r in rows if r["site"] == "S2" for label in {a["label"] for a in r["annotations"]})
        assert facets["frames"] == sum(r["site"] == "S2" for r in rows)
        assert dict((k, v) for k, v in facets["labels"]) == dict(expected)
        home = http.get("/").text
        n_model = sum(len(r["annotations"]) for r in rows)
        assert f"model · unreviewed: {n_model}" in home
        http.close()


def test_publish_and_diff_from_the_forms(tmp_path):
    store = hyperds.connect(tmp_path / "s")
    ds = store.create_dataset("traps")
    ds.add_frames(synthetic(30))
    with serve(store) as server:
        http, csrf = signed_in(server.url, "ana")
        form = {"csrf": csrf, "dataset": "traps", "name": "lions", "q": "any_annotation(label = 'lion')",
                "message": "first cut"}
        first = http.post("/views/publish", data=form)
        assert first.status_code == 200 and "View lions" in first.text
        view = store.view("lions", "1.0")
        assert view.published and len(view) == len(walk(http, "/browse?view=lions&version=1.0"))
        fid = view.frame_ids()[0].as_py()
        lion = next(a["ann_id"] for a in ds.get(fid)["annotations"] if a["label"] == "lion")
        ds.commit([{"op": "relabel", "frame_id": fid, "ann_id": lion, "label": "leopard"}], author="ana")
        assert http.post("/views/publish", data={**form, "message": "round 2"}).status_code == 200
        diff = store.view("lions", "1.1").diff("1.0")
        page = http.get("/views/diff", params={"name": "lions", "old": "1.0", "new": "1.1"})
        assert page.status_code == 200
        assert f"removed: {diff.counts['removed']}" in page.text and diff.counts["removed"] >= 1
        assert fid in page.text
        views = http.get("/views").text
        assert "first cut" in views and "round 2" in views
        again = http.post("/views/publish", data={**form, "version": "1.0"})
        assert again.status_code == 409  # published versions never change
        no_csrf = http.post("/views/publish", data={**form, "csrf": "x", "version": "9.0"})
        assert no_csrf.status_code == 403 and "9.0" not in store.view("lions").versions()
        http.close()


DECISIONS = st.lists(
    st.sampled_from(["accept", "reject", "relabel", "box", "move", "note"]), min_size=1, max_size=3
)


@settings(max_examples=3, deadline=None)
@given(decisions=DECISIONS)
def test_undo_restores_what_decisions_changed(tmp_path_factory, decisions):
    store = hyperds.connect(tmp_path_factory.mktemp("undo") / "s")
    ds = store.create_dataset("traps")
    ds.add_frames(synthetic(3))
    fid = "f002"  # two model annotations
    keep = ("ann_id", "label", "bbox", "review_status", "reviewed_by", "note")
    before = [{k: a[k] for k in keep} for a in ds.get(fid)["annotations"]]
    with serve(store) as server:
        http, csrf = signed_in(server.url, "ana")
        ctx = {"csrf": csrf, "dataset": "traps", "q": "TRUE"}
        for step, action in enumerate(decisions):
            frame = ds.get(fid)
            form = {**ctx, "frame_id": fid, "revision": str(frame["revision"]), "action": action,
                    "ann_id": frame["annotations"][-1]["ann_id"], "label": "okapi",
                    "bbox": f"0.{step + 3},0.3,0.1,0.1", "note": f"seen {step}"}  # each decision changes something
            r = http.post("/review/decide", data=form)
            assert r.status_code == 200, (action, r.text[-400:])
        # a move onto the box's own place changes nothing: refused, no commit (undo could not restore it)
        frame = ds.get(fid)
        last = frame["annotations"][-1]
        still = {**ctx, "frame_id": fid, "revision": str(frame["revision"]), "action": "move",
                 "ann_id": last["ann_id"], "bbox": ",".join(str(v) for v in last["bbox"])}
        commits = ds.commits().height
        r = http.post("/review/decide", data=still)
        assert r.status_code == 400 and "already has box" in r.text and ds.commits().height == commits
        if last["note"] is not None:  # so does writing the note it already has
            r = http.post("/review/decide", data={**still, "action": "note", "note": last["note"]})
            assert r.status_code == 400 and "already has that note" in r.text and ds.commits().height == commits
        for _ in decisions:
            r = http.post("/review/undo", data=ctx)
            assert r.status_code == 200, r.text[-400:]
        assert http.post("/review/undo", data=ctx).status_code == 409  # nothing left to undo
        http.close()
    after = [{k: a[k] for k in keep} for a in ds.get(fid)["annotations"]]
    assert after == before
    assert ds.commits()["author"].to_list() == ["ana"] * (2 * len(decisions))
