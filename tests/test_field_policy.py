"""The sensitive-species and people policy: versioned in the catalog, applied by exports and the loader when asked
(`policy="public"`), following the current labels; blurring from stored boxes never touches the source image."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import polars as pl
import pytest
from conftest import DATA, run_cli

from hyperds.errors import ExportError, PolicyError
from hyperds.frames.importers import import_camtrap_dp, import_megadetector
from hyperds.images.decode import decode_rgb
from hyperds.workflows.policy import blur_boxes

SPECIES = "Mustela putorius"
CAMTRAP = DATA / "camtrap-dp"


def _cell(lat: float, lon: float, km: float) -> tuple[float, float]:
    """Plain-Python reference of the grid: the centre of the ~km x km cell holding the point."""
    dlat = km / 111.32
    clat = (math.floor(lat / dlat) + 0.5) * dlat
    dlon = km / (111.32 * math.cos(math.radians(clat)))
    return round(clat, 6), round((math.floor(lon / dlon) + 0.5) * dlon, 6)


@pytest.fixture
def mica(store):
    ds = store.create_dataset("mica")
    import_camtrap_dp(ds, CAMTRAP / "datapackage.json")
    return ds


def _deployments(folder) -> dict[str, tuple[float, float]]:
    rows = pl.read_csv(folder / "deployments.csv", infer_schema_length=0)
    return {r["deploymentID"]: (float(r["latitude"]), float(r["longitude"])) for r in rows.iter_rows(named=True)}


def _seen_at(label: str) -> set[str]:
    obs = pl.read_csv(CAMTRAP / "observations.csv", infer_schema_length=0)
    return set(obs.filter(pl.col("scientificName") == label)["deploymentID"].to_list())


def test_sensitive_locations_are_coarsened_in_public_and_exact_in_full(mica, tmp_path):
    store = mica.store
    store.set_policy("ana", "protect polecats", sensitive_labels=[SPECIES], coordinates="round", round_km=10)
    exact = _deployments(CAMTRAP)
    full = mica.export("camtrap-dp", str(tmp_path / "full"), policy="full")
    public = mica.export("camtrap-dp", str(tmp_path / "public"), policy="public")
    assert _deployments(tmp_path / "full") == exact
    coarse = _deployments(tmp_path / "public")
    sensitive = _seen_at(SPECIES)
    assert sensitive and sensitive < set(exact)
    for dep, (lat, lon) in exact.items():
        if dep in sensitive:
            assert coarse[dep] == pytest.approx(_cell(lat, lon, 10), abs=1e-6)
            assert coarse[dep] != (lat, lon)
            assert abs(coarse[dep][0] - lat) * 111.32 <= 5.0 + 1e-6  # within half a cell
        else:
            assert coarse[dep] == (lat, lon)
    assert public.provenance["policy"]["version"] == 1 and public.provenance["policy"]["locations_coarsened"] == 1
    assert full.provenance["policy"] == {"name": "full"}


def test_relabelling_to_a_sensitive_species_changes_the_next_public_export(mica, tmp_path):
    store = mica.store
    store.set_policy("ana", sensitive_labels=[SPECIES])
    other = sorted(set(_deployments(CAMTRAP)) - _seen_at(SPECIES))[0]
    mica.export("camtrap-dp", str(tmp_path / "a"), policy="public")
    first = _deployments(tmp_path / "a")
    assert first[other] == _deployments(CAMTRAP)[other]
    frame = mica.query(f"deployment = '{other}' AND any_annotation(level = 'media')").to_arrow(
        ["frame_id", "annotations"]).to_pylist()[0]
    ann = next(a for a in frame["annotations"] if a["level"] == "media")
    mica.commit([{"op": "relabel", "frame_id": frame["frame_id"], "ann_id": ann["ann_id"], "label": SPECIES}],
                author="bo", message="it was a polecat")
    mica.export("camtrap-dp", str(tmp_path / "b"), policy="public")
    second = _deployments(tmp_path / "b")
    lat, lon = _deployments(CAMTRAP)[other]
    assert second[other] == pytest.approx(_cell(lat, lon, 10), abs=1e-6)


def test_people_frames_are_left_out_of_exports_and_the_loader(mica, tmp_path):
    from hyperds.loaders.torch import FrameDataset

    store = mica.store
    store.set_policy("ana", people="omit", people_labels=["Homo sapiens", "human", "vehicle"])
    labels = mica.to_polars(columns=["frame_id", "labels"])
    people = set(labels.filter(pl.col("labels").list.eval(pl.element().is_in(["Homo sapiens", "human", "vehicle"]))
                               .list.any())["frame_id"].to_list())
    assert people
    result = mica.export("csv", str(tmp_path / "csv"), policy="public")
    exported = set(pl.read_csv(next((tmp_path / "csv").glob("*.csv")), infer_schema_length=0)["frame_id"].to_list())
    assert exported == set(labels["frame_id"].to_list()) - people
    assert result.skipped["frames with people or vehicles"] == len(people)
    loader = FrameDataset(mica, target=lambda row: 0, policy="public")
    assert len(loader) == len(labels) - len(people)
    assert len(FrameDataset(mica, target=lambda row: 0)) == len(labels)


def test_camtrap_export_refuses_to_drop_coordinates(mica, tmp_path):
    mica.store.set_policy("ana", sensitive_labels=[SPECIES], coordinates="drop")
    with pytest.raises(ExportError, match="coordinates"):
        mica.export("camtrap-dp", str(tmp_path / "x"), policy="public")
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


# -- blurring ----------------------------------------------------------------------------------------------

BOX = [0.3, 0.25, 0.2, 0.3]


def _inside_outside(shape: tuple[int, int], box: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Masks of pixels surely inside the box and surely outside it (one pixel of margin at the edges)."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w]
    x0, y0, x1, y1 = box[0] * w, box[1] * h, (box[0] + box[2]) * w, (box[1] + box[3]) * h
    inside = (xs >= x0 + 1) & (xs < x1 - 1) & (ys >= y0 + 1) & (ys < y1 - 1)
    outside = (xs < x0 - 1) | (xs >= x1 + 1) | (ys < y0 - 1) | (ys >= y1 + 1)
    return inside, outside


def test_blur_changes_pixels_inside_the_box_only():
    src = decode_rgb((DATA / "megadetector" / "ena24_7904.jpg").read_bytes())
    out = np.asarray(blur_boxes(src, [BOX]), dtype=np.int16)
    raw = np.asarray(src, dtype=np.int16)
    inside, outside = _inside_outside(raw.shape[:2], BOX)
    assert np.array_equal(out[outside], raw[outside])
    changed = np.abs(out[inside] - raw[inside]).max(axis=1) > 0
    assert changed.mean() > 0.9


def test_loader_and_export_blur_people_boxes_without_touching_sources(store, sample_data, tmp_path):
    from hyperds.loaders.torch import FrameDataset

    ds = store.create_dataset("md")
    import_megadetector(ds, sample_data / "megadetector" / "expected_output_DRAFT.json")
    fid = "ena24_7904.jpg"
    ds.commit([{"op": "add", "frame_id": fid, "label": "person", "bbox": BOX}], author="ana", message="a hiker")
    store.set_policy("ana", people="blur")
    source = sample_data / "megadetector" / fid
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    loader = FrameDataset(ds.query(f"frame_id = '{fid}'"), target=lambda row: row["frame_id"], policy="public")
    img, _ = loader[0]
    raw = np.asarray(decode_rgb(source.read_bytes()), dtype=np.int16)
    got = np.asarray(img, dtype=np.int16)
    inside, outside = _inside_outside(raw.shape[:2], BOX)
    assert np.array_equal(got[outside], raw[outside])
    assert (np.abs(got[inside] - raw[inside]).max(axis=1) > 0).mean() > 0.9
    plain, _ = FrameDataset(ds.query(f"frame_id = '{fid}'"), target=lambda row: 0)[0]
    assert np.array_equal(np.asarray(plain, dtype=np.int16), raw)

    result = ds.export("megadetector", str(tmp_path / "out"), policy="public")
    blurred = [f for f in result.files if f.startswith("blurred/")]
    assert len(blurred) == 1 and result.provenance["policy"]["frames_blurred"] == 1
    written = np.asarray(decode_rgb((tmp_path / "out" / blurred[0]).read_bytes()), dtype=np.int16)
    assert np.abs(written[inside] - raw[inside]).mean() > 5 * np.abs(written[outside] - raw[outside]).mean()
    doc = (tmp_path / "out" / next(f for f in result.files if f.endswith(".json"))).read_text()
    assert blurred[0] in doc
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest


# -- versions, errors, CLI ---------------------------------------------------------------------------------

def test_policy_versions_and_errors(store):
    assert store.policy().version == 0 and store.policy().sensitive_labels == ()
    one = store.set_policy("ana", "first", sensitive_labels=["Lynx lynx"])
    two = store.set_policy("bo", "add wolves", sensitive_labels=["Lynx lynx", "Canis lupus"], round_km=25)
    assert (one.version, two.version) == (1, 2)
    assert store.policy(1).sensitive_labels == ("Lynx lynx",) and store.policy(1).round_km == 10
    assert store.policy().sensitive_labels == ("Canis lupus", "Lynx lynx") and store.policy().round_km == 25
    assert store.policy_history()["author"].to_list() == ["ana", "bo"]
    for bad in ({"coordinates": "blur"}, {"round_km": 0}, {"people": "hide"}, {"people_min_confidence": 2},
                {"colour": "red"}, {"sensitive_labels": [""]}):
        with pytest.raises(PolicyError):
            store.set_policy("ana", **bad)
    with pytest.raises(PolicyError):
        store.set_policy(" ", sensitive_labels=["x"])
    assert store.policy_history().height == 2
    with pytest.raises(PolicyError, match="version"):
        store.policy(7)


def test_cli_policy_set_show_and_export(mica, capsys, tmp_path):
    store = mica.store
    code, out, _ = run_cli(store, capsys, "policy", "set", "--sensitive", f"{SPECIES},Lynx lynx", "--km", "5",
                           "--author", "ana")
    assert code == 0 and "version 1" in out
    code, out, _ = run_cli(store, capsys, "policy", "show", "--format", "json")
    assert code == 0 and SPECIES in out and '"round_km":5.0' in out
    code, _, err = run_cli(store, capsys, "policy", "set", "--km", "-3", "--author", "ana")
    assert code == 2 and "round_km" in err and "Traceback" not in err
    store.create_view("all", "TRUE", datasets=["mica"]).publish("1.0")
    code, out, _ = run_cli(store, capsys, "export", "all", "--format", "camtrap-dp", "--output",
                           str(tmp_path / "pub"), "--policy", "public")
    assert code == 0
    lat, lon = _deployments(CAMTRAP)[sorted(_seen_at(SPECIES))[0]]
    assert _deployments(tmp_path / "pub")[sorted(_seen_at(SPECIES))[0]] == pytest.approx(_cell(lat, lon, 5), abs=1e-6)


def test_blurring_an_unreadable_image_is_a_clear_error_and_writes_nothing(store, tmp_path):
    ds = store.create_dataset("gone")
    ds.add_frames([{"frame_id": "f1", "uri": str(tmp_path / "missing.jpg"),
                    "annotations": [{"label": "person", "bbox": BOX, "source_kind": "human"}]}])
    store.set_policy("ana", people="blur")
    with pytest.raises(PolicyError, match="cannot blur frame 'f1'"):
        ds.export("csv", str(tmp_path / "out"), policy="public")
    assert not (tmp_path / "out").exists()
