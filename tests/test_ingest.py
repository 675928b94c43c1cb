"""Ingest of raw photos from a moto S3 bucket and local folders: counts, EXIF, layout, incremental runs, bad input."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import zoneinfo

import polars as pl
import pyarrow as pa
import pytest
from PIL import Image

from conftest import DATA
from hyperds.cli.main import main
from hyperds.errors import IngestError

UTC = dt.timezone.utc
LAYOUT = "{site}/{camera}/{name}"


def _exif_expectations(data: bytes) -> dict:
    """Width/height as displayed, EXIF capture time (UTC if naive), make and model, read with Pillow."""
    im = Image.open(io.BytesIO(data))
    exif = im.getexif()
    w, h = im.size
    if exif.get(0x0112) in (5, 6, 7, 8):
        w, h = h, w
    raw = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)
    when = dt.datetime.strptime(raw, "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC) if raw else None

    def text(tag: int) -> str | None:
        v = exif.get(tag)
        return (v.split("\x00")[0].strip() or None) if isinstance(v, str) else None

    return {"width": w, "height": h, "captured_at": when, "camera_make": text(0x010F), "camera_model": text(0x0110)}


def _good_objects() -> dict[str, bytes]:
    """Real sample JPEGs under keys site/camera/name."""
    objs = {}
    for p in sorted((DATA / "camtrap-dp" / "media").glob("*.JPG")):
        objs[f"mica/cam62c200a9/{p.name}"] = p.read_bytes()
    for p in sorted((DATA / "megadetector").glob("*.[jJ][pP][gG]")):
        objs[f"lila/{p.name.split('_')[0]}/{p.name}"] = p.read_bytes()
    for p in sorted((DATA / "serengeti-thumbs").glob("*.JPG"))[:8]:
        objs[f"serengeti/{p.name[:6]}/{p.name}"] = p.read_bytes()
    objs["elephants/rotated/rot6.jpg"] = (DATA / "edge-cases" / "african_elephants_with_exif_orientation.jpg").read_bytes()
    return objs


def _bad_exif_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 90, 90)).save(buf, "JPEG", exif=b"Exif\x00\x00NOT-A-TIFF-BLOCK")
    return buf.getvalue()


def _broken_objects() -> dict[str, tuple[str, bytes]]:
    """key -> (expected problem, bytes)."""
    camtrap = next((DATA / "camtrap-dp" / "media").glob("*.JPG")).read_bytes()
    return {
        "broken/cam1/truncated.jpg": ("unreadable", camtrap[:1000]),
        "broken/cam1/notes.jpg": ("unreadable", b"field notes: battery low at site 7\n"),
        "broken/cam1/badexif.jpg": ("unreadable", _bad_exif_jpeg()),
        "misplaced.jpg": ("layout", camtrap),
        "broken/cam1/README.txt": ("ignored", b"not an image"),
    }


def _upload(client, bucket: str, prefix: str, objs: dict[str, bytes]) -> None:
    for key, data in objs.items():
        client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)


@pytest.fixture
def filled_bucket(s3_bucket):
    bucket, client = s3_bucket
    good = _good_objects()
    broken = _broken_objects()
    _upload(client, bucket, "day1", good)
    _upload(client, bucket, "day1", {k: v for k, (_, v) in broken.items()})
    return bucket, client, good, broken


def test_ingest_s3_counts_exif_layout_and_incremental(store, filled_bucket, s3_storage_options):
    bucket, client, good, broken = filled_bucket
    ds = store.create_dataset("raw")
    uri = f"s3://{bucket}/day1"
    report = ds.ingest(uri, layout=LAYOUT, storage_options=s3_storage_options, progress=False)

    assert report.listed == len(good) + len(broken)
    assert report.ingested == len(good) == len(ds)
    assert report.already_ingested == 0
    got_skips = {(u.removeprefix(f"s3://{bucket}/day1/"), p) for u, p in report.skipped.select("uri", "problem").iter_rows()}
    assert got_skips == {(k, p) for k, (p, _) in broken.items()}
    reasons = dict(zip(report.skipped["uri"], report.skipped["reason"]))
    assert "truncated" in reasons[f"s3://{bucket}/day1/broken/cam1/truncated.jpg"]
    assert "not an image" in reasons[f"s3://{bucket}/day1/broken/cam1/notes.jpg"]
    assert "EXIF" in reasons[f"s3://{bucket}/day1/broken/cam1/badexif.jpg"]
    assert "does not match layout" in reasons[f"s3://{bucket}/day1/misplaced.jpg"]
    # header-only: far fewer bytes read than the objects hold
    assert report.bytes_read < sum(len(v) for v in good.values()) / 2

    rows = {r["uri"]: r for r in ds.to_arrow().to_pylist()}
    for key, data in good.items():
        row = rows[f"s3://{bucket}/day1/{key}"]
        site, camera, _ = key.split("/")
        want = _exif_expectations(data)
        assert (row["site"], row["camera"]) == (site, camera), key
        assert {k: row[k] for k in want} == want, key
        assert row["frame_id"] == row["uri"]
        assert row["source_size"] == len(data)
        assert row["source_etag"] == client.head_object(Bucket=bucket, Key=f"day1/{key}")["ETag"]
    assert sum(r["captured_at"] is not None for r in rows.values()) >= 15

    # a second run adds nothing and writes nothing; unreadable objects are retried and listed again
    version, count = ds.version, len(ds)
    again = ds.ingest(uri, layout=LAYOUT, storage_options=s3_storage_options, progress=False)
    assert (again.ingested, again.already_ingested) == (0, len(good))
    assert again.bytes_read <= sum(len(v) for p, v in broken.values() if p == "unreadable")
    assert again.skipped.equals(report.skipped)
    assert (ds.version, len(ds)) == (version, count)

    # new objects are added; a changed one is listed, not re-ingested
    extra = {f"serengeti/{p.name[:6]}/{p.name}": p.read_bytes() for p in sorted((DATA / "serengeti-thumbs").glob("*.JPG"))[8:10]}
    _upload(client, bucket, "day1", extra)
    changed_key = next(iter(good))
    client.put_object(Bucket=bucket, Key=f"day1/{changed_key}", Body=good[changed_key] + b"\x00")
    third = ds.ingest(uri, layout=LAYOUT, storage_options=s3_storage_options, progress=False)
    assert third.ingested == 2 and len(ds) == count + 2
    assert third.already_ingested == len(good) - 1
    changed = third.skipped.filter(pl.col("problem") == "changed")["uri"].to_list()
    assert changed == [f"s3://{bucket}/day1/{changed_key}"]
    assert "changed" in third.summary() and "2 ingested" in third.summary()


def test_ingest_hash_finds_truncated_scan_data_and_duplicates(store, s3_bucket, s3_storage_options):
    bucket, client = s3_bucket
    elephants = DATA / "edge-cases"
    thumb = (DATA / "serengeti-thumbs" / "S1_F10_R1_PICT0104.JPG").read_bytes()
    objs = {
        "a/c/whole.jpg": (elephants / "african_elephants.jpg").read_bytes(),
        "a/c/cut.jpg": (elephants / "african_elephants_truncated_file.jpg").read_bytes(),
        "a/c/thumb.jpg": thumb,
        "a/c/thumb_copy.jpg": thumb,
    }
    _upload(client, bucket, "h", objs)
    uri = f"s3://{bucket}/h"
    # header only: the cut file's header is intact, so it cannot be told apart
    header_only = store.create_dataset("plain").ingest(uri, layout=LAYOUT, storage_options=s3_storage_options, progress=False)
    assert header_only.ingested == 4

    ds = store.create_dataset("hashed")
    report = ds.ingest(uri, layout=LAYOUT, hash=True, storage_options=s3_storage_options, progress=False)
    problems = dict(zip(report.skipped["uri"].str.replace(f"s3://{bucket}/h/", ""), report.skipped["problem"]))
    assert problems == {"a/c/cut.jpg": "unreadable", "a/c/thumb_copy.jpg": "duplicate"}
    assert report.bytes_read == sum(len(v) for v in objs.values())
    hashes = dict(zip(ds.to_arrow()["uri"].to_pylist(), ds.to_arrow()["sha256"].to_pylist()))
    assert hashes[f"{uri}/a/c/whole.jpg"] == hashlib.sha256(objs["a/c/whole.jpg"]).hexdigest()
    # the same content under a new key later is a duplicate of the stored frame
    client.put_object(Bucket=bucket, Key="h/a/c/thumb_again.jpg", Body=thumb)
    later = ds.ingest(uri, layout=LAYOUT, hash=True, storage_options=s3_storage_options, progress=False)
    assert later.ingested == 0
    dup = later.skipped.filter(pl.col("problem") == "duplicate")
    assert dup["uri"].to_list() == [f"{uri}/a/c/thumb_again.jpg", f"{uri}/a/c/thumb_copy.jpg"]
    assert all(f"{uri}/a/c/thumb.jpg" in r for r in dup["reason"])


def test_ingest_local_tz_matches_camtrap_media_timestamps(store, tmp_path):
    """The camera clock of deployment 62c200a9 ran at UTC+01:00 (media.csv); tz= applies it."""
    src = tmp_path / "photos" / "mica" / "cam1"
    src.mkdir(parents=True)
    for p in (DATA / "camtrap-dp" / "media").glob("*.JPG"):
        (src / p.name).write_bytes(p.read_bytes())
    ds = store.create_dataset("mica")
    report = ds.ingest(str(tmp_path / "photos"), layout=LAYOUT, tz="+01:00", progress=False)
    assert report.ingested == 10 and report.skipped.height == 0
    with open(DATA / "camtrap-dp" / "media.csv", newline="") as f:
        expected = {
            r["fileName"]: dt.datetime.fromisoformat(r["timestamp"]).astimezone(UTC)
            for r in csv.DictReader(f)
            if r["filePath"].startswith("media/")
        }
    got = {r["uri"].rsplit("/", 1)[-1]: r["captured_at"] for r in ds.to_arrow(columns=["uri", "captured_at"]).to_pylist()}
    assert got == expected
    assert all(r["uri"].startswith("file://") for r in ds.to_arrow(columns=["uri"]).to_pylist())


def test_ingest_bad_input_leaves_store_unchanged(store, tmp_path):
    ds = store.create_dataset("raw")
    (tmp_path / "x").mkdir()
    before = (ds.version, len(ds))
    for bad in ("{site}/{frame_id}/{name}", "{site}/{si te}", "no/fields", "{site}/{site}",
                "{site}/{camera_make}/{name}", "{path}/{camera}/{name}", "{site}/{source_size}/{name}",
                "{site}/{name", "{site}}/{name}", "site}/{name}", "{site}/{na{me}"):
        with pytest.raises(IngestError, match="bad layout"):
            ds.ingest(str(tmp_path / "x"), layout=bad, progress=False)
    with pytest.raises(IngestError, match="nothing found"):
        ds.ingest(str(tmp_path / "missing"), progress=False)
    with pytest.raises(IngestError, match="engine"):
        ds.ingest(str(tmp_path / "x"), engine="spark")
    with pytest.raises(IngestError, match="time zone"):
        ds.ingest(str(tmp_path / "x"), tz="Mars/Olympus")
    with pytest.raises(IngestError, match="burst gap must be >= 0"):
        ds.ingest(str(tmp_path / "x"), burst_gap_s=-5, progress=False)
    assert (ds.version, len(ds)) == before


def test_cli_ingest_failure_leaves_no_new_dataset(store, tmp_path, capsys):
    (tmp_path / "x").mkdir()
    code = main(["--store", store.uri, "ingest", str(tmp_path / "x"), "--dataset", "newds",
                 "--layout", "{site}/{camera}/{width}", "--no-progress"])
    assert code == 2 and "bad layout" in capsys.readouterr().err
    assert "newds" not in store.datasets()


def test_cli_ingest_over_s3(tmp_path, s3_bucket, s3_server, capsys):
    bucket, client = s3_bucket
    thumbs = sorted((DATA / "serengeti-thumbs").glob("*.JPG"))[:3]
    _upload(client, bucket, "cli", {f"s/{p.name[:6]}/{p.name}": p.read_bytes() for p in thumbs})
    client.put_object(Bucket=bucket, Key="cli/s/x/bad.jpg", Body=b"nope")
    args = ["--store", str(tmp_path / "st"), "ingest", f"s3://{bucket}/cli", "--dataset", "raw",
            "--layout", LAYOUT, "--endpoint-url", s3_server, "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "3 ingested" in out and "bad.jpg" in out and "not an image" in out
    assert main(args) == 0
    assert "0 ingested, 3 already ingested" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    assert "--layout" in capsys.readouterr().out


def test_layout_user_fields_given_sequences_and_bad_clock(store, tmp_path):
    """Extra layout fields become user columns; a layout {seq_id} is kept; a zeroed EXIF clock is a warning."""
    thumbs = sorted((DATA / "serengeti-thumbs").glob("*.JPG"))[:2]
    for i, p in enumerate(thumbs):
        dst = tmp_path / "in" / "wet" / "camA" / f"seq{i}" / p.name
        dst.parent.mkdir(parents=True)
        dst.write_bytes(p.read_bytes())
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "0000:00:00 00:00:00"
    (tmp_path / "in" / "dry" / "camB" / "s9").mkdir(parents=True)
    Image.new("RGB", (20, 10)).save(tmp_path / "in" / "dry" / "camB" / "s9" / "zero.jpg", exif=exif)
    ds = store.create_dataset("lay")
    report = ds.ingest(str(tmp_path / "in"), layout="{season}/{camera}/{seq_id}/{name}", progress=False)
    assert report.ingested == 3 and report.skipped.height == 0
    assert report.warnings["problem"].to_list() == ["capture_time"]
    assert "0000:00:00" in report.warnings["reason"][0] and "zero.jpg" in report.warnings["uri"][0]
    rows = {r["uri"].rsplit("/", 1)[-1]: r for r in ds.to_arrow().to_pylist()}
    assert rows["zero.jpg"]["captured_at"] is None and (rows["zero.jpg"]["width"], rows["zero.jpg"]["height"]) == (20, 10)
    assert [(rows[p.name]["season"], rows[p.name]["camera"], rows[p.name]["seq_id"]) for p in thumbs] == [
        ("wet", "camA", "seq0"), ("wet", "camA", "seq1")]
    assert ds.schema.field("season").type == pa.string()


def test_layout_with_unpaired_brace_says_what_a_layout_looks_like(store, tmp_path):
    (tmp_path / "x" / "s1").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "x" / "s1" / "a.jpg")
    ds = store.create_dataset("raw")
    with pytest.raises(IngestError, match=r"does not pair up.*\{site\}/\{camera\}/\{name\}"):
        ds.ingest(str(tmp_path / "x"), layout="{site}/{name", progress=False)
    assert len(ds) == 0


def test_dst_gap_or_overlap_time_is_a_warning_not_a_failed_ingest(store, tmp_path):
    """In Europe/Berlin 02:30 on 2024-03-31 never happened and on 2024-10-27 happened twice."""
    shots = {"gap.jpg": "2024:03:31 02:30:00", "twice.jpg": "2024:10:27 02:30:00", "fine.jpg": "2024:03:31 04:00:00"}
    (tmp_path / "in").mkdir()
    for name, when in shots.items():
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = when
        Image.new("RGB", (16, 8)).save(tmp_path / "in" / name, exif=exif)
    ds = store.create_dataset("dst")
    report = ds.ingest(str(tmp_path / "in"), tz="Europe/Berlin", progress=False)
    assert report.ingested == 3 and report.skipped.height == 0
    warned = dict(zip(report.warnings["uri"].str.replace(r".*/", ""), report.warnings["reason"]))
    assert sorted(warned) == ["gap.jpg", "twice.jpg"] and set(report.warnings["problem"]) == {"capture_time"}
    assert all("02:30:00" in r and "UTC offset" in r for r in warned.values())
    rows = {r["uri"].rsplit("/", 1)[-1]: r["captured_at"] for r in ds.to_arrow(columns=["uri", "captured_at"]).to_pylist()}
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    expected = dt.datetime(2024, 3, 31, 4, 0, tzinfo=berlin).astimezone(UTC)
    assert rows == {"gap.jpg": None, "twice.jpg": None, "fine.jpg": expected}
