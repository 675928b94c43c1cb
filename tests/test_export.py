"""Exports of published views: the pin holds byte for byte, S3 equals local, batching changes nothing,
bad input fails before anything is written, and every export is in the audit."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from conftest import DATA, run_cli
from hyperds.errors import ExportError, HyperdsError
from hyperds.frames.importers import import_camtrap_dp

AT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
FORMATS = ("camtrap-dp", "megadetector", "yolo", "csv")


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def mica(store):
    ds = store.create_dataset("mica")
    import_camtrap_dp(ds, DATA / "camtrap-dp")
    store.create_view("ducks", "any_annotation(label = 'Anas platyrhynchos')", datasets=["mica"]).publish("1.0")
    return ds


def test_pin_holds_byte_for_byte(store, mica, tmp_path):
    view = store.view("ducks", "1.0")
    before = {}
    for fmt in FORMATS:
        view.export(fmt, tmp_path / "a" / fmt, exported_at=AT)
        before[fmt] = _files(tmp_path / "a" / fmt)
    # the pool grows (a new duck frame) and labels are corrected on frames of the view
    mica.add_frames([{"frame_id": "new-duck", "uri": "https://example.org/new.jpg", "captured_at": "2021-04-01T00:00:00Z",
                      "deployment": "62c200a9", "annotations": [{"label": "Anas platyrhynchos"}]}])
    frame = view.to_arrow(["frame_id", "annotations"]).to_pylist()[0]
    mica.commit([{"op": "relabel", "frame_id": frame["frame_id"], "ann_id": frame["annotations"][0]["ann_id"],
                  "label": "Anas strepera"}], author="ana", message="gadwall, not mallard")
    again = store.view("ducks", "1.0")
    for fmt in FORMATS:
        again.export(fmt, tmp_path / "b" / fmt, exported_at=AT)
        assert _files(tmp_path / "b" / fmt) == before[fmt], fmt
    # the draft follows the data, so its export differs: the comparison above can fail
    store.view("ducks", "draft").export("csv", tmp_path / "draft", exported_at=AT)
    assert _files(tmp_path / "draft")["annotations.csv"] != before["csv"]["annotations.csv"]
    prov = json.loads(before["csv"]["provenance.json"])["hyperds"]
    assert prov["source"] == {"kind": "view", "name": "ducks", "view": "ducks", "version": "1.0", "status": "published",
                              "digest": view.digest, "query": view.query,
                              "datasets": [{"name": "mica", "version": view.pins["mica"]}]}
    assert prov["exported_at"] == "2026-01-02T03:04:05Z" and prov["hyperds_version"]


def test_batches_change_nothing(store, mica, tmp_path):
    view = store.view("ducks", "1.0")
    for fmt in FORMATS:
        view.export(fmt, tmp_path / "one" / fmt, exported_at=AT)
        view.export(fmt, tmp_path / "many" / fmt, exported_at=AT, batch_size=7)
        one, many = _files(tmp_path / "one" / fmt), _files(tmp_path / "many" / fmt)
        assert one == many, fmt


def test_s3_export_reads_back_like_local(store, mica, tmp_path, s3_bucket, s3_storage_options):
    bucket, client = s3_bucket
    view = store.view("ducks", "1.0")
    for fmt in ("camtrap-dp", "yolo"):
        view.export(fmt, tmp_path / fmt, exported_at=AT)
        local = _files(tmp_path / fmt)
        view.export(fmt, f"s3://{bucket}/exports/{fmt}", exported_at=AT, storage_options=s3_storage_options)
        listed = client.list_objects_v2(Bucket=bucket, Prefix=f"exports/{fmt}/")["Contents"]
        remote = {o["Key"].removeprefix(f"exports/{fmt}/"): client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                  for o in listed}
        assert remote == local
    with pytest.raises(ExportError, match="not empty"):
        view.export("csv", f"s3://{bucket}/exports/yolo", storage_options=s3_storage_options)
    runs = store.runs(view="ducks")
    assert any(json.loads(i)["dest"] == f"s3://{bucket}/exports/yolo" for i in runs["info"].to_pylist())


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if "hyperds-export" in p.name or "hyperds-old" in p.name]


def test_bad_input_writes_nothing(store, md, mica, tmp_path):
    view = store.view("ducks", "1.0")
    runs_before = store.runs().num_rows
    with pytest.raises(ExportError, match="unknown export format 'geojson'; formats: camtrap-dp, coco-ct"):
        view.export("geojson", tmp_path / "x")
    with pytest.raises(ExportError, match="unknown option"):
        view.export("csv", tmp_path / "x", copy_images=True)
    # COCO needs pixel sizes; the MegaDetector sample has none
    store.create_view("md-all", "TRUE", datasets=["md"], empty="keep").publish("1.0")
    with pytest.raises(ExportError, match=r"31 frame\(s\) have no width .*--check-images"):
        store.view("md-all", "1.0").export("coco-ct", tmp_path / "x")
    # Camtrap DP needs timestamps
    with pytest.raises(ExportError, match="no timestamp"):
        store.view("md-all", "1.0").export("camtrap-dp", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    # a failure half-way (an image that cannot be copied) leaves no file set and no staging folder
    with pytest.raises(ExportError, match="cannot copy image"):
        store.view("md-all", "1.0").export("yolo", tmp_path / "x", copy_images=True, batch_size=4)
    assert not (tmp_path / "x").exists() and _leftovers(tmp_path) == []
    # an existing, non-empty destination is kept unless overwrite
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "mine.txt").write_text("mine")
    with pytest.raises(ExportError, match="exists and is not empty .*--overwrite"):
        view.export("csv", tmp_path / "keep")
    assert _files(tmp_path / "keep") == {"mine.txt": b"mine"}
    assert store.runs().num_rows == runs_before
    view.export("csv", tmp_path / "keep", overwrite=True)
    assert sorted(_files(tmp_path / "keep")) == ["annotations.csv", "provenance.json"] and _leftovers(tmp_path) == []
    assert store.runs().num_rows == runs_before + 1


def test_rejected_left_out_unless_asked(store, mica, tmp_path):
    frame = store.view("ducks", "1.0").to_arrow(["frame_id", "annotations"]).to_pylist()[0]
    ann = frame["annotations"][0]["ann_id"]
    mica.commit([{"op": "review", "frame_id": frame["frame_id"], "ann_id": ann, "status": "reject"}], author="ana")
    for fmt in ("camtrap-dp", "csv"):
        mica.export(fmt, tmp_path / fmt)
        mica.export(fmt, tmp_path / f"{fmt}-all", include_rejected=True)
    ids = pl.read_csv(tmp_path / "csv" / "annotations.csv", infer_schema=False)["ann_id"].to_list()
    all_ids = pl.read_csv(tmp_path / "csv-all" / "annotations.csv", infer_schema=False)["ann_id"].to_list()
    assert ann not in ids and ann in all_ids
    obs = pl.read_csv(tmp_path / "camtrap-dp-all" / "observations.csv", infer_schema=False)
    tags = obs.filter(pl.col("observationID") == ann)["observationTags"].item()
    assert tags.startswith("hyperds:review_status=rejected | hyperds:reviewed_by=ana | hyperds:reviewed_at=")
    assert ann not in pl.read_csv(tmp_path / "camtrap-dp" / "observations.csv", infer_schema=False)["observationID"].to_list()


def test_query_export_and_label_map(store, mica, tmp_path):
    q = mica.query("any_annotation(label = 'Anas platyrhynchos')")
    q.export("csv", tmp_path / "q")
    prov = json.loads((tmp_path / "q" / "provenance.json").read_text())["hyperds"]["source"]
    assert prov["kind"] == "query" and prov["query"] == q.sql
    assert set(pl.read_csv(tmp_path / "q" / "annotations.csv", infer_schema=False)["frame_id"]) == set(q.frame_ids().to_pylist())
    # a SELECT query exports what it selects (frame_id and uri are needed)
    mica.query("SELECT frame_id, uri, captured_at FROM mica WHERE deployment = '00a2c20d'").export("csv", tmp_path / "sel")
    assert pl.read_csv(tmp_path / "sel" / "annotations.csv", infer_schema=False).columns[:3] == ["frame_id", "uri", "captured_at"]
    with pytest.raises(ExportError, match="does not select uri"):
        mica.query("SELECT frame_id FROM mica").export("csv", tmp_path / "sel2")
    store.create_view("mapped", "TRUE", datasets=["mica"], label_map={"Anas platyrhynchos": "duck"}).publish("1.0")
    store.view("mapped", "1.0").export("yolo", tmp_path / "y")
    assert (tmp_path / "y" / "data.yaml").read_text().endswith('names:\n  0: "duck"\n')
    # a split view: one image list per split, named in data.yaml
    store.create_view("split", "TRUE", datasets=["mica"],
                      split={"by": "deployment", "fractions": {"train": 0.5, "val": 0.5}, "seed": 3}).publish("1.0")
    split = store.view("split", "1.0")
    split.export("yolo", tmp_path / "s")
    data = (tmp_path / "s" / "data.yaml").read_text()
    assert 'train: "train.txt"' in data and 'val: "val.txt"' in data
    for name in ("train", "val"):
        want = split.to_arrow(["uri"], split=name).column("uri").to_pylist()
        assert (tmp_path / "s" / f"{name}.txt").read_text().split() == want


def test_cli_export_and_audit(store, mica, tmp_path, capsys):
    out = tmp_path / "cli"
    code, stdout, _ = run_cli(store, capsys, "export", "ducks", "--version", "1.0", "--format", "megadetector",
                              "--output", str(out))
    assert code == 0 and "exported view ducks 1.0 as megadetector" in stdout
    assert json.loads((out / "megadetector.json").read_text())["info"]["hyperds"]["source"]["version"] == "1.0"
    code, _, err = run_cli(store, capsys, "export", "ducks", "--version", "1.0", "--format", "csv", "--output", str(out))
    assert code == 2 and err.count("\n") == 1 and "not empty" in err
    code, _, err = run_cli(store, capsys, "export", "ducks", "--version", "9.9", "--format", "csv", "--output",
                           str(tmp_path / "nine"))
    assert code == 2 and "no version '9.9'" in err and not (tmp_path / "nine").exists()
    code, stdout, _ = run_cli(store, capsys, "audit", "runs", "--format", "csv")
    runs = pl.read_csv(stdout.encode(), infer_schema=False)
    assert runs.columns[:3] == ["run_id", "kind", "dest"]
    assert runs.select("kind", "dest", "view", "version").row(0) == ("export", str(out), "ducks", "1.0")
    with pytest.raises(SystemExit) as exc:
        run_cli(store, capsys, "export", "--help")
    assert exc.value.code == 0 and "--copy-images" in capsys.readouterr().out


def test_export_of_something_else(tmp_path):
    from hyperds.export import export

    with pytest.raises(HyperdsError, match="cannot export a dict"):
        export({}, "csv", tmp_path / "x")


def test_coco_ct_pin_holds_byte_for_byte(store, tmp_path):
    """COCO-CT needs pixel sizes (the Camtrap DP sample has none): its pin test runs on frames that carry them."""
    ds = store.create_dataset("sized")
    ds.add_frames([{"frame_id": f"f{i}", "uri": f"s3://traps/f{i}.jpg", "width": 1920, "height": 1080,
                    "captured_at": f"2021-04-0{i + 1}T00:00:00Z", "site": "S1", "seq_id": "s1", "frame_num": i,
                    "annotations": [{"ann_id": f"f{i}-a", "label": "fox", "bbox": [0.1, 0.2, 0.3, 0.4]}]}
                   for i in range(3)])
    store.create_view("foxes", "any_annotation(label = 'fox')", datasets=["sized"]).publish("1.0")
    store.view("foxes", "1.0").export("coco-ct", tmp_path / "a", image_root="s3://traps", exported_at=AT)
    before = _files(tmp_path / "a")
    ds.add_frames([{"frame_id": "f9", "uri": "s3://traps/f9.jpg", "width": 640, "height": 480,
                    "annotations": [{"ann_id": "f9-a", "label": "fox"}]}])
    ds.commit([{"op": "relabel", "frame_id": "f0", "ann_id": "f0-a", "label": "badger"}], author="ana")
    store.view("foxes", "1.0").export("coco-ct", tmp_path / "b", image_root="s3://traps", exported_at=AT)
    assert _files(tmp_path / "b") == before
    store.view("foxes", "draft").export("coco-ct", tmp_path / "draft", image_root="s3://traps", exported_at=AT)
    assert _files(tmp_path / "draft") != before  # the draft follows the data: the comparison above can fail
    images = json.loads(before["coco_ct.json"])["images"]
    assert [im["file_name"] for im in images] == ["f0.jpg", "f1.jpg", "f2.jpg"]
