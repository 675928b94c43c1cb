"""hyperds.distributed on a real local Ray runtime (2 CPUs): results equal the single-process ones.

Multi-process and slow to start (Ray start-up ~5 s), so the runtime is started once for the module.
"""

from __future__ import annotations

import sys

import fsspec
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from PIL import Image

from conftest import DATA
from hyperds.errors import HyperdsError, PredictionError

ray = pytest.importorskip("ray", reason="Ray is not installed (optional extra hyperds[ray]); distributed tests skipped")

from hyperds import distributed  # noqa: E402

pytestmark = pytest.mark.slow
MODEL = "brightness@1.0"
LAYOUT = "{site}/{camera}/{name}"


@pytest.fixture(scope="module")
def ray_runtime():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def brightness_model(batch: pa.Table) -> pa.Table:
    """A real, deterministic 'model': decodes each image small and boxes its brightest quadrant."""
    rows = {"frame_id": [], "label": [], "bbox": [], "confidence": []}
    for frame_id, uri in zip(batch.column("frame_id").to_pylist(), batch.column("uri").to_pylist()):
        with fsspec.open(uri, "rb") as f, Image.open(f) as im:
            im.draft("L", (128, 128))
            px = np.asarray(im.convert("L").resize((64, 64)), dtype=np.float64)
        quads = [px[:32, :32], px[:32, 32:], px[32:, :32], px[32:, 32:]]
        q = int(np.argmax([x.mean() for x in quads]))
        rows["frame_id"].append(frame_id)
        rows["label"].append("bright" if px.mean() > 100 else "dark")
        rows["bbox"].append([0.5 * (q % 2), 0.5 * (q // 2), 0.5, 0.5])
        rows["confidence"].append(float(quads[q].mean() / 255))
    return pa.table(rows)


def _photos(tmp_path):
    root = tmp_path / "photos"
    for folder, site in (("serengeti-thumbs", "serengeti"), ("camtrap-dp/media", "mica")):
        for p in sorted((DATA / folder).glob("*.JPG")):
            dst = root / site / p.name[:6] / p.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(p.read_bytes())
    return root


def _model_anns(ds) -> pl.DataFrame:
    df = ds.to_polars(columns=["frame_id", "annotations"]).explode("annotations").drop_nulls("annotations").unnest("annotations")
    return df.filter(pl.col("source") == MODEL).select("frame_id", "label", "bbox", "confidence").sort("frame_id")


def test_ray_results_equal_single_process(ray_runtime, store, tmp_path, s3_bucket, s3_storage_options):
    """One test, so under pytest-xdist only one worker starts a Ray runtime."""
    _check_predict(store, tmp_path)
    _check_ingest(store, s3_bucket, s3_storage_options)
    _check_to_ray_resolves_each_datasets_uris(store)


def _check_to_ray_resolves_each_datasets_uris(store):
    roots = {"east": "s3://east-bucket/photos", "west": "/data/west"}
    for name, root in roots.items():
        store.create_dataset(name, root=root).add_frames([{"frame_id": f"{name}1", "uri": "a/x.jpg"}])
    # frames without labels: kept only when asked (empty="keep")
    store.create_view("both", "true", datasets=list(roots), empty="keep").publish(version="1.0", author="t")
    view = store.view("both", "1.0")

    def rows(**kwargs):
        frames = distributed.to_ray(view, columns=["frame_id", "uri"], **kwargs)
        table = pa.concat_tables(ray.get(frames.to_arrow_refs()))
        assert table.column_names == ["frame_id", "uri"]
        return dict(zip(table.column("frame_id").to_pylist(), table.column("uri").to_pylist()))

    assert rows() == {"east1": "s3://east-bucket/photos/a/x.jpg", "west1": "file:///data/west/a/x.jpg"}
    assert rows(dataset=store.dataset("west")) == {"west1": "file:///data/west/a/x.jpg"}


def _check_predict(store, tmp_path):
    root = _photos(tmp_path)
    local, remote = store.create_dataset("local"), store.create_dataset("remote")
    for ds in (local, remote):
        assert ds.ingest(str(root), layout=LAYOUT, progress=False).ingested == 34

    manifest = local.to_arrow(columns=["frame_id", "uri"])
    local.add_predictions(brightness_model(manifest), model=MODEL, run_id="single")

    commits = remote.commits().height
    before = remote.version
    res = distributed.predict(remote, brightness_model, model=MODEL, run_id="ray", batch_size=8, concurrency=2)
    assert res.commit.version_before == before and res.added == 34
    assert remote.commits().height == commits + 1
    assert _model_anns(remote).equals(_model_anns(local))

    # a published view as the source: only its frames get predictions; the class form runs as an actor
    class Model:
        def __call__(self, batch: pa.Table) -> pl.DataFrame:
            return pl.from_arrow(brightness_model(batch))

    small = store.create_dataset("small")
    small.ingest(str(root), layout=LAYOUT, progress=False)
    view = store.create_view("thumbs", "width < 1000", datasets=["small"], empty="keep").publish(version="1.0", author="t")
    res = distributed.predict(store.view("thumbs", "1.0"), Model, model=MODEL, batch_size=8, concurrency=1)
    thumbs = _model_anns(local).filter(pl.col("frame_id").str.contains("/serengeti/"))
    assert res.added == 24 == len(view) and _model_anns(small).equals(thumbs)


def _check_ingest(store, s3_bucket, s3_storage_options):
    bucket, client = s3_bucket
    for p in sorted((DATA / "megadetector").glob("*.[jJ][pP][gG]")) + sorted((DATA / "serengeti-thumbs").glob("*.JPG")):
        client.put_object(Bucket=bucket, Key=f"in/s/{p.name[:5]}/{p.name}", Body=p.read_bytes())
    client.put_object(Bucket=bucket, Key="in/s/bad/x.jpg", Body=b"not a jpeg")
    uri = f"s3://{bucket}/in"
    reports = {}
    for engine in ("local", "ray"):
        ds = store.create_dataset(f"s3{engine}")
        reports[engine] = ds.ingest(uri, layout=LAYOUT, storage_options=s3_storage_options, engine=engine, progress=False)
    assert reports["ray"].ingested == reports["local"].ingested == 34
    assert reports["ray"].skipped.equals(reports["local"].skipped)
    cols = [c for c in store.dataset("s3local").schema.names if c != "annotations"]
    tables = [store.dataset(f"s3{e}").to_polars(columns=cols).sort("frame_id") for e in ("local", "ray")]
    assert tables[0].equals(tables[1])


def test_predict_checks_model_and_target_before_any_work(store):
    ds = store.create_dataset("x")
    with pytest.raises(PredictionError, match="no version"):
        distributed.predict(ds, brightness_model, model="brightness")
    with pytest.raises(HyperdsError, match="dataset="):
        distributed.predict(pa.table({"frame_id": ["a"], "uri": ["b"]}), brightness_model, model=MODEL)
    assert distributed._target(ds.query("width > 10"), None).name == "x"
    assert distributed._target(ds.at(ds.version), None).version == ds.version


def test_ray_header_batch_pickles_without_secrets(s3_server):
    import pickle

    import s3fs

    from hyperds.distributed import _HeaderBatch

    fs = s3fs.S3FileSystem(key="AKIDEXAMPLE", secret="SUPERSECRET-RAY", endpoint_url=s3_server, skip_instance_cache=True)
    blob = pickle.dumps(_HeaderBatch(fs, hash=False, block_size=65536, threads=2))
    assert b"SUPERSECRET-RAY" not in blob and b"AKIDEXAMPLE" not in blob
    assert pickle.loads(blob).options["endpoint_url"] == s3_server
